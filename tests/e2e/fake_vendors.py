"""Scripted fakes of the Gemini, Azure OpenAI and Bedrock APIs on one loopback port, for the
end-to-end tests: the wire formats follow each vendor's documentation, credentials are checked
(Bedrock's SigV4 signature is recomputed here independently of Sluice's signer), and a few
model names script failures (`*-busy`: 429, `filtered`: a content-filter refusal)."""
import hashlib
import hmac
import json
import struct
import threading
import urllib.parse
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GEMINI_KEY = "AIza-e2e"
AZURE_KEY = "azure-e2e"
AWS_ACCESS_KEY = "AKIDE2E"
AWS_SECRET_KEY = "e2e/secret/key"
REPLY = "Hello from the fake vendor"


def sigv4(method, path, host, content_type, body, amz_date, region):
    def quote(s):
        return urllib.parse.quote(s, safe="-_.~")
    canonical_uri = "/".join(quote(segment) for segment in path.split("/"))
    headers = f"content-type:{content_type}\nhost:{host}\nx-amz-date:{amz_date}\n"
    signed = "content-type;host;x-amz-date"
    creq = "\n".join([method, canonical_uri, "", headers, signed, hashlib.sha256(body).hexdigest()])
    scope = f"{amz_date[:8]}/{region}/bedrock/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    key = ("AWS4" + AWS_SECRET_KEY).encode()
    for part in (amz_date[:8], region, "bedrock", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    return f"AWS4-HMAC-SHA256 Credential={AWS_ACCESS_KEY}/{scope}, SignedHeaders={signed}, Signature={signature}"


def event_stream_message(event_type, payload, message_type="event", type_header=":event-type"):
    def header(name, value):
        n, v = name.encode(), value.encode()
        return struct.pack(">B", len(n)) + n + b"\x07" + struct.pack(">H", len(v)) + v
    headers = header(type_header, event_type) + header(":content-type", "application/json") + header(":message-type", message_type)
    body = json.dumps(payload).encode()
    prelude = struct.pack(">II", 12 + len(headers) + len(body) + 4, len(headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + headers + body
    return message + struct.pack(">I", zlib.crc32(message))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body, content_type="application/json", headers=None):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.send(200, {"data": [], "models": []})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.server.calls.append((self.path, dict(self.headers)))
        self.server.bodies.append(body)
        url = urllib.parse.urlparse(self.path)
        request = json.loads(body or b"{}")
        if url.path.startswith("/v1beta/models/"):
            return self.gemini(url, request)
        if url.path.startswith("/openai/deployments/"):
            return self.azure(url, request)
        if url.path.startswith("/model/"):
            return self.bedrock(url, request, body)
        if url.path == "/v1/messages":
            return self.anthropic(request)
        self.send(404, {"error": {"message": "no such path"}})

    # Gemini: x-goog-api-key; generateContent and streamGenerateContent?alt=sse.
    def gemini(self, url, request):
        if self.headers.get("x-goog-api-key") != GEMINI_KEY:
            return self.send(403, {"error": {"code": 403, "message": "API key not valid.", "status": "PERMISSION_DENIED"}})
        model, _, method = url.path.removeprefix("/v1beta/models/").partition(":")
        if model.endswith("-busy"):
            return self.send(429, {"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED",
                                             "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}]}})
        contents = request.get("contents", [])
        answered = any("functionResponse" in p for c in contents for p in c.get("parts", []))
        declarations = (request.get("tools") or [{}])[0].get("functionDeclarations", [])
        if declarations and not answered:
            parts = [{"functionCall": {"name": declarations[0]["name"], "args": {"city": "Paris"}}}]
        else:
            parts = [{"text": REPLY}]
        usage = {"promptTokenCount": 11, "candidatesTokenCount": 5, "totalTokenCount": 16}
        if method == "streamGenerateContent":
            events = []
            if "text" in parts[0]:
                words = REPLY.split(" ")
                for i, word in enumerate(words):
                    events.append({"candidates": [{"content": {"role": "model", "parts": [{"text": word + ("" if i == len(words) - 1 else " ")}]}, "index": 0}]})
            else:
                events.append({"candidates": [{"content": {"role": "model", "parts": parts}, "index": 0}]})
            events[-1]["candidates"][0]["finishReason"] = "STOP"
            events[-1]["usageMetadata"] = usage
            return self.send(200, "".join(f"data: {json.dumps(e)}\r\n\r\n" for e in events).encode(), "text/event-stream")
        self.send(200, {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
                        "usageMetadata": usage, "modelVersion": model})

    # Azure OpenAI: api-key, deployments in the path, api-version in the query.
    def azure(self, url, request):
        if self.headers.get("api-key") != AZURE_KEY or "api-version" not in urllib.parse.parse_qs(url.query):
            return self.send(401, {"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint."}})
        deployment = url.path.split("/")[3]
        if deployment == "filtered":
            return self.send(400, {"error": {"message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
                                             "code": "content_filter", "param": "prompt", "status": 400,
                                             "innererror": {"code": "ResponsibleAIPolicyViolation"}}})
        usage = {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}
        if request.get("stream"):
            chunks = [{"id": "chatcmpl-az", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o", "choices": [],
                       "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}]}]
            for word in REPLY.split(" "):
                chunks.append({"id": "chatcmpl-az", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
                               "choices": [{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}]})
            chunks.append({"id": "chatcmpl-az", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
                           "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            chunks.append({"id": "chatcmpl-az", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o", "choices": [], "usage": usage})
            return self.send(200, ("".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n").encode(), "text/event-stream")
        self.send(200, {"id": "chatcmpl-az", "object": "chat.completion", "created": 1, "model": "gpt-4o",
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": REPLY}, "finish_reason": "stop"}], "usage": usage})

    # Anthropic: a fixed message (the tests look at what arrived).
    def anthropic(self, request):
        if request.get("stream"):
            events = [("message_start", {"type": "message_start", "message": {"id": "msg_fake", "type": "message", "role": "assistant", "content": [],
                                                                              "model": request["model"], "usage": {"input_tokens": 7, "output_tokens": 1}}}),
                      ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
                      ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": REPLY}}),
                      ("content_block_stop", {"type": "content_block_stop", "index": 0}),
                      ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 5}}),
                      ("message_stop", {"type": "message_stop"})]
            return self.send(200, "".join(f"event: {e}\ndata: {json.dumps(d)}\n\n" for e, d in events).encode(), "text/event-stream")
        self.send(200, {"id": "msg_fake", "type": "message", "role": "assistant", "model": request["model"], "content": [{"type": "text", "text": REPLY}],
                        "stop_reason": "end_turn", "stop_sequence": None, "usage": {"input_tokens": 7, "output_tokens": 5}})

    # Bedrock: SigV4 (service bedrock), Converse and ConverseStream (event-stream framing).
    def bedrock(self, url, request, body):
        host = self.headers.get("host", "")
        expected = sigv4("POST", url.path, host, self.headers.get("content-type", ""), body, self.headers.get("x-amz-date", ""), "us-east-1")
        if self.headers.get("authorization") != expected:
            return self.send(403, {"message": "The request signature we calculated does not match the signature you provided."},
                             headers={"x-amzn-ErrorType": "InvalidSignatureException"})
        model_id = urllib.parse.unquote(url.path.split("/")[2])
        tools = (request.get("toolConfig") or {}).get("tools", [])
        answered = any("toolResult" in b for m in request.get("messages", []) for b in m.get("content", []))
        usage = {"inputTokens": 13, "outputTokens": 5, "totalTokens": 18}
        if url.path.endswith("/converse-stream"):
            events = [event_stream_message("messageStart", {"role": "assistant"})]
            if tools and not answered:
                events.append(event_stream_message("contentBlockStart", {"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "tooluse_e2e", "name": tools[0]["toolSpec"]["name"]}}}))
                events.append(event_stream_message("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"toolUse": {"input": "{\"city\": \"Paris\"}"}}}))
                stop = "tool_use"
            else:
                for word in REPLY.split(" "):
                    events.append(event_stream_message("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": word + " "}}))
                stop = "end_turn"
            events.append(event_stream_message("contentBlockStop", {"contentBlockIndex": 0}))
            events.append(event_stream_message("messageStop", {"stopReason": stop}))
            events.append(event_stream_message("metadata", {"usage": usage, "metrics": {"latencyMs": 5}}))
            return self.send(200, b"".join(events), "application/vnd.amazon.eventstream")
        if tools and not answered:
            content = [{"toolUse": {"toolUseId": "tooluse_e2e", "name": tools[0]["toolSpec"]["name"], "input": {"city": "Paris"}}}]
            stop = "tool_use"
        else:
            content, stop = [{"text": f"{REPLY} ({model_id})"}], "end_turn"
        self.send(200, {"output": {"message": {"role": "assistant", "content": content}}, "stopReason": stop, "usage": usage, "metrics": {"latencyMs": 5}})


class FakeVendors:
    def __init__(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.calls = []
        self.server.bodies = []
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def calls(self):
        return self.server.calls

    @property
    def bodies(self):
        return self.server.bodies

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
