#!/usr/bin/env python3
"""A batch of LINES chat completions on the mock upstream, through Sluice, against the same
requests sent live, all in one run on one server:

  1. the batch alone: lines per second (creation to completed) and Sluice's CPU per line;
  2. live requests alone (wrk, 4 connections paced by PACE_MS): Sluice's CPU per request and p95;
  3. the same live load while a second batch runs: live p95 with a batch running.

CPU is user + system of the Sluice process from /proc/PID/stat. Prints one JSON object.

usage: batches.py PORT PID LINES
"""
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid

port, pid, lines = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
base = f"http://127.0.0.1:{port}/v1"
hz = os.sysconf("SC_CLK_TCK")
WRK_SECONDS = int(os.environ.get("BATCH_WRK_SECONDS", "5"))


def cpu():
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / hz


def call(method, path, body=None, headers=None):
    request = urllib.request.Request(base + path, data=body, method=method, headers=headers or {})
    return json.loads(urllib.request.urlopen(request, timeout=60).read())


def upload(n, tag):
    # As bench/post.lua's request; each line's text differs, so no cache could answer it.
    text = "".join(json.dumps({"custom_id": f"{tag}-{i}", "method": "POST", "url": "/v1/chat/completions",
                               "body": {"model": "mock", "messages": [{"role": "user", "content": f"Say hello {i}"}], "max_tokens": 16}}) + "\n"
                   for i in range(n))
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\ncontent-disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"
            f"--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"{tag}.jsonl\"\r\n"
            f"content-type: application/jsonl\r\n\r\n{text}\r\n--{boundary}--\r\n").encode()
    return call("POST", "/files", body, {"content-type": f"multipart/form-data; boundary={boundary}"})["id"]


def create(file_id):
    body = json.dumps({"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"}).encode()
    return call("POST", "/batches", body, {"content-type": "application/json"})["id"]


def wait(batch_id, statuses, seconds=600):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        batch = call("GET", f"/batches/{batch_id}")
        if batch["status"] in statuses:
            return batch
        time.sleep(0.2)
    raise SystemExit(f"batch {batch_id} stayed {batch['status']}")


def live():
    """Paced live load for WRK_SECONDS: p95 (ms), requests, non-2xx, and Sluice's CPU per request (us)."""
    before = cpu()
    out = subprocess.run(["wrk", "-t1", "-c4", f"-d{WRK_SECONDS}s", "-s", "bench/p95.lua", f"http://127.0.0.1:{port}/v1/chat/completions"],
                         capture_output=True, text=True, check=True, env=dict(os.environ, PACE_MS=os.environ.get("PACE_MS", "2"))).stdout
    spent = cpu() - before
    values = dict(line.split() for line in out.splitlines() if line.split() and line.split()[0] in ("p95_us", "requests", "non2xx"))
    n = int(values["requests"])
    return {"p95_ms": int(values["p95_us"]) / 1000, "requests": n, "non2xx": int(values["non2xx"]), "cpu_us": spent / n * 1e6}


first, second = upload(lines, "a"), upload(lines, "b")

# 1. The batch alone.
before, start = cpu(), time.monotonic()
done = wait(create(first), {"completed", "failed", "cancelled", "expired"})
elapsed, spent = time.monotonic() - start, cpu() - before
assert done["status"] == "completed", done
counts = done["request_counts"]

# 2. Live alone, then 3. live while the second batch runs.
alone = live()
running = create(second)
wait(running, {"in_progress"})
during = live()
overlapped = call("GET", f"/batches/{running}")["status"] == "in_progress"
wait(running, {"completed"})

print(json.dumps({
    "lines": lines, "completed": counts["completed"], "failed": counts["failed"],
    "lines_per_s": lines / elapsed, "batch_cpu_us_per_line": spent / lines * 1e6,
    "live_cpu_us_per_request": alone["cpu_us"], "cpu_ratio": spent / lines * 1e6 / alone["cpu_us"],
    "live_alone": alone, "live_during_batch": during, "batch_ran_throughout": overlapped,
}))
