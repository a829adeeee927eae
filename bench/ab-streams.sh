#!/usr/bin/env bash
# A/B of two Sluice binaries on streamed answers (bench/sluice-bench.yaml without the local
# model: auth off, audit log and log line on), both up together against one mock upstream, in
# interleaved rounds: `wrk -c8` of streamed chat completions (streams/s, Sluice's CPU per stream
# from /proc/PID/stat), then the time to first event of 300 streams on new connections and 300
# on one kept-alive connection (bench/ttft.py). Prints each round and the medians.
#   bash bench/ab-streams.sh BINARY_A BINARY_B [ROUNDS]      (ROUNDS default 6; D: seconds per wrk run)
# GAP_US=N paces the mock's streams like a model's (one event every N µs, one per read) and C sets
# wrk's connections (default 8).
set -euo pipefail
A=$1; B=$2; ROUNDS=${3:-6}; D=${D:-4}; C=${C:-8}; GAP_US=${GAP_US:-}
OUT=bench/out/ab-streams; rm -rf "$OUT"; mkdir -p "$OUT"
source bench/common.sh
start_mock "$OUT" "$GAP_US"
cat >"$OUT/stream.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"model":"mock","stream":true,"messages":[{"role":"user","content":"Say hello"}]}'
wrk.headers["Content-Type"] = "application/json"
LUA
declare -A PORT=([a]=9491 [b]=9492) PID=()
for v in a b; do
  bin=$A; [ "$v" = b ] && bin=$B
  grep -v "local\|all-minilm" bench/sluice-bench.yaml |
    sed -e "s/port: 9280/port: ${PORT[$v]}/" -e "s#./bench/out/sluice-bench.db#$OUT/$v.db#" >"$OUT/$v.yaml"
  "$bin" serve --config "$OUT/$v.yaml" >"$OUT/$v.log" 2>&1 & PID[$v]=$!; pids+=($!)
done
for v in a b; do wait_healthy "${PORT[$v]}"; done
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tck=$(getconf CLK_TCK)
url() { echo "http://127.0.0.1:${PORT[$1]}/v1/chat/completions"; }
for v in a b; do wrk -t1 -c"$C" -d2s -s "$OUT/stream.lua" "$(url $v)" >/dev/null; done
: >"$OUT/rounds.tsv"
for r in $(seq 1 "$ROUNDS"); do
  order="a b"; [ $((r % 2)) -eq 0 ] && order="b a"
  for v in $order; do
    c0=$(cpu "${PID[$v]}")
    wrk -t1 -c"$C" -d"${D}s" -s "$OUT/stream.lua" "$(url $v)" >"$OUT/wrk-$v-$r.txt"
    c1=$(cpu "${PID[$v]}")
    sleep 1
    new=$(python3 bench/ttft.py "${PORT[$v]}" 300 | awk '{print $1}')
    keep=$(python3 bench/ttft.py "${PORT[$v]}" 300 keep | awk '{print $1}')
    python3 - "$v" "$r" "$OUT/wrk-$v-$r.txt" "$c0" "$c1" "$tck" "$new" "$keep" >>"$OUT/rounds.tsv" <<'PY'
import re, sys
v, r, f, c0, c1, tck, new, keep = sys.argv[1:]
t = open(f).read()
n = int(re.search(r"(\d+) requests in", t).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
print(f"{v}\t{r}\t{rps:.0f}\t{(int(c1) - int(c0)) / int(tck) / n * 1e6:.1f}\t{new}\t{keep}")
PY
    tail -1 "$OUT/rounds.tsv"
  done
done
python3 - "$OUT/rounds.tsv" <<'PY'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines() if l]
print("binary  streams/s  CPU µs/stream  first event new (ms)  first event kept-alive (ms)")
for v in "ab":
    r = [x for x in rows if x[0] == v]
    m = lambda i: statistics.median(float(x[i]) for x in r)
    print(f"{v:<7} {m(2):>9.0f}  {m(3):>13.1f}  {m(4):>20.3f}  {m(5):>27.3f}")
PY
