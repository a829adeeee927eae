# Shared by the bench scripts (sourced, from the repository root): every process a script starts
# goes into `pids` and is stopped on every exit path; the mock upstream; a Sluice's health; an app
# key whose limits are all on but never reached in a run.
pids=()
bench_cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap bench_cleanup EXIT

# start_mock DIR [GAP_US]: compiles bench/mock-upstream.c into DIR and starts it on 127.0.0.1:9100
# (with GAP_US, streamed answers come one event every GAP_US microseconds).
start_mock() {
  cc -O2 -o "$1/mock-upstream" bench/mock-upstream.c
  "$1/mock-upstream" 9100 ${2:-} 2>"$1/mock.log" & pids+=($!)
}

# wait_healthy PORT: until Sluice on PORT answers /healthz (10 s at most).
wait_healthy() {
  for _ in $(seq 1 100); do curl -fs -o /dev/null "http://127.0.0.1:$1/healthz" && return 0; sleep 0.1; done
  echo "nothing healthy on port $1" >&2
  return 1
}

# app_key PORT ADMIN_KEY: prints a new app key of the Sluice on PORT.
app_key() {
  curl -fs -X POST -H "authorization: Bearer $2" -H 'content-type: application/json' \
    -d '{"name":"bench","role":"app","rpm":100000000,"tpm":2000000000,"max_concurrent":1000,"budget_usd_day":1000000}' \
    "http://127.0.0.1:$1/admin/keys" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])'
}
