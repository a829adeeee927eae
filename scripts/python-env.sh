#!/usr/bin/env bash
# Creates .venv with what the end-to-end tests need (the official openai SDK, pytest). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import openai, pytest' 2>/dev/null; then
  echo "==> installing openai and pytest into .venv"
  .venv/bin/pip install -q --disable-pip-version-check openai pytest
fi
