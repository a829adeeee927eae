#!/usr/bin/env python3
"""Time to first SSE event of streamed chat completions, sequentially, one connection each.

usage: ttft.py PORT COUNT  ->  prints "p50_ms p99_ms total_p50_ms"
"""
import socket
import statistics
import sys
import time

BODY = b'{"model":"mock","stream":true,"messages":[{"role":"user","content":"Say hello"}]}'


def one(port: int):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nContent-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
    )
    start = time.perf_counter()
    s.sendall(request)
    buf, first = b"", None
    while True:
        data = s.recv(65536)
        if not data:
            break
        buf += data
        if first is None and b"data: " in buf:
            first = time.perf_counter()
        if b"[DONE]" in buf:
            break
    end = time.perf_counter()
    s.close()
    if first is None or b"[DONE]" not in buf:
        raise SystemExit(f"stream from port {port} did not complete: {buf[:200]!r}")
    return (first - start) * 1000, (end - start) * 1000


def main():
    port, count = int(sys.argv[1]), int(sys.argv[2])
    for _ in range(20):
        one(port)  # warm-up
    firsts, totals = [], []
    for _ in range(count):
        f, t = one(port)
        firsts.append(f)
        totals.append(t)
    q = statistics.quantiles(firsts, n=100)
    print(f"{statistics.median(firsts):.3f} {q[98]:.3f} {statistics.median(totals):.3f}")


if __name__ == "__main__":
    main()
