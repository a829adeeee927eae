#!/usr/bin/env bash
# A/B of two Sluice binaries on the full default pipeline (bench/sluice-bench-full.yaml), both up
# together against one mock upstream, in interleaved rounds so that the machine's drift falls on
# both alike: `wrk -c32` (requests/s, CPU per request from /proc/PID/stat), then `wrk -c1` (p50,
# p99, after a pause). Prints each round, the medians, and whether every answered request has
# its audit row.
#   bash bench/ab.sh BINARY_A BINARY_B [ROUNDS]      (ROUNDS default 5; D32, D1: seconds per run)
set -euo pipefail
A=$1; B=$2; ROUNDS=${3:-5}; D32=${D32:-4}; D1=${D1:-4}
OUT=bench/out/ab; rm -rf "$OUT"; mkdir -p "$OUT/a" "$OUT/b"
source bench/common.sh
start_mock "$OUT"
ADMIN_KEY="sk-sluice-ab-admin-$RANDOM$RANDOM$RANDOM$RANDOM"
declare -A PORT=([a]=9391 [b]=9392) PID=() KEY=()
for v in a b; do
  bin=$A; [ "$v" = b ] && bin=$B
  sed -e "s/port: 9289/port: ${PORT[$v]}/" -e "s#out/full/#out/ab/$v/#" bench/sluice-bench-full.yaml >"$OUT/$v/sluice.yaml"
  SLUICE_ADMIN_KEY="$ADMIN_KEY" "$bin" serve --config "$OUT/$v/sluice.yaml" >"$OUT/$v/sluice.log" 2>&1 & PID[$v]=$!; pids+=($!)
done
for v in a b; do
  wait_healthy "${PORT[$v]}"
  KEY[$v]=$(app_key "${PORT[$v]}" "$ADMIN_KEY")
done
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tck=$(getconf CLK_TCK)
url() { echo "http://127.0.0.1:${PORT[$1]}/v1/chat/completions"; }
for v in a b; do wrk -t1 -c32 -d2s -s bench/full.lua -H "authorization: Bearer ${KEY[$v]}" "$(url $v)" >"$OUT/$v/warm.txt"; done
: >"$OUT/rounds.tsv"
for r in $(seq 1 "$ROUNDS"); do
  order="a b"; [ $((r % 2)) -eq 0 ] && order="b a"
  for v in $order; do
    c0=$(cpu "${PID[$v]}")
    wrk -t1 -c32 -d"${D32}s" -s bench/full.lua -H "authorization: Bearer ${KEY[$v]}" "$(url $v)" >"$OUT/$v/c32-$r.txt"
    c1=$(cpu "${PID[$v]}")
    # Let the background writers finish the saturated run's rows first: p99 at one connection is
    # what a quiet server adds, not how fast it digests a backlog.
    sleep "${SETTLE:-2}"
    wrk -t1 -c1 -d"${D1}s" --latency -s bench/full.lua -H "authorization: Bearer ${KEY[$v]}" "$(url $v)" >"$OUT/$v/c1-$r.txt"
    python3 - "$v" "$r" "$OUT/$v/c32-$r.txt" "$OUT/$v/c1-$r.txt" "$c0" "$c1" "$tck" >>"$OUT/rounds.tsv" <<'EOF'
import re, sys
v, r, f32, f1, c0, c1, tck = sys.argv[1:]
t32, t1 = open(f32).read(), open(f1).read()
def ms(s):
    n, u = float(re.match(r"([\d.]+)(\w+)", s).group(1)), re.match(r"[\d.]+(\w+)", s).group(1)
    return n * {"us": 0.001, "ms": 1, "s": 1000}[u]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t32).group(1))
reqs = int(re.search(r"(\d+) requests in", t32).group(1))
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", t32 + t1)
cpu_us = (int(c1) - int(c0)) / int(tck) / reqs * 1e6
p50 = ms(re.search(r"^\s+50%\s+(\S+)", t1, re.M).group(1)); p99 = ms(re.search(r"^\s+99%\s+(\S+)", t1, re.M).group(1))
print(f"{v}\t{r}\t{rps:.0f}\t{cpu_us:.1f}\t{p50:.3f}\t{p99:.3f}\t{bad.group(1) if bad else 0}")
EOF
    tail -1 "$OUT/rounds.tsv"
  done
done
# Every request wrk saw answered must have its audit row (the writers must keep up, whatever their priority).
sleep 1.5
for v in a b; do
  python3 - "$v" "$OUT/$v" <<'EOF'
import glob, re, sqlite3, sys
v, d = sys.argv[1:]
answered = sum(int(re.search(r"(\d+) requests in", open(f).read()).group(1)) for f in glob.glob(d + "/*.txt"))
rows = sqlite3.connect(d + "/sluice-bench.db").execute("select count(*) from requests").fetchone()[0]
print(f"{v}: {answered} requests answered to wrk, {rows} audit rows" + ("" if rows >= answered else "  <-- ROWS MISSING"))
EOF
done
python3 - "$OUT/rounds.tsv" <<'EOF'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n") if l]
print("binary  req/s@32  CPU µs/req  p50@1 ms  p99@1 ms  non-2xx")
for v in "ab":
    rs = [r for r in rows if r[0] == v]
    med = lambda i: statistics.median(float(r[i]) for r in rs)
    print(f"{v:6}  {med(2):8.0f}  {med(3):10.1f}  {med(4):8.3f}  {med(5):8.3f}  {sum(int(r[6]) for r in rs)}")
EOF
