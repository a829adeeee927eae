#!/usr/bin/env python3
"""Chat tokens per second and time to first token of the local model (Gemma 3 270M on the
llama-server Sluice runs), directly against that llama-server and through Sluice, in one run:
the two are interleaved request by request so that drift on a shared machine hits both alike.
Every request streams 128 tokens (ignore_eos) from the same prompt, rendered in Gemma's turn
format for the direct calls exactly as Sluice renders it.

usage: local_chat.py SLUICE_PORT LLAMA_PORT [ROUNDS]
"""
import http.client
import json
import statistics
import sys
import threading
import time

sluice_port, llama_port = int(sys.argv[1]), int(sys.argv[2])
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 12
TOKENS = 128
QUESTION = "Write a short story about a lighthouse keeper."
PROMPT = f"<start_of_turn>user\n{QUESTION}<end_of_turn>\n<start_of_turn>model\n"
COMMON = {"max_tokens": TOKENS, "temperature": 0.7, "seed": 1, "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True}}
DIRECT = (llama_port, "/v1/completions", dict(COMMON, prompt=PROMPT, stop=["<end_of_turn>", "<start_of_turn>"]))
SLUICE = (sluice_port, "/v1/chat/completions", dict(COMMON, model="gemma-3-270m", messages=[{"role": "user", "content": QUESTION}]))


def one(target):
    """(ms to the first token, completion tokens, seconds in all) of one streamed request."""
    port, path, body = target
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    start = time.perf_counter()
    conn.request("POST", path, json.dumps(body), {"content-type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200, resp.read()
    first, tokens = None, 0
    for raw in resp:
        line = raw.decode().strip()
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        event = json.loads(line[6:])
        for choice in event.get("choices", []):
            text = choice.get("text") or (choice.get("delta") or {}).get("content")
            if text and first is None:
                first = time.perf_counter()
        if event.get("usage"):
            tokens = event["usage"]["completion_tokens"]
    end = time.perf_counter()
    conn.close()
    return (first - start) * 1000, tokens, end - start


def parallel(target, n):
    """Aggregate tokens per second of n streams at once (the server's slots)."""
    results = [None] * n

    def run(i):
        results[i] = one(target)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(r[1] for r in results) / (time.perf_counter() - start)


one(DIRECT), one(SLUICE)  # warm-up: load the prompt into the cache of a slot
rows = {"direct": [], "sluice": []}
for i in range(rounds):
    order = [("direct", DIRECT), ("sluice", SLUICE)] if i % 2 == 0 else [("sluice", SLUICE), ("direct", DIRECT)]
    for name, target in order:
        rows[name].append(one(target))
agg = {"direct": [], "sluice": []}
for i in range(8):
    for name, target in ([("direct", DIRECT), ("sluice", SLUICE)] if i % 2 == 0 else [("sluice", SLUICE), ("direct", DIRECT)]):
        agg[name].append(parallel(target, 4))

out = {}
for name, r in rows.items():
    out[name] = {
        "ttft_ms_p50": statistics.median(x[0] for x in r),
        "tokens_per_s_p50": statistics.median(x[1] / x[2] for x in r),
        "tokens": sum(x[1] for x in r),
        "tokens_per_s_4_streams": statistics.median(agg[name]),
    }
# Ratios of neighbouring pairs (one direct, one through Sluice, run back to back), then their
# median: the machine's drift over the run cancels within a pair.
out["ratio_tokens_per_s"] = statistics.median(
    (s[1] / s[2]) / (d[1] / d[2]) for d, s in zip(rows["direct"], rows["sluice"]))
out["ratio_tokens_per_s_4_streams"] = statistics.median(s / d for d, s in zip(agg["direct"], agg["sluice"]))
out["added_ttft_ms"] = out["sluice"]["ttft_ms_p50"] - out["direct"]["ttft_ms_p50"]
print(json.dumps(out, indent=2))
