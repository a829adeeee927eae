#!/usr/bin/env python3
"""Embeddings per second from all-MiniLM-L6-v2 in Sluice: single sentences (one per request, one
connection) and batches of 32 (one request each), plus the server's resident memory.

usage: embeddings.py PORT PID
"""
import json
import sys
import time
import urllib.request

port, pid = int(sys.argv[1]), int(sys.argv[2])
url = f"http://127.0.0.1:{port}/v1/embeddings"
sentences = []
from pathlib import Path

dev = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "paraphrase" / "dev.jsonl"
if dev.exists():
    with open(dev) as f:
        for i, line in enumerate(f):
            if i >= 400:
                break
            sentences.append(json.loads(line)["a"])
else:  # questions of 8 to 20 words, when the team's datasets are not beside the checkout
    import random

    rng = random.Random(1)
    words = "how do i learn to play the guitar well what is best way find cheap flights weather today market".split()
    sentences = [" ".join(rng.choice(words) for _ in range(rng.randint(8, 20))) + "?" for _ in range(400)]


def post(inputs):
    body = json.dumps({"model": "all-minilm-l6-v2", "input": inputs}).encode()
    req = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        assert r.status == 200
        return json.loads(r.read())


def rss_mib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


post(sentences[:32])  # warm-up
start = time.perf_counter()
for s in sentences[:200]:
    post(s)
single = 200 / (time.perf_counter() - start)
start = time.perf_counter()
n = 0
for i in range(0, 320, 32):
    post(sentences[i : i + 32])
    n += 32
batched = n / (time.perf_counter() - start)
print(f"{single:.1f} {batched:.1f} {rss_mib():.0f}")
