#!/usr/bin/env python3
"""Memory under large request bodies: N chat requests of SIZE bytes each (CONCURRENCY at a time)
against a running Sluice whose audit log keeps bodies; Sluice's resident memory is sampled
every 20 ms from /proc/PID/status. Prints one JSON object: RSS before, at its peak and after
the audit log drained, against the stated ceiling (CEILING_MB), and whether it held.

usage: large_bodies.py PORT PID [N=80] [SIZE=3000000] [CONCURRENCY=8] [CEILING_MB=300]"""
import json
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

port, pid = int(sys.argv[1]), int(sys.argv[2])
count = int(sys.argv[3]) if len(sys.argv) > 3 else 80
size = int(sys.argv[4]) if len(sys.argv) > 4 else 3_000_000
concurrency = int(sys.argv[5]) if len(sys.argv) > 5 else 8
ceiling_mb = float(sys.argv[6]) if len(sys.argv) > 6 else 300


def rss_mb():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


text = ("The quarterly report lists revenue, costs and three open risks for the operations team. " * (size // 90 + 1))[:size]
body = json.dumps({"model": "mock", "messages": [{"role": "user", "content": text}], "max_tokens": 16}).encode()
peak = before = rss_mb()
done = threading.Event()


def sample():
    global peak
    while not done.is_set():
        peak = max(peak, rss_mb())
        time.sleep(0.02)


def send(_):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        response.read()
        return response.status


sampler = threading.Thread(target=sample)
sampler.start()
started = time.time()
with ThreadPoolExecutor(concurrency) as pool:
    statuses = list(pool.map(send, range(count)))
elapsed = time.time() - started
time.sleep(3)  # the audit writer catches up
done.set()
sampler.join()
after = rss_mb()
print(json.dumps({
    "requests": count, "body_bytes": len(body), "concurrency": concurrency, "ok": statuses.count(200), "seconds": round(elapsed, 2),
    "rss_before_mb": round(before, 1), "rss_peak_mb": round(peak, 1), "rss_after_mb": round(after, 1),
    "ceiling_mb": ceiling_mb, "held": peak <= ceiling_mb,
}))
