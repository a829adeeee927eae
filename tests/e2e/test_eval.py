"""`sluice eval run` end to end: a small dataset through a flow on the simulated provider and on
the local Gemma model, in process, scored by deterministic scorers and a judge; the JSON report,
the gate's exit status, resuming, and the HTML report opened in headless Chromium (Debian's) with
no console error. A screenshot goes to $SLUICE_SCREENSHOTS (default .build/screenshots)."""
import json
import os
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from conftest import SLUICE_BIN

CHROMIUM = os.environ.get("SLUICE_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(os.environ.get("SLUICE_SCREENSHOTS", Path(__file__).resolve().parents[2] / ".build" / "screenshots"))

CONFIG = """
server: { host: 127.0.0.1, port: 0 }
store: { sqlite: "DB" }
providers:
  sim: { kind: simulated, mode: echo }
  judge-sim: { kind: simulated, reply: "{\\"score\\": 4, \\"reason\\": \\"answers the question\\"}" }
  gemma: { kind: llama-server, model_path: auto, context: 2048, threads: 2, slots: 2 }
models:
  - { name: sim-small, provider: sim, upstream_model: small, price: { input_per_mtok: 0.15, output_per_mtok: 0.60 } }
  - { name: sim-judge, provider: judge-sim, upstream_model: judge, price: { input_per_mtok: 3, output_per_mtok: 15 } }
  - { name: gemma-3-270m, provider: gemma }
logging: { level: warning }
flows:
  capital:
    model: sim-small
    messages: [{ role: user, content: "What is the capital of {{country}}? Answer with the city only." }]
    input: { type: object, required: [country], properties: { country: { type: string } } }
    params: { max_tokens: 16, temperature: 0 }
judges:
  helpful:
    model: sim-judge
    rubric: helpful.mustache
    scale: { min: 1, max: 5 }
"""

CASES = [("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome"), ("Egypt", "Cairo")]


def run_eval(tmp_path, *extra):
    command = [SLUICE_BIN, "eval", "run", "--config", str(tmp_path / "sluice.yaml"), "--flow", "capital",
               "--dataset", str(tmp_path / "cases.jsonl"), "--models", "sim-small,gemma-3-270m",
               "--scorers", "judge:helpful,contains:Paris,length,latency", "--concurrency", "2", "--judge-runs", "2", "--out", str(tmp_path / "reports"), *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


@pytest.fixture
def workspace(tmp_path):
    (tmp_path / "sluice.yaml").write_text(CONFIG.replace("DB", str(tmp_path / "eval.db")))
    (tmp_path / "helpful.mustache").write_text("Rate how well the answer answers.\nQuestion: {{input}}\nAnswer: {{output}}\nReference: {{reference}}\n")
    with open(tmp_path / "cases.jsonl", "w") as f:
        for i, (country, city) in enumerate(CASES):
            f.write(json.dumps({"id": f"c{i}", "input": {"country": country}, "reference": city}) + "\n")
    return tmp_path


def test_an_offline_evaluation_reports_recommends_and_gates(workspace):
    done = run_eval(workspace, "--gate", "helpful>=3.5")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "progress: 8/8" in done.stderr
    report = json.loads((workspace / "reports" / "report.json").read_text())
    variants = {v["variant"]: v for v in report["variants"]}
    assert set(variants) == {"sim-small", "gemma-3-270m"}
    assert all(v["cases"] == 4 for v in variants.values())
    assert variants["sim-small"]["errors"] == 0 and variants["sim-small"]["means"]["judge:helpful"] == 4
    # The echo model repeats the prompt, which names no city but France's country: contains:Paris only there.
    assert variants["sim-small"]["means"]["contains:Paris"] == 0
    assert report["recommendation"]["variant"] in variants and report["recommendation"]["reason"]
    assert report["passed"] is True and report["gates"][0]["failed"] == []
    assert len(report["results"]) == 8

    # Run again: everything is in the journal, nothing is asked again; a stricter gate fails.
    again = run_eval(workspace, "--gate", "helpful>=4.5")
    assert "resuming: 8 case runs already done" in again.stderr
    assert again.returncode == 1, again.stdout + again.stderr
    assert "MISSED" in again.stdout

    if not os.path.exists(CHROMIUM):
        pytest.skip("Chromium is not installed (make test-e2e installs it)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
            page.goto((workspace / "reports" / "report.html").resolve().as_uri())
            assert page.locator("h1").inner_text().startswith("Evaluation of flow")
            assert page.locator("svg circle").count() == 2
            assert "Recommendation" in page.content()
            page.screenshot(path=str(SHOTS / "eval-report.png"), full_page=True)
        finally:
            browser.close()
    assert problems == []


def test_experiments_from_the_cli(tmp_path):
    """`sluice experiments` on the store a server reads: list, pause, show, and a clear error for a name that is not there."""
    (tmp_path / "sluice.yaml").write_text(CONFIG.replace("DB", str(tmp_path / "cli.db")).replace("judges:", """experiments:
  capital-models:
    flow: capital
    variants: { control: {}, local: { model: gemma-3-270m } }
    primary: "judge:helpful"
judges:""", 1))
    (tmp_path / "helpful.mustache").write_text("Rate: {{output}}\n")

    def cli(*args):
        return subprocess.run([SLUICE_BIN, "experiments", *args, "--config", str(tmp_path / "sluice.yaml")], capture_output=True, text=True, timeout=120)

    listed = cli("list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("capital-models\trunning\tflow capital\t")
    assert cli("pause", "capital-models").stdout.strip() == "capital-models: paused"
    shown = json.loads(cli("show", "capital-models").stdout)
    assert shown["status"] == "paused" and shown["decision"] == "continue" and shown["primary"] == "judge:helpful"
    assert [v["name"] for v in shown["variants"]] == ["control", "local"]
    missing = cli("stop", "nope")
    assert missing.returncode == 1 and "No experiment named 'nope'" in missing.stderr
