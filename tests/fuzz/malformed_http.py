#!/usr/bin/env python3
"""Hand-written malformed HTTP against a running Sluice (make fuzz): each case names the status
it expects. usage: malformed_http.py HOST PORT KEY"""
import json
import socket
import sys
import time
import urllib.error
import urllib.request

HOST, PORT, KEY = sys.argv[1], int(sys.argv[2]), sys.argv[3]
HEAD = f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\n".encode()
failures = []


def exchange(parts, pause=0.0, timeout=30):
    s = socket.create_connection((HOST, PORT))
    s.settimeout(timeout)
    try:
        try:
            for p in parts:
                s.sendall(p)
                time.sleep(pause)
        except OSError:
            pass  # the server may answer and close before the client is done sending
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data
    except OSError as e:
        return f"<{e}>".encode()
    finally:
        s.close()


def status(data):
    try:
        return int(data.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def case(name, expected, data):
    got = status(data)
    ok = got == expected
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {got} (expected {expected})")
    if not ok:
        failures.append(name)


big = 1 << 20
case("chunked body over max_body_bytes", 413,
     exchange([HEAD + b"Transfer-Encoding: chunked\r\n\r\n", (b"%x\r\n" % big) + b"a" * big + b"\r\n", (b"%x\r\n" % big) + b"a" * big + b"\r\n0\r\n\r\n"]))
case("non-hex chunk size", 400, exchange([HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"]))
case("chunk shorter than its size", 400, exchange([HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nab\r\n0\r\n\r\nPOST / HTTP/1.1\r\n\r\n"]))
case("a body that stops (body deadline)", 408, exchange([HEAD + b"Content-Length: 100\r\n\r\n{\"model\":"]))
case("a head one byte at a time (header deadline)", 408,
     exchange([HEAD] + [bytes([c]) for c in b"X-Slow: " + b"a" * 40], pause=0.5))
broken = b'{"model":"gpt-4o","messages":[{"role":"user","content":"\xff"}]}'
case("invalid UTF-8 in a string", 400, exchange([HEAD + b"Content-Length: %d\r\n\r\n" % len(broken) + broken]))

# A client that leaves mid-body: nothing to answer; the server must stay up.
s = socket.create_connection((HOST, PORT))
s.sendall(HEAD + b"Content-Length: 1000\r\n\r\n{\"model\":")
s.close()

# Python's urllib writes the whole body before reading and asks to close the connection.
request = urllib.request.Request(f"http://{HOST}:{PORT}/v1/chat/completions", data=b"a" * (8 << 20),
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"})
started = time.time()
try:
    urllib.request.urlopen(request, timeout=20)
    got = 200
except urllib.error.HTTPError as e:
    got = e.code
except OSError as e:
    got = f"{e}"
print(f"{'ok  ' if got == 413 else 'FAIL'} urllib, 8 MB body, Connection: close: {got} after {time.time() - started:.2f} s (expected 413)")
if got != 413:
    failures.append("urllib 413")

# A model name that tries to forge a log line: refused, and (checked by run.sh) no 5xx.
body = json.dumps({"model": "gpt-4o\nT error sluice: forged status=500", "messages": [{"role": "user", "content": "hi"}]}).encode()
case("control characters in the model name", 404,
     exchange([HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body]))

print(f"{len(failures)} failures" if failures else "all malformed-HTTP cases answered as expected")
sys.exit(1 if failures else 0)
