"""Starts a real `sluice serve` for the end-to-end tests and stops it afterwards."""
import glob
import os
import secrets
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

SLUICE_BIN = os.environ.get("SLUICE_BIN", os.path.join(os.path.dirname(__file__), "..", "..", ".build", "debug", "sluice"))

CONFIG = """
server: {{ host: 127.0.0.1, port: {port}, shutdown_grace_s: 10 }}
store: {{ sqlite: "{db}" }}
providers:
  sim: {{ kind: simulated, reply: "Sluice says hello to the SDK" }}
  local: {{ kind: minilm, model_path: auto }}
  gemma: {{ kind: llama-server, model_path: auto, context: 2048, threads: 2, slots: 2 }}
models:
  - {{ name: sim-small, provider: sim, upstream_model: small, price: {{ input_per_mtok: 0.15, output_per_mtok: 0.60 }}, context_window: 8192 }}
  - {{ name: sim-embed, provider: sim, type: embedding }}
  - {{ name: all-minilm-l6-v2, provider: local, type: embedding }}
  - {{ name: gemma-3-270m, provider: gemma }}
logging: {{ level: info }}
flows:
  summarize:
    model: gemma-3-270m
    messages: [{{ role: user, content: "Summarize in one sentence: {{{{text}}}}" }}]
    input: {{ type: object, required: [text], properties: {{ text: {{ type: string }} }} }}
    params: {{ max_tokens: 40, temperature: 0 }}
  triage:
    model: sim-small
    messages: [{{ role: user, content: "Ticket: {{{{subject}}}}" }}]
    input: {{ type: object, required: [subject], properties: {{ subject: {{ type: string, maxLength: 80 }} }} }}
    output: {{ type: object, required: [queue], properties: {{ queue: {{ enum: [billing, bug] }} }} }}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_database():
    """An empty database on the cluster `make test` starts (SLUICE_TEST_POSTGRES_URL)."""
    url = urllib.parse.urlparse(os.environ["SLUICE_TEST_POSTGRES_URL"])
    name = "sluice_e2e_" + secrets.token_hex(6)
    createdb = sorted(glob.glob("/usr/lib/postgresql/*/bin/createdb"))[-1]
    subprocess.run([createdb, "-h", url.hostname, "-p", str(url.port), "-U", url.username or "postgres", name], check=True, timeout=60)
    return f"postgres://{url.username or 'postgres'}@{url.hostname}:{url.port}/{name}"


needs_postgres = pytest.mark.skipif("SLUICE_TEST_POSTGRES_URL" not in os.environ,
                                    reason="needs SLUICE_TEST_POSTGRES_URL (make test starts a cluster)")


class Sluice:
    def __init__(self, tmp_path, config=CONFIG, admin_key=None, port=None, env=None):
        """`config` is a template with `{port}` and `{db}` (literal braces doubled); `admin_key`
        keeps the admin key of an earlier server on the same database; `port` restarts a
        server where it was; `env` adds environment variables."""
        self.port = port or free_port()
        self.db = str(tmp_path / "sluice.db")
        self.config = tmp_path / "sluice.yaml"
        self.config.write_text(config.format(port=self.port, db=self.db))
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.admin_url = f"http://127.0.0.1:{self.port}/admin"
        self.admin_key = admin_key or "sk-sluice-e2e-" + secrets.token_urlsafe(32)
        env = dict(os.environ, SLUICE_ADMIN_KEY=self.admin_key, **(env or {}))
        self.log_path = tmp_path / "sluice.log"
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen([SLUICE_BIN, "serve", "--config", str(self.config)], stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1).read()
                return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError("sluice exited during start-up")
                time.sleep(0.1)
        raise RuntimeError("sluice did not become healthy")

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


@pytest.fixture
def sluice(tmp_path):
    server = Sluice(tmp_path)
    yield server
    server.stop()
