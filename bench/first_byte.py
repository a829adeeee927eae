#!/usr/bin/env python3
"""Time to the first byte of a non-streamed chat answer, sequentially: each request on a new
connection (Connection: close), then the same number on one kept-alive connection. The clock
starts when the request is sent, after the TCP handshake, as bench/ttft.py's does.

usage: first_byte.py PORT COUNT  ->  prints "new_p50_ms keep_p50_ms"
"""
import socket
import statistics
import sys
import time

BODY = b'{"model":"mock","messages":[{"role":"user","content":"Say hello"}]}'


def request(close: bool) -> bytes:
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + (b"Connection: close\r\n" if close else b"")
        + b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
    )


def connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def exchange(s: socket.socket, close: bool) -> float:
    """Sends one request, reads the whole answer, returns ms to its first byte."""
    start = time.perf_counter()
    s.sendall(request(close))
    buf, first = b"", None
    while True:
        data = s.recv(65536)
        if not data:
            break
        if first is None:
            first = time.perf_counter()
        buf += data
        head, sep, body = buf.partition(b"\r\n\r\n")
        if sep:
            lengths = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
            if lengths and len(body) >= lengths[0]:
                break
    if first is None or not buf.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"port {sys.argv[1]} did not answer 200: {buf[:200]!r}")
    return (first - start) * 1000


def main():
    port, count = int(sys.argv[1]), int(sys.argv[2])
    for _ in range(20):
        s = connect(port)
        exchange(s, True)
        s.close()
    new = []
    for _ in range(count):
        s = connect(port)
        new.append(exchange(s, True))
        s.close()
    s = connect(port)
    kept = [exchange(s, False) for _ in range(count)]
    s.close()
    print(f"{statistics.median(new):.3f} {statistics.median(kept):.3f}")


if __name__ == "__main__":
    main()
