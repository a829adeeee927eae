#!/usr/bin/env bash
# Sluice's proxy overhead, measured side by side in one run: wrk against the mock upstream
# directly, through nginx (a plain reverse proxy: the practical ceiling), and through Sluice
# (release build, openai-compatible provider, audit log on), at 32 connections and at 1, plus
# time to first event of a stream. Everything listens on 127.0.0.1 and stops by itself.
#
#   make bench                 # BENCH_DURATION=10 seconds per run by default
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=bench/out
DURATION=${BENCH_DURATION:-10}
STREAMS=${BENCH_STREAMS:-300}
SLUICE=${SLUICE_BIN:-.build/release/sluice}
rm -rf "$OUT" && mkdir -p "$OUT/nginx/tmp"

cc -O2 -o bench/mock-upstream bench/mock-upstream.c
cc -O2 -shared -fPIC -o "$OUT/malloc-count.so" bench/malloc-count.c -lpthread
# Figures depend on the machine: name it beside them.
{ grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'; nproc; } >"$OUT/machine.txt"
echo "==> on $(head -n1 "$OUT/machine.txt"), $(tail -n1 "$OUT/machine.txt") CPUs"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

bench/mock-upstream 9100 2>"$OUT/mock.log" & pids+=($!)
nginx -p "$PWD/$OUT/nginx" -c "$PWD/bench/nginx.conf" 2>"$OUT/nginx.log" & pids+=($!)
"$SLUICE" serve --config bench/sluice-bench.yaml >"$OUT/sluice.log" 2>&1 & pids+=($!)
ADMIN_KEY="sk-sluice-bench-admin-$RANDOM$RANDOM$RANDOM$RANDOM"
mkdir -p "$OUT/auth"
SLUICE_ADMIN_KEY="$ADMIN_KEY" "$SLUICE" serve --config bench/sluice-bench-auth.yaml >"$OUT/sluice-auth.log" 2>&1 & pids+=($!)
# The full default pipeline (keys and limits, input guardrails, exact cache, audit, metrics, log line).
mkdir -p "$OUT/full" "$OUT/full-count"
SLUICE_ADMIN_KEY="$ADMIN_KEY" "$SLUICE" serve --config bench/sluice-bench-full.yaml >"$OUT/sluice-full.log" 2>&1 & FULL_PID=$!; pids+=($FULL_PID)
# The same again with its heap allocations counted (a process of its own, so the count's atomic
# increments cost the timed runs nothing).
sed -e 's/port: 9289/port: 9290/' -e 's#out/full/#out/full-count/#' bench/sluice-bench-full.yaml >"$OUT/full-count/sluice.yaml"
MALLOC_COUNT_FILE="$PWD/$OUT/full-count/allocations" LD_PRELOAD="$PWD/$OUT/malloc-count.so" SLUICE_ADMIN_KEY="$ADMIN_KEY" \
  "$SLUICE" serve --config "$OUT/full-count/sluice.yaml" >"$OUT/sluice-full-count.log" 2>&1 & COUNT_PID=$!; pids+=($COUNT_PID)
# Observability off (metrics, audit log, request log line), to measure what it costs.
"$SLUICE" serve --config bench/sluice-bench-bare.yaml >"$OUT/sluice-bare.log" 2>&1 & BARE_PID=$!; pids+=($BARE_PID)
# The audit log without bodies: splits the bodies' cost from the rest.
"$SLUICE" serve --config bench/sluice-bench-nobodies.yaml >"$OUT/sluice-nobodies.log" 2>&1 & NOBODIES_PID=$!; pids+=($NOBODIES_PID)
# Tracing on, every request and one in ten, exported to nginx standing in for a collector.
"$SLUICE" serve --config bench/sluice-bench-traced.yaml >"$OUT/sluice-traced.log" 2>&1 & TRACED_PID=$!; pids+=($TRACED_PID)
"$SLUICE" serve --config bench/sluice-bench-sampled.yaml >"$OUT/sluice-sampled.log" 2>&1 & SAMPLED_PID=$!; pids+=($SAMPLED_PID)

wait_for() {
  for _ in $(seq 1 100); do
    curl -fs -o /dev/null -X POST -H 'content-type: application/json' \
      -d '{"model":"mock","messages":[{"role":"user","content":"x"}]}' "http://127.0.0.1:$1/v1/chat/completions" && return 0
    sleep 0.1
  done
  echo "port $1 did not answer" >&2; exit 1
}
wait_for 9100; wait_for 9180; wait_for 9280; wait_for 9283; wait_for 9284; wait_for 9285; wait_for 9286
for port in 9281 9289 9290; do
  for _ in $(seq 1 100); do curl -fs -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
done
# An app key whose limits are all on but never reached in the run.
app_key() {
  curl -fs -X POST -H "authorization: Bearer $ADMIN_KEY" -H 'content-type: application/json' \
    -d '{"name":"bench","role":"app","rpm":100000000,"tpm":2000000000,"max_concurrent":1000,"budget_usd_day":1000000}' \
    "http://127.0.0.1:$1/admin/keys" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])'
}
APP_KEY=$(app_key 9281)
FULL_KEY=$(app_key 9289)
COUNT_KEY=$(app_key 9290)

declare -A URL=([direct]=http://127.0.0.1:9100 [nginx]=http://127.0.0.1:9180 [sluice]=http://127.0.0.1:9280 [sluice-auth]=http://127.0.0.1:9281 [sluice-bare]=http://127.0.0.1:9283 [sluice-full]=http://127.0.0.1:9289)
declare -A AUTH=([direct]="x-none: 0" [nginx]="x-none: 0" [sluice]="x-none: 0" [sluice-auth]="authorization: Bearer $APP_KEY" [sluice-bare]="x-none: 0" [sluice-full]="authorization: Bearer $FULL_KEY")
# Every target gets the same requests: a new prompt each time (bench/full.lua), which only the
# full pipeline's exact cache notices (it looks up, misses and stores every one).
echo "==> warm-up"
for t in direct nginx sluice sluice-auth sluice-bare sluice-full; do wrk -t1 -c32 -d2s -s bench/full.lua -H "${AUTH[$t]}" "${URL[$t]}/v1/chat/completions" >/dev/null; done
for c in 32 1; do
  for t in direct nginx sluice sluice-bare sluice-auth sluice-full; do
    echo "==> wrk $t, $c connection(s), ${DURATION}s"
    wrk -t1 -c"$c" -d"${DURATION}s" --latency -s bench/full.lua -H "${AUTH[$t]}" "${URL[$t]}/v1/chat/completions" >"$OUT/wrk-$t-$c.txt"
  done
done

# Heap allocations per request through the full pipeline: the counter before and after a run of
# known length, after a warm-up (first requests fill caches and pools).
echo "==> allocations per request, full pipeline"
count_url=http://127.0.0.1:9290/v1/chat/completions
wrk -t1 -c8 -d2s -s bench/full.lua -H "authorization: Bearer $COUNT_KEY" "$count_url" >/dev/null
sleep 0.5
before=$(cat "$OUT/full-count/allocations")
wrk -t1 -c8 -d5s -s bench/full.lua -H "authorization: Bearer $COUNT_KEY" "$count_url" >"$OUT/allocations-wrk.txt"
sleep 0.5
after=$(cat "$OUT/full-count/allocations")
echo "$(grep -o '[0-9]* requests in' "$OUT/allocations-wrk.txt" | cut -d' ' -f1) $before $after" >"$OUT/allocations.txt"
# Task enqueues per request at one connection: each is a trip through an event loop's queue
# (docs/performance.md, "Task hops"); every job runs as the generic executor, so this counts
# only real suspensions. And executor switches (`swift_task_switch`): one where an async call
# returns or a function must run elsewhere, each a runtime call and a read of the task's status
# whether or not it moves the task. Counted by uprobes on the concurrency runtime where perf can
# add them (root and perf present); skipped elsewhere.
CONCURRENCY_LIB=$(ldd "$SLUICE" | awk '/libswift_Concurrency.so/ {print $3}')
if command -v perf >/dev/null && [ -n "$CONCURRENCY_LIB" ]; then
  for f in swift_task_enqueue swift_task_switch; do perf probe -q -d "probe_libswift_Concurrency:$f" 2>/dev/null || true; done
  if perf probe -q -x "$CONCURRENCY_LIB" -a swift_task_enqueue 2>/dev/null && perf probe -q -x "$CONCURRENCY_LIB" -a swift_task_switch 2>/dev/null; then
    echo "==> task enqueues and executor switches per request, full pipeline"
    perf stat -x, -e probe_libswift_Concurrency:swift_task_enqueue,probe_libswift_Concurrency:swift_task_switch \
      -p "$COUNT_PID" -o "$OUT/enqueues-stat.txt" -- sleep 4 &
    STAT_PID=$!
    sleep 0.5
    wrk -t1 -c1 -d3s -s bench/full.lua -H "authorization: Bearer $COUNT_KEY" "$count_url" >"$OUT/enqueues-wrk.txt"
    wait "$STAT_PID" || true
    echo "$(grep -o '[0-9]* requests in' "$OUT/enqueues-wrk.txt" | cut -d' ' -f1)" \
      "$(grep swift_task_enqueue "$OUT/enqueues-stat.txt" | cut -d, -f1)" \
      "$(grep swift_task_switch "$OUT/enqueues-stat.txt" | cut -d, -f1)" >"$OUT/enqueues.txt"
  fi
  for f in swift_task_enqueue swift_task_switch; do perf probe -q -d "probe_libswift_Concurrency:$f" 2>/dev/null || true; done
fi
kill -TERM "$COUNT_PID"; wait "$COUNT_PID" || true

# The server floors: bare Hummingbird and bare SwiftNIO answering the chat route with a fixed
# completion (bench/floor), requests/s at 32 connections and CPU per request, so that Sluice's
# own cost and what a NIO-level fast path could save are read side by side. Then each floor's
# latency beside the mock's (direct): p50 at one connection, and the first byte of an answer on
# a new connection and on a kept-alive one, which bound the latency targets from below.
echo "==> server floors: bare Hummingbird, bare SwiftNIO"
FLOOR=${FLOOR_BIN:-.build/release/bench-floor}
: >"$OUT/floor.txt"
floor_latency() {  # NAME PORT
  wrk -t1 -c1 -d"${DURATION}s" --latency -s bench/full.lua "http://127.0.0.1:$2/v1/chat/completions" >"$OUT/floor-$1-1.txt"
  echo "$1 $(python3 bench/first_byte.py "$2" 500)" >>"$OUT/floor-latency.txt"
}
: >"$OUT/floor-latency.txt"
floor_latency direct 9100
for pair in "hummingbird 9293" "nio 9294"; do
  set -- $pair
  "$FLOOR" "$1" "$2" & floor_pid=$!; pids+=($floor_pid)
  for _ in $(seq 1 100); do curl -fs -o /dev/null -X POST -d '{}' "http://127.0.0.1:$2/v1/chat/completions" && break; sleep 0.1; done
  wrk -t1 -c32 -d2s -s bench/full.lua "http://127.0.0.1:$2/v1/chat/completions" >/dev/null
  ticks0=$(awk '{print $14 + $15}' "/proc/$floor_pid/stat")
  wrk -t1 -c32 -d"${DURATION}s" -s bench/full.lua "http://127.0.0.1:$2/v1/chat/completions" >"$OUT/floor-$1.txt"
  ticks1=$(awk '{print $14 + $15}' "/proc/$floor_pid/stat")
  echo "$1 $(awk '/Requests\/sec/{print $2}' "$OUT/floor-$1.txt") $(awk '/requests in/{print $1}' "$OUT/floor-$1.txt") $((ticks1 - ticks0)) $(getconf CLK_TCK)" >>"$OUT/floor.txt"
  floor_latency "$1" "$2"
  kill "$floor_pid"; wait "$floor_pid" 2>/dev/null || true
done

# What observability costs, interleaved so that the machine's drift hits all alike: Sluice's
# CPU time per request (user + system, from /proc/PID/stat) and requests/s, everything on /
# audit log without bodies / tracing on top (all requests, one in ten) / metrics, audit log and
# log line off. Twice per round: saturated (32 connections flat out), and paced (32 connections,
# each waiting PACE_MS between requests, so every target serves about the same load).
echo "==> observability on and off, ${OBS_ROUNDS:-3} interleaved rounds"
declare -A OBS_PORT=([sluice]=9280 [sluice-nobodies]=9284 [sluice-traced]=9285 [sluice-sampled]=9286 [sluice-bare]=9283)
declare -A OBS_PID=([sluice]=${pids[2]} [sluice-nobodies]=$NOBODIES_PID [sluice-traced]=$TRACED_PID [sluice-sampled]=$SAMPLED_PID [sluice-bare]=$BARE_PID)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
: >"$OUT/observability.txt"
for r in $(seq 1 "${OBS_ROUNDS:-3}"); do
  for load in saturated paced; do
    script=bench/post.lua
    [ "$load" = paced ] && script=bench/paced.lua
    for t in sluice sluice-nobodies sluice-traced sluice-sampled sluice-bare; do
      before=$(cpu_ticks "${OBS_PID[$t]}")
      PACE_MS=${PACE_MS:-2} wrk -t1 -c32 -d"${OBS_DURATION:-5}s" -s "$script" "http://127.0.0.1:${OBS_PORT[$t]}/v1/chat/completions" >"$OUT/obs-$t-$load-$r.txt"
      # The audit-log writer flushes every 200 ms: its work for this round lands in this round.
      sleep 0.5
      echo "$t $load $r $(grep -o '[0-9]* requests in' "$OUT/obs-$t-$load-$r.txt" | cut -d' ' -f1) $(grep Requests/sec "$OUT/obs-$t-$load-$r.txt" | awk '{print $2}') $before $(cpu_ticks "${OBS_PID[$t]}") $(getconf CLK_TCK)" >>"$OUT/observability.txt"
    done
  done
done

# A flow run against the same request sent as a plain chat completion, same server, one
# connection, interleaved rounds: what the flow stage and the run's answer add to p50.
echo "==> flow run against plain chat, ${FLOW_ROUNDS:-3} interleaved rounds"
for r in $(seq 1 "${FLOW_ROUNDS:-3}"); do
  wrk -t1 -c1 -d"${OBS_DURATION:-5}s" --latency -s bench/post.lua http://127.0.0.1:9280/v1/chat/completions >"$OUT/flow-chat-$r.txt"
  wrk -t1 -c1 -d"${OBS_DURATION:-5}s" --latency -s bench/flow.lua http://127.0.0.1:9280/v1/flows/hello/run >"$OUT/flow-run-$r.txt"
done

# Batches: a 10,000-line batch alone (lines/s, Sluice's CPU per line), the same requests live
# (CPU per request, p95), and live p95 while a second batch runs; a server of its own.
echo "==> batches: ${BATCH_LINES:-10000} lines against the same requests live"
mkdir -p "$OUT/batch"
"$SLUICE" serve --config bench/sluice-bench-batch.yaml >"$OUT/sluice-batch.log" 2>&1 & BATCH_PID=$!; pids+=($BATCH_PID)
for _ in $(seq 1 100); do curl -fs -o /dev/null http://127.0.0.1:9287/healthz && break; sleep 0.1; done
python3 bench/batches.py 9287 "$BATCH_PID" "${BATCH_LINES:-10000}" >"$OUT/batches.json"
kill -TERM "$BATCH_PID"; wait "$BATCH_PID" || true

echo "==> time to first event, $STREAMS streams each"
python3 bench/ttft.py 9100 "$STREAMS" >"$OUT/ttft-direct.txt"
python3 bench/ttft.py 9280 "$STREAMS" >"$OUT/ttft-sluice.txt"
python3 bench/ttft.py 9100 "$STREAMS" keep >"$OUT/ttft-direct-keep.txt"
python3 bench/ttft.py 9280 "$STREAMS" keep >"$OUT/ttft-sluice-keep.txt"

echo "==> all-MiniLM-L6-v2 embeddings through Sluice"
python3 bench/embeddings.py 9280 "${pids[2]}" >"$OUT/embeddings.txt"

# Memory with large bodies: 80 requests of 3 MB, 8 at a time, bodies kept in the audit log; the
# writer's queue is bounded in bytes (store.audit_log.queue_max_bytes), so RSS has a ceiling.
echo "==> large bodies: resident memory"
rm -f "$OUT"/sluice-bench-large.db*
"$SLUICE" serve --config bench/sluice-bench-large.yaml >"$OUT/sluice-large.log" 2>&1 & LARGE_PID=$!; pids+=($LARGE_PID)
for _ in $(seq 1 100); do curl -fs -o /dev/null http://127.0.0.1:9288/healthz && break; sleep 0.1; done
python3 bench/large_bodies.py 9288 "$LARGE_PID" >"$OUT/large-bodies.json"
cat "$OUT/large-bodies.json"
kill -TERM "$LARGE_PID"; wait "$LARGE_PID" || true

# Many streams held open: a slow upstream (one event a second), every stream open together for
# ~20 s, Sluice's peak RSS, and ordinary requests' p50 while they are open. Sluice holds two
# descriptors per stream (client and upstream), so the count is capped by this machine's limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
HELD=${BENCH_STREAMS_HELD:-10000}
CAP=$(( ($(ulimit -n) - 400) / 2 ))
[ "$HELD" -gt "$CAP" ] && HELD=$CAP
echo "==> $HELD streams held open at once"
mkdir -p "$OUT/streams"
"$SLUICE" serve --config bench/sluice-bench-streams.yaml >"$OUT/sluice-streams.log" 2>&1 & STREAMS_PID=$!; pids+=($STREAMS_PID)
for _ in $(seq 1 100); do curl -fs -o /dev/null http://127.0.0.1:9291/healthz && break; sleep 0.1; done
python3 bench/streams.py 9291 "$STREAMS_PID" 9101 "$HELD" >"$OUT/streams.json"
cat "$OUT/streams.json"
kill -TERM "$STREAMS_PID"; wait "$STREAMS_PID" || true

# Stop Sluice gracefully so the audit log is flushed, then count what it wrote.
kill -TERM "${pids[2]}"; wait "${pids[2]}" || true
kill -TERM "${pids[3]}"; wait "${pids[3]}" || true
kill -TERM "$FULL_PID"; wait "$FULL_PID" || true
kill -TERM "$BARE_PID"; wait "$BARE_PID" || true
for p in "$NOBODIES_PID" "$TRACED_PID" "$SAMPLED_PID"; do kill -TERM "$p"; wait "$p" || true; done

# Guardrails: the detectors on the team's labelled sets (when ../shared is there) and the
# latency of a full input check, in process.
echo "==> guardrails: detectors on the labelled sets, input-check latency"
GUARD_ARGS=(--latency)
[ -f ../shared/data/pii/dev.jsonl ] && GUARD_ARGS+=(--pii ../shared/data/pii/dev.jsonl)
[ -f ../shared/data/injection/dev.jsonl ] && GUARD_ARGS+=(--injection ../shared/data/injection/dev.jsonl)
"$SLUICE" eval guardrails "${GUARD_ARGS[@]}" >"$OUT/guardrails.txt"
# The same PII set with the entity tagger on (pii: {ner: true}), and the tagger's own latency.
if [ -f ../shared/data/pii/dev.jsonl ]; then
  echo "==> guardrails: PII with the entity tagger"
  { echo; echo "With the entity tagger (--ner):"
    "$SLUICE" eval guardrails --pii ../shared/data/pii/dev.jsonl --ner --minilm .sluice/models/all-minilm-l6-v2 --latency; } >>"$OUT/guardrails.txt"
fi

# Routing: cheap-vs-strong accuracy and cost saved on the labelled set (scripts/routing-set.py).
echo "==> complexity routing on bench/routing/labelled.jsonl"
"$SLUICE" eval routing --set bench/routing/labelled.jsonl --minilm .sluice/models/all-minilm-l6-v2 >"$OUT/routing.txt"

# Semantic cache: hit and false-hit rates on the paraphrase sets by source (QQP, GPTCache, PAWS),
# with and without the question check; index lookups at 100,000 entries.
echo "==> semantic cache: paraphrase set, index latency"
CACHE_ARGS=(--minilm .sluice/models/all-minilm-l6-v2 --index-size 100000)
[ -f ../shared/data/paraphrase/dev.jsonl ] && CACHE_ARGS+=(--paraphrase ../shared/data/paraphrase/dev.jsonl --by-source)
[ -f ../shared/data/paraphrase/paws_dev.jsonl ] && CACHE_ARGS+=(--paraphrase ../shared/data/paraphrase/paws_dev.jsonl)
"$SLUICE" eval cache "${CACHE_ARGS[@]}" >"$OUT/cache.txt"

# Retrieval: search latency and memory with 100,000 chunks in one store (SQLite on disk),
# ingestion throughput with MiniLM, and (when ../shared is there) recall on the RAG set and the
# grounding detector.
echo "==> retrieval: search at 100,000 chunks, ingestion, recall, grounding"
RAG_ARGS=(--minilm .sluice/models/all-minilm-l6-v2 --index-size 100000)
[ -f ../shared/data/rag/corpus.jsonl ] && RAG_ARGS+=(--corpus ../shared/data/rag/corpus.jsonl --ingest 1000 --questions ../shared/data/rag/dev.jsonl)
"$SLUICE" eval retrieval "${RAG_ARGS[@]}" >"$OUT/retrieval.txt"
if [ -f ../shared/data/rag/grounding_dev.jsonl ]; then
  "$SLUICE" eval grounding --labelled ../shared/data/rag/grounding_dev.jsonl --grounded ../shared/data/rag/dev.jsonl \
    --corpus ../shared/data/rag/corpus.jsonl >>"$OUT/retrieval.txt"
fi

# The local model last, alone: llama-server's 2 threads take both cores.
echo "==> Gemma 3 270M: llama-server directly and through Sluice, interleaved"
"$SLUICE" serve --config bench/sluice-bench-local.yaml >"$OUT/sluice-local.log" 2>&1 & LOCAL_PID=$!; pids+=($LOCAL_PID)
LLAMA_PORT=""
for _ in $(seq 1 600); do
  LLAMA_PORT=$(grep -o 'local model server ready.*' "$OUT/sluice-local.log" | grep -o 'port=[0-9]*' | head -n 1 | cut -d= -f2 || true)
  [ -n "$LLAMA_PORT" ] && break
  sleep 0.2
done
[ -n "$LLAMA_PORT" ] || { echo "the local model did not start; see $OUT/sluice-local.log" >&2; exit 1; }
for _ in $(seq 1 100); do curl -fs -o /dev/null http://127.0.0.1:9282/healthz && break; sleep 0.1; done
python3 bench/local_chat.py 9282 "$LLAMA_PORT" "${BENCH_LOCAL_ROUNDS:-8}" >"$OUT/local-chat.json"
kill -TERM "$LOCAL_PID"; wait "$LOCAL_PID" || true
python3 bench/report.py "$OUT"
