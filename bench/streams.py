#!/usr/bin/env python3
"""Many concurrent streams held open through Sluice: a slow upstream (one SSE event a second),
N clients each holding one stream, Sluice's resident memory sampled throughout, and the p50 of
ordinary (non-streamed) requests to a fast model before and while the streams are open.

usage: streams.py SLUICE_PORT SLUICE_PID UPSTREAM_PORT STREAMS  ->  one JSON object

The slow upstream listens on UPSTREAM_PORT (Sluice's `slow` model points at it). Streams open
over RAMP_S seconds and each lasts EVENTS events, so all are open together for the middle of the
run. A stream counts as dropped unless it got every event and [DONE]. Runs in processes of its
own (upstream, clients) so that neither starves the other of a core.
"""
import asyncio
import json
import multiprocessing
import os
import re
import socket
import statistics
import sys
import time

EVENTS = int(os.environ.get("STREAM_EVENTS", "30"))
RAMP_S = float(os.environ.get("STREAM_RAMP_S", "10"))
CHUNK = json.dumps({"id": "chatcmpl-slow", "object": "chat.completion.chunk", "created": 0, "model": "slow",
                    "choices": [{"index": 0, "delta": {"content": "tick "}, "finish_reason": None}]}, separators=(",", ":"))
LAST = json.dumps({"id": "chatcmpl-slow", "object": "chat.completion.chunk", "created": 0, "model": "slow",
                   "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                   "usage": {"prompt_tokens": 5, "completion_tokens": EVENTS, "total_tokens": EVENTS + 5}}, separators=(",", ":"))


def chunk(data: str) -> bytes:
    payload = f"data: {data}\n\n".encode()
    return f"{len(payload):x}\r\n".encode() + payload + b"\r\n"


async def upstream_connection(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            m = re.search(rb"(?i)content-length:\s*(\d+)", head)
            body = await reader.readexactly(int(m.group(1))) if m else b""
            if b'"stream":true' not in body.replace(b" ", b""):
                answer = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "slow",
                                     "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                                     "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(answer) + answer)
                await writer.drain()
                continue
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
            for _ in range(EVENTS - 1):
                writer.write(chunk(CHUNK))
                await writer.drain()
                await asyncio.sleep(1)
            writer.write(chunk(LAST) + chunk("[DONE]") + b"0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


def run_upstream(port: int, ready):
    async def main():
        server = await asyncio.start_server(upstream_connection, "127.0.0.1", port, backlog=4096)
        ready.set()
        async with server:
            await server.serve_forever()
    asyncio.run(main())


async def one_stream(port: int, i: int, body: bytes, results: list):
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body)) + body
    events, done, error = 0, False, None
    writer = None
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            error = head.split(b"\r\n")[0].decode(errors="replace")
        else:
            buffer = b""
            while not done:
                data = await asyncio.wait_for(reader.read(65536), timeout=30)
                if not data:
                    break
                buffer += data
                # Events are counted on the decoded text; chunk-size lines do not contain "data: ".
                while b"\n\n" in buffer:
                    event, buffer = buffer.split(b"\n\n", 1)
                    for line in event.split(b"\n"):
                        line = line.strip()
                        if line.startswith(b"data: [DONE]"):
                            done = True
                        elif line.startswith(b"data: ") and b'"content":"tick' in line:
                            events += 1
    except Exception as e:  # noqa: BLE001 - any failure is a dropped stream, named in the report
        error = type(e).__name__
    finally:
        if writer is not None:
            writer.close()
    results.append((events, done, error))


def run_clients(port: int, streams: int, out):
    async def main():
        body = json.dumps({"model": "slow", "stream": True, "messages": [{"role": "user", "content": "tick"}]}).encode()
        results = []
        tasks = []
        start = time.monotonic()
        for i in range(streams):
            due = start + RAMP_S * i / streams
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one_stream(port, i, body, results)))
        await asyncio.gather(*tasks)
        out.put(results)
    asyncio.run(main())


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def ordinary_p50(port: int, seconds: float) -> float:
    """Sequential non-streamed requests on one keep-alive connection; p50 in ms."""
    body = b'{"model":"mock","messages":[{"role":"user","content":"Say hello"}],"max_tokens":16}'
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body)) + body
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    times = []
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            t = time.perf_counter()
            s.sendall(request)
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += s.recv(65536)
            head, rest = buf.split(b"\r\n\r\n", 1)
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
            while len(rest) < length:
                rest += s.recv(65536)
            times.append((time.perf_counter() - t) * 1000)
    finally:
        s.close()
    return statistics.median(times) if times else float("nan")


def main():
    port, pid, upstream_port, streams = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    ready = multiprocessing.Event()
    upstream = multiprocessing.Process(target=run_upstream, args=(upstream_port, ready), daemon=True)
    upstream.start()
    ready.wait(10)
    try:
        p50_before = ordinary_p50(port, 3)
        rss_before = rss_mib(pid)
        out = multiprocessing.Queue()
        clients = multiprocessing.Process(target=run_clients, args=(port, streams, out), daemon=True)
        clients.start()
        peak, samples = rss_before, []
        t0 = time.monotonic()
        # Ordinary requests once every stream is open (after the ramp), while they stay open.
        while time.monotonic() - t0 < RAMP_S + 1:
            peak = max(peak, rss_mib(pid))
            time.sleep(0.5)
        p50_during = ordinary_p50(port, max(1.0, EVENTS - RAMP_S - 6))
        results = None
        deadline = time.monotonic() + EVENTS + RAMP_S + 60
        while results is None and time.monotonic() < deadline:
            peak = max(peak, rss_mib(pid))
            samples.append(rss_mib(pid))
            try:
                results = out.get(timeout=0.5)
            except Exception:  # noqa: BLE001 - queue.Empty: keep sampling
                pass
        clients.join(5)
        results = results or []
        complete = sum(1 for events, done, error in results if done and error is None and events == EVENTS - 1)
        errors = {}
        for _, _, error in results:
            if error:
                errors[error] = errors.get(error, 0) + 1
        print(json.dumps({
            "streams": streams, "completed": complete, "dropped": streams - complete, "errors": errors,
            "events_per_stream": EVENTS, "rss_before_mib": round(rss_before, 1), "rss_peak_mib": round(peak, 1),
            "ordinary_p50_ms_before": round(p50_before, 3), "ordinary_p50_ms_during": round(p50_during, 3),
        }))
    finally:
        upstream.terminate()
        upstream.join(5)


if __name__ == "__main__":
    main()
