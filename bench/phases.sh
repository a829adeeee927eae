#!/usr/bin/env bash
# Where a request's time goes at one connection, without instrumenting Sluice: the full default
# pipeline (bench/sluice-bench-full.yaml) under `wrk -c1`, with perf's syscall tracepoints on
# Sluice's threads. Each request's loop thread reads the client's request, writes the upstream
# call, reads the upstream's answer and writes the client's answer; the gaps between those four
# system calls split the request into Sluice's work before the call, the upstream as Sluice sees
# it, and Sluice's work after it. The loop's work after the answer is written (until it waits
# for the next event) is printed too: it is not on the client's clock at one connection.
# Which descriptor is the upstream is read from the writev's call stack (the connection pool).
# Needs `perf` with tracepoints (root or perf_event_paranoid <= 1); not part of `make bench`.
#
#   bash bench/phases.sh [BINARY]     (default .build/release/sluice; SECONDS_TRACED, default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-.build/release/sluice}; TRACED=${SECONDS_TRACED:-3}
OUT=bench/out/phases; rm -rf "$OUT"; mkdir -p "$OUT"
command -v perf >/dev/null || { echo "phases.sh needs perf (linux-perf)" >&2; exit 2; }
source bench/common.sh
start_mock "$OUT"
ADMIN_KEY="sk-sluice-phases-admin-$RANDOM$RANDOM$RANDOM$RANDOM"
sed -e "s#out/full/#out/phases/#" bench/sluice-bench-full.yaml >"$OUT/sluice.yaml"
SLUICE_ADMIN_KEY="$ADMIN_KEY" "$BIN" serve --config "$OUT/sluice.yaml" >"$OUT/sluice.log" 2>&1 & SP=$!; pids+=($SP)
wait_healthy 9289
KEY=$(app_key 9289 "$ADMIN_KEY")
URL=http://127.0.0.1:9289/v1/chat/completions
wrk -t1 -c1 -d2s -s bench/full.lua "http://127.0.0.1:9100/v1/chat/completions" >/dev/null
wrk -t1 -c1 -d"${TRACED}s" --latency -s bench/full.lua "http://127.0.0.1:9100/v1/chat/completions" >"$OUT/direct.txt"
wrk -t1 -c1 -d2s -s bench/full.lua -H "authorization: Bearer $KEY" "$URL" >/dev/null
perf record -o "$OUT/perf.data" -p "$SP" \
  -e syscalls:sys_enter_read -e "syscalls:sys_enter_writev/call-graph=fp/" -e syscalls:sys_enter_epoll_wait -- sleep "$TRACED" >/dev/null 2>&1 & PP=$!
sleep 0.2
wrk -t1 -c1 -d"$((TRACED - 1))s" --latency -s bench/full.lua -H "authorization: Bearer $KEY" "$URL" >"$OUT/sluice.txt"
wait "$PP" || true
perf script -i "$OUT/perf.data" -F tid,time,event,trace,ip,sym 2>/dev/null >"$OUT/events.txt"
python3 - "$OUT/events.txt" "$OUT/direct.txt" "$OUT/sluice.txt" <<'EOF'
import bisect, collections, os, re, statistics, sys

events = []  # (time, call, fd, tid, stack)
current = None
for line in open(sys.argv[1]):
    if not line.strip():
        continue
    # A header line starts with the thread id, right-aligned (so maybe after spaces); a stack
    # line with an address.
    m = re.match(r"\s*(\d+)\s+([\d.]+):\s+syscalls:sys_enter_(\w+):\s*(.*)", line)
    if m or re.match(r"\s*\d+\s+[\d.]+:", line):
        current = None
        if m:
            fd = re.search(r"(?:fd|epfd): 0x([0-9a-f]+)", m.group(4))
            current = (float(m.group(2)), m.group(3), int(fd.group(1), 16) if fd else -1, int(m.group(1)), [])
            events.append(current)
    elif current is not None:
        current[4].append(line.strip())

upstream = collections.Counter(e[2] for e in events if e[1] == "writev" and any("HTTP1ConnectionPool" in f for f in e[4]))
if not upstream:
    sys.exit("no upstream writes seen: was perf allowed to record?")
up = upstream.most_common(1)[0][0]
client = collections.Counter(e[2] for e in events if e[1] == "writev" and e[2] != up).most_common(1)[0][0]
loop = collections.Counter(e[3] for e in events if e[2] == client).most_common(1)[0][0]
waits = [e[0] for e in events if e[1] == "epoll_wait" and e[3] == loop]

phases = collections.defaultdict(list)
state = None
last_answer = None
crossings = 0
for t, call, fd, tid, _ in events:
    if fd not in (client, up):
        continue
    if fd == up and tid != loop:
        crossings += call == "read"
    if call == "read" and fd == client:
        if last_answer is not None:
            phases["from the answer to the next request's read (wrk, wake-ups)"].append(t - last_answer)
            last_answer = None
        state = ("request", t)
    elif call == "writev" and fd == up and state and state[0] == "request":
        phases["before the call"].append(t - state[1]); state = ("call", t)
    elif call == "read" and fd == up and state and state[0] == "call":
        phases["the upstream, as Sluice sees it"].append(t - state[1]); state = ("answer", t)
    elif call == "writev" and fd == client and state and state[0] == "answer":
        phases["after the call"].append(t - state[1]); last_answer = t
        i = bisect.bisect_right(waits, t)
        if i < len(waits):
            phases["after the answer is written (off the client's clock)"].append(waits[i] - t)
        state = None

def p50(path):
    text = open(path).read()
    v, unit = re.search(r"^\s+50%\s+([\d.]+)(\w+)", text, re.M).groups()
    return float(v) * {"us": 1, "ms": 1000, "s": 1e6}[unit]

# The slowest requests: which phase made them slow.
if os.environ.get("TAIL"):
    rows = list(zip(phases["before the call"], phases["the upstream, as Sluice sees it"], phases["after the call"]))
    totals = sorted(range(len(rows)), key=lambda i: -sum(rows[i]))
    print("slowest 1% (before, upstream, after, µs):")
    for i in totals[: max(1, len(rows) // 100)]:
        print("   ", " ".join(f"{x * 1e6:6.0f}" for x in rows[i]), f"= {sum(rows[i]) * 1e6:6.0f}")
    gaps = sorted(phases["from the answer to the next request's read (wrk, wake-ups)"])[-max(1, len(rows) // 100):]
    print("slowest 1% answer-to-next-read gaps (µs):", " ".join(f"{g * 1e6:.0f}" for g in gaps))
print(f"requests traced: {len(phases['after the call'])}; upstream answers read on another loop than the client's: {crossings}")
for name in ("before the call", "the upstream, as Sluice sees it", "after the call", "after the answer is written (off the client's clock)",
             "from the answer to the next request's read (wrk, wake-ups)"):
    v = sorted(phases[name])
    if v:
        print(f"  {name:55s} p50 {statistics.median(v) * 1e6:7.1f} µs   p90 {v[int(len(v) * 0.9)] * 1e6:7.1f} µs   p99 {v[int(len(v) * 0.99)] * 1e6:7.1f} µs")
print(f"wrk p50: direct {p50(sys.argv[2]):.0f} µs, through Sluice {p50(sys.argv[3]):.0f} µs (perf recording)")
EOF
