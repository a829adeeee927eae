#!/usr/bin/env bash
# `make fuzz`: Schemathesis drives OpenAI's own OpenAPI description of the routes Sluice serves
# (tests/fuzz/openai-subset.json) against a Sluice on loopback with the simulated provider, then
# hand-written malformed HTTP (tests/fuzz/malformed_http.py). Bounded: FUZZ_EXAMPLES generated
# requests per operation (default 1000) and a wall-clock limit. Fails on any 5xx, an answer whose
# content type, headers or (for 2xx) body break the spec, invalid data accepted, or a server that
# stops answering. Status codes are not checked against the spec: it documents only 200 (and
# 429), while a 400, 401 or 404 is the right answer to most generated requests; nor is invalid
# data's rejection: Sluice takes an explicit null in an optional field as absent (SDKs send
# them), which the document does not allow for some fields. Not part of `make test`.
set -euo pipefail
cd "$(dirname "$0")/../.."
EXAMPLES="${FUZZ_EXAMPLES:-1000}"
LIMIT_S="${FUZZ_LIMIT_S:-1500}"
BIN="${SLUICE_BIN:-.build/debug/sluice}"
PORT="${FUZZ_PORT:-18181}"
OUT=bench/out/fuzz
mkdir -p "$OUT"

if [ ! -x .venv-fuzz/bin/schemathesis ]; then
  echo "==> installing Schemathesis into .venv-fuzz"
  python3 -m venv .venv-fuzz
  .venv-fuzz/bin/pip install -q --disable-pip-version-check schemathesis
fi
[ -x "$BIN" ] || swift build -j "${SWIFT_JOBS:-2}" --product sluice

cat > "$OUT/sluice.yaml" <<YAML
server: { host: 127.0.0.1, port: $PORT, max_body_bytes: 1048576, header_timeout_s: 10, body_timeout_s: 20 }
store: { sqlite: ":memory:", audit_log: { log_bodies: redacted } }
auth: { enabled: true }
providers:
  sim: { kind: simulated, reply: "Fuzzed.", ttft_ms: 0, tokens_per_s: 0 }
models:
  - { name: gpt-4o, provider: sim }
  - { name: gpt-4o-mini, provider: sim }
  - { name: text-embedding-3-small, provider: sim, type: embedding }
guardrails:
  default_policy: standard
  policies:
    standard: { input: { pii: { action: redact }, injection: { action: block } } }
YAML

export SLUICE_ADMIN_KEY="sk-admin-fuzz-$(date +%s)"
"$BIN" serve --config "$OUT/sluice.yaml" > "$OUT/sluice.log" 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break
  sleep 0.2
done
KEY=$(curl -sf -X POST "http://127.0.0.1:$PORT/admin/keys" -H "Authorization: Bearer $SLUICE_ADMIN_KEY" \
  -H 'content-type: application/json' -d '{"name":"fuzz"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')

echo "==> Schemathesis: $EXAMPLES examples per operation against 127.0.0.1:$PORT"
set +e
timeout "$LIMIT_S" .venv-fuzz/bin/schemathesis run tests/fuzz/openai-subset.json \
  --url "http://127.0.0.1:$PORT/v1" \
  --header "Authorization: Bearer $KEY" \
  --checks not_a_server_error,content_type_conformance,response_headers_conformance,response_schema_conformance \
  --max-examples "$EXAMPLES" --workers 2 --request-timeout 20 --no-color \
  --report junit --report-dir "$OUT" 2>&1 | tee "$OUT/schemathesis.txt"
STATUS=${PIPESTATUS[0]}
set -e
if [ "$STATUS" = 124 ]; then echo "Schemathesis did not finish within FUZZ_LIMIT_S=$LIMIT_S s (lower FUZZ_EXAMPLES)"; fi

echo "==> malformed HTTP"
.venv-fuzz/bin/python tests/fuzz/malformed_http.py "127.0.0.1" "$PORT" "$KEY"

curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || { echo "Sluice stopped answering"; exit 1; }
# The request line's own status field (fields are sorted: `stream=` follows it); a client's
# string that imitates one is quoted and escaped, so it cannot match.
FIVES=$(grep -c ' status=5[0-9][0-9] stream=' "$OUT/sluice.log" || true)
echo "==> requests answered 5xx (Sluice's log): $FIVES of $(grep -c ' status=[0-9]* stream=' "$OUT/sluice.log" || true)"
[ "$FIVES" = 0 ] || { grep ' status=5[0-9][0-9] stream=' "$OUT/sluice.log" | head -20; exit 1; }
exit "$STATUS"
