#!/usr/bin/env python3
"""Time to first SSE event of streamed chat completions, sequentially: one new connection each
(the clock starts after the TCP handshake), or with `keep`, all on one kept-alive connection.

usage: ttft.py PORT COUNT [keep]  ->  prints "p50_ms p99_ms total_p50_ms"
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


class KeptAlive:
    """One connection for every stream; each answer is read to its end (Content-Length or the
    last chunk) before the next request goes out."""

    def __init__(self, port: int):
        self.port = port
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.request = (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
        )

    def one(self):
        start = time.perf_counter()
        self.s.sendall(self.request)
        buf, first, done = b"", None, False
        while not done:
            data = self.s.recv(65536)
            if not data:
                raise SystemExit(f"port {self.port} closed a kept-alive connection: {buf[:200]!r}")
            buf += data
            if first is None and b"data: " in buf:
                first = time.perf_counter()
            head, sep, body = buf.partition(b"\r\n\r\n")
            if not sep:
                continue
            lower = head.lower()
            if b"transfer-encoding: chunked" in lower:
                done = body.endswith(b"0\r\n\r\n")
            elif b"content-length:" in lower:
                length = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
                done = len(body) >= length
            else:
                raise SystemExit(f"port {self.port} answered a kept-alive stream with neither a length nor chunks: {head[:200]!r}")
        end = time.perf_counter()
        if first is None or b"[DONE]" not in buf or not buf.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"stream from port {self.port} did not complete: {buf[:200]!r}")
        return (first - start) * 1000, (end - start) * 1000


def main():
    port, count = int(sys.argv[1]), int(sys.argv[2])
    call = KeptAlive(port).one if sys.argv[3:] == ["keep"] else (lambda: one(port))
    for _ in range(20):
        call()  # warm-up
    firsts, totals = [], []
    for _ in range(count):
        f, t = call()
        firsts.append(f)
        totals.append(t)
    q = statistics.quantiles(firsts, n=100)
    print(f"{statistics.median(firsts):.3f} {q[98]:.3f} {statistics.median(totals):.3f}")


if __name__ == "__main__":
    main()
