#!/usr/bin/env bash
# Creates .venv with what the tests need: the official openai SDK and pytest (end-to-end tests),
# Hugging Face tokenizers, numpy and safetensors (the MiniLM reference the Swift encoder is
# checked against). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import openai, pytest, tokenizers, numpy, safetensors' 2>/dev/null; then
  echo "==> installing openai, pytest, tokenizers, numpy and safetensors into .venv"
  .venv/bin/pip install -q --disable-pip-version-check openai pytest tokenizers numpy safetensors
fi
