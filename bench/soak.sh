#!/usr/bin/env bash
# A soak: the full default pipeline (bench/sluice-bench-full.yaml) at a steady moderate rate for
# SOAK_S seconds (default 3600), with Sluice's resident memory, open descriptors and audit-log
# backlog sampled every SOAK_SAMPLE_S seconds, then judged (flat within ±5% after the warm-up
# tenth) and plotted to bench/out/soak/soak.svg. Not part of `make test` or `make bench`.
#
#   make soak                    # SOAK_S=3600, 8 connections each pausing SOAK_PACE_MS=40 ms
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=bench/out/soak
SOAK_S=${SOAK_S:-3600}
SAMPLE_S=${SOAK_SAMPLE_S:-10}
SLUICE=${SLUICE_BIN:-.build/release/sluice}
rm -rf "$OUT" && mkdir -p "$OUT/db"
source bench/common.sh

# The full pipeline on a port of its own; the exact cache bounded so that it fills early in the
# run (every prompt is new) and its growth does not pass for a leak.
sed -e 's/port: 9289/port: 9292/' -e "s#./bench/out/full/#./$OUT/db/#" bench/sluice-bench-full.yaml >"$OUT/sluice.yaml"
echo 'cache: { max_entries: 20000 }' >>"$OUT/sluice.yaml"
ADMIN_KEY="sk-sluice-soak-admin-$RANDOM$RANDOM$RANDOM$RANDOM"
start_mock "$OUT"
SLUICE_ADMIN_KEY="$ADMIN_KEY" "$SLUICE" serve --config "$OUT/sluice.yaml" >"$OUT/sluice.log" 2>&1 & SLUICE_PID=$!; pids+=($SLUICE_PID)
wait_healthy 9292
KEY=$(app_key 9292 "$ADMIN_KEY")

echo "==> soak: ${SOAK_S}s at a steady rate, sampling every ${SAMPLE_S}s"
PACE_MS=${SOAK_PACE_MS:-40} wrk -t1 -c8 -d"${SOAK_S}s" -s bench/soak.lua -H "authorization: Bearer $KEY" \
  http://127.0.0.1:9292/v1/chat/completions >"$OUT/wrk.txt" & WRK_PID=$!; pids+=($WRK_PID)
echo "seconds rss_kib fds backlog_bytes requests" >"$OUT/samples.txt"
start=$(date +%s)
while kill -0 "$WRK_PID" 2>/dev/null; do
  now=$(( $(date +%s) - start ))
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$SLUICE_PID/status")
  fds=$(ls "/proc/$SLUICE_PID/fd" | wc -l)
  metrics=$(curl -fs http://127.0.0.1:9292/metrics || true)
  backlog=$(echo "$metrics" | awk '/^sluice_audit_log_backlog_bytes/ {print $2}' | head -n1)
  requests=$(echo "$metrics" | awk '/^sluice_requests_total/ {s += $2} END {print s + 0}')
  echo "$now $rss $fds ${backlog:-0} $requests" >>"$OUT/samples.txt"
  sleep "$SAMPLE_S"
done
wait "$WRK_PID" || true
grep -E "requests in|Requests/sec|Non-2xx" "$OUT/wrk.txt" || true
python3 bench/soak_report.py "$OUT"
