#!/usr/bin/env bash
# Creates .venv-train with PyPI's PyTorch (CPU is enough), for the training scripts that
# fine-tune rather than fit a head: scripts/train-cache-verifier.py. Sluice, its tests and CI do
# not need it; PyPI's wheel brings CUDA libraries along (~3 GB). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv-train/bin/python ]; then
  echo "==> creating .venv-train"
  python3 -m venv .venv-train
fi
if ! .venv-train/bin/python -c 'import torch, numpy, safetensors, tokenizers' 2>/dev/null; then
  echo "==> installing torch, numpy, safetensors and tokenizers into .venv-train"
  .venv-train/bin/pip install -q --disable-pip-version-check torch numpy safetensors tokenizers
fi
