"""Writes ConverseStream bodies in AWS's event-stream framing (application/vnd.amazon.eventstream),
as Bedrock sends them: a prelude (total length, headers length, CRC32), string headers
(:event-type, :content-type, :message-type), a JSON payload, and a CRC32 of the message.
The events follow the ConverseStream documentation. The bytes are kept as base64 text
(`*.b64`): binary files stay out of the repository. Run from this directory to regenerate."""
import base64
import json
import struct
import zlib


def header(name, value):
    n, v = name.encode(), value.encode()
    return struct.pack(">B", len(n)) + n + b"\x07" + struct.pack(">H", len(v)) + v


def message(event_type, payload, message_type="event", type_header=":event-type"):
    headers = header(type_header, event_type) + header(":content-type", "application/json") + header(":message-type", message_type)
    body = json.dumps(payload, separators=(",", ":")).encode()
    total = 12 + len(headers) + len(body) + 4
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    without_crc = prelude + headers + body
    return without_crc + struct.pack(">I", zlib.crc32(without_crc))


def event(kind, payload):
    # Bedrock adds a "p" field of padding to every event payload.
    return message(kind, dict(payload, p="abcdefgh"))


tool_stream = b"".join([
    event("messageStart", {"role": "assistant"}),
    event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Checking "}}),
    event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "the weather."}}),
    event("contentBlockStop", {"contentBlockIndex": 0}),
    event("contentBlockStart", {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tooluse_abc", "name": "get_weather"}}}),
    event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"city\": "}}}),
    event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "\"Seattle\"}"}}}),
    event("contentBlockStop", {"contentBlockIndex": 1}),
    event("messageStop", {"stopReason": "tool_use"}),
    event("metadata", {"usage": {"inputTokens": 412, "outputTokens": 37, "totalTokens": 449}, "metrics": {"latencyMs": 871}}),
])
open("converse-stream-tool.b64", "w").write(base64.encodebytes(tool_stream).decode())

throttled = event("messageStart", {"role": "assistant"}) + message(
    "throttlingException", {"message": "Too many tokens, please wait before trying again."}, message_type="exception", type_header=":exception-type")
open("converse-stream-throttled.b64", "w").write(base64.encodebytes(throttled).decode())
