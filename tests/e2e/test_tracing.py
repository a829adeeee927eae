"""OpenTelemetry tracing in a real `sluice serve` (Swift concurrency on NIO's event loops, as in
production): it starts, exports the request's spans over OTLP/HTTP (protobuf) to a collector
stand-in, and shuts down cleanly. Both failed before: swift-otel's exporter group crashed at
start-up on the event loops, and its HTTP client trapped when released on one at exit."""
import http.server
import json
import threading
import urllib.request

from conftest import Sluice, free_port

CONFIG = """
server: {{ host: 127.0.0.1, port: {port} }}
store: {{ sqlite: "{db}" }}
auth: {{ enabled: false }}
providers:
  sim: {{ kind: simulated, reply: "traced" }}
models:
  - {{ name: sim-small, provider: sim, upstream_model: small }}
telemetry: {{ otlp_endpoint: "http://127.0.0.1:COLLECTOR", export_interval_ms: 100 }}
"""


class Collector(http.server.ThreadingHTTPServer):
    def __init__(self):
        self.batches = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(handler):
                body = handler.rfile.read(int(handler.headers.get("content-length", 0)))
                self.batches.append((handler.path, handler.headers.get("content-type"), body))
                handler.send_response(200)
                handler.send_header("content-length", "0")
                handler.end_headers()

            def log_message(handler, *args):
                pass

        super().__init__(("127.0.0.1", free_port()), Handler)


def test_spans_are_exported_and_sluice_stops_cleanly(tmp_path):
    collector = Collector()
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    sluice = Sluice(tmp_path, CONFIG.replace("COLLECTOR", str(collector.server_address[1])))
    trace_id = "6bf92f3577b34da6a3ce929d0e0e4736"
    try:
        request = urllib.request.Request(
            sluice.base_url + "/chat/completions",
            data=json.dumps({"model": "sim-small", "messages": [{"role": "user", "content": "hi"}]}).encode(),
            headers={"content-type": "application/json", "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
    finally:
        sluice.process.terminate()
        code = sluice.process.wait(timeout=20)
        sluice.stop()
        collector.shutdown()
    log = sluice.log_path.read_text()
    assert code == 0, log[-3000:]
    assert "Program crashed" not in log and "Fatal error" not in log, log[-3000:]
    # Flushed at the latest by the graceful shutdown: the trace id's 16 bytes are in a protobuf batch.
    assert any(path == "/v1/traces" and kind == "application/x-protobuf" and bytes.fromhex(trace_id) in body
               for path, kind, body in collector.batches), collector.batches
    assert f"trace_id={trace_id}" in log
