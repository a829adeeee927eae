#!/usr/bin/env bash
# Creates .venv with what the tests need: the official openai, anthropic and openai-agents SDKs, pytest and Playwright (end-to-end
# and browser tests; Playwright drives Debian's Chromium, so no browser is downloaded),
# Hugging Face tokenizers, numpy and safetensors (the MiniLM reference the Swift encoder is
# checked against). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import openai, anthropic, agents, pytest, tokenizers, numpy, safetensors, playwright' 2>/dev/null; then
  echo "==> installing openai, anthropic, openai-agents, pytest, tokenizers, numpy, safetensors and playwright into .venv"
  .venv/bin/pip install -q --disable-pip-version-check openai anthropic openai-agents pytest tokenizers numpy safetensors playwright
fi
