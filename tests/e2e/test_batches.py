"""The Batch API through the official OpenAI SDK, and exactly once across a kill -9: a batch
interrupted by SIGKILL in the middle completes after a restart with every custom_id answered
once, in the output or the error file, and no request recorded twice."""
import http.client
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

from openai import OpenAI

from conftest import SLUICE_BIN, Sluice, fresh_database, needs_postgres

CONFIG = """
server: {{ host: 127.0.0.1, port: {port}, shutdown_grace_s: 5 }}
store: {{ sqlite: "{db}" }}
providers:
  sim: {{ kind: simulated, reply: "batched answer", ttft_ms: 15 }}
models:
  - {{ name: sim-small, provider: sim, upstream_model: small, price: {{ input_per_mtok: 1.0, output_per_mtok: 2.0 }} }}
  - {{ name: sim-embed, provider: sim, type: embedding }}
logging: {{ level: info }}
batch: {{ lease_s: 2, max_concurrency: 4, workers: 8 }}
"""


def lines(n, prefix="req"):
    return "".join(json.dumps({"custom_id": f"{prefix}-{i}", "method": "POST", "url": "/v1/chat/completions",
                               "body": {"model": "sim-small", "messages": [{"role": "user", "content": f"question {i}"}], "max_tokens": 8}}) + "\n"
                   for i in range(n))


def wait(client, batch_id, statuses, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        batch = client.batches.retrieve(batch_id)
        if batch.status in statuses:
            return batch
        time.sleep(0.1)
    raise AssertionError(f"batch {batch_id} stayed {batch.status}")


def answered(client, batch):
    out = []
    for file_id in (batch.output_file_id, batch.error_file_id):
        if file_id:
            out += [json.loads(line) for line in client.files.content(file_id).text.splitlines() if line.strip()]
    return out


def answered_once(client, server, batch_id, n, prefix):
    """Waits for the batch to complete; checks every custom_id is answered exactly once and no
    line is in the audit log twice (a line run again replaces its row: the same request id).
    Answers the audit rows."""
    done = wait(client, batch_id, {"completed"})
    assert done.request_counts.total == n and done.request_counts.completed + done.request_counts.failed == n
    ids = [r["custom_id"] for r in answered(client, done)]
    assert len(ids) == n and set(ids) == {f"{prefix}-{i}" for i in range(n)}, "every custom_id exactly once"
    request = urllib.request.Request(f"{server.admin_url}/requests?q={batch_id}&limit=1000",
                                     headers={"authorization": f"Bearer {server.admin_key}"})
    recorded = json.loads(urllib.request.urlopen(request, timeout=30).read())["data"]
    assert len(recorded) == len({r["id"] for r in recorded}) and len(recorded) <= n, "no line billed twice"
    return recorded


def metric(server, name, labels=""):
    """A metric's value in Sluice's /metrics (0 when it is not there yet)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10).read().decode()
    for line in text.splitlines():
        key, _, value = line.rpartition(" ")
        if not line.startswith("#") and key == name + labels:
            return float(value)
    return 0.0


def dashboard(server, path):
    """A dashboard page's status and HTML, signed in with the admin key."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("POST", "/dashboard/login", body=urllib.parse.urlencode({"key": server.admin_key}),
                           headers={"content-type": "application/x-www-form-urlencoded"})
        response = connection.getresponse()
        response.read()
        cookie = response.getheader("set-cookie").split(";")[0]
        connection.request("GET", path, headers={"cookie": cookie})
        page = connection.getresponse()
        return page.status, page.read().decode()
    finally:
        connection.close()


def cli(server, *args):
    return subprocess.run([SLUICE_BIN, "batches", *args, "--config", str(server.config)], capture_output=True, text=True, timeout=60)


def test_a_batch_through_the_sdk(tmp_path):
    server = Sluice(tmp_path, config=CONFIG)
    try:
        client = OpenAI(base_url=server.base_url, api_key=server.admin_key, max_retries=0)
        (tmp_path / "in.jsonl").write_text(lines(20))
        uploaded = client.files.create(file=open(tmp_path / "in.jsonl", "rb"), purpose="batch")
        batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h",
                                      metadata={"job": "nightly"})
        assert batch.status == "validating" and batch.metadata == {"job": "nightly"}
        done = wait(client, batch.id, {"completed", "failed"})
        assert done.status == "completed", done
        assert done.request_counts.total == 20 and done.request_counts.completed == 20 and done.request_counts.failed == 0
        rows = answered(client, done)
        assert sorted(r["custom_id"] for r in rows) == sorted(f"req-{i}" for i in range(20))
        first = rows[0]
        assert set(first) == {"id", "custom_id", "response", "error"} and first["error"] is None
        assert first["response"]["status_code"] == 200 and first["response"]["body"]["object"] == "chat.completion"
        assert first["response"]["body"]["choices"][0]["message"]["content"] == "batched answer"
        assert [b.id for b in client.batches.list(limit=5).data] == [batch.id]

        # Progress where operators look: the metrics, the dashboard, the CLI.
        assert metric(server, "sluice_batch_lines_total", '{status="completed"}') == 20
        assert metric(server, "sluice_batch_queue_depth") == 0
        status, html = dashboard(server, "/dashboard/batches")
        assert status == 200 and batch.id in html and "completed" in html and "20 / 20" in html
        listed = cli(server, "list")
        assert listed.returncode == 0 and batch.id in listed.stdout and "completed\t20/20" in listed.stdout, listed
        shown = cli(server, "show", batch.id)
        assert shown.returncode == 0 and json.loads(shown.stdout)["request_counts"] == {"total": 20, "completed": 20, "failed": 0}
        refused = cli(server, "cancel", batch.id)
        assert refused.returncode == 1 and "Cannot cancel a batch with status 'completed'" in refused.stderr, refused
        missing = cli(server, "show", "batch_nope")
        assert missing.returncode == 1 and "No batch found with id 'batch_nope'" in missing.stderr

        # Batch usage costs price_multiplier (0.5) of the same request sent live.
        live = client.chat.completions.with_raw_response.create(model="sim-small", max_tokens=8,
                                                                 messages=[{"role": "user", "content": "question 0"}])
        live_id = live.headers["x-request-id"]

        def recorded(request_id):
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    request = urllib.request.Request(f"{server.admin_url}/requests/{request_id}",
                                                     headers={"authorization": f"Bearer {server.admin_key}"})
                    return json.loads(urllib.request.urlopen(request, timeout=10).read())
                except urllib.error.HTTPError:
                    time.sleep(0.1)
            raise AssertionError(f"{request_id} was not recorded")
        batch_row, live_row = recorded(f"{batch.id}-0"), recorded(live_id)
        assert batch_row["endpoint"] == "batch" and batch_row["tokens_in"] == live_row["tokens_in"]
        assert abs(batch_row["cost_usd"] - 0.5 * live_row["cost_usd"]) < 1e-12 and live_row["cost_usd"] > 0

        # A bad input file fails with its lines named, and nothing runs.
        (tmp_path / "bad.jsonl").write_text(lines(2) + "not json\n" + lines(1))
        bad = client.files.create(file=open(tmp_path / "bad.jsonl", "rb"), purpose="batch")
        failed = wait(client, client.batches.create(input_file_id=bad.id, endpoint="/v1/chat/completions", completion_window="24h").id,
                      {"failed", "completed"})
        assert failed.status == "failed"
        assert [(e.code, e.line) for e in failed.errors.data] == [("invalid_json", 3), ("duplicate_custom_id", 4)]

        # Cancelled in the middle: partial files, every line answered once.
        (tmp_path / "big.jsonl").write_text(lines(400))
        big = client.files.create(file=open(tmp_path / "big.jsonl", "rb"), purpose="batch")
        running = client.batches.create(input_file_id=big.id, endpoint="/v1/chat/completions", completion_window="24h")
        wait(client, running.id, {"in_progress"})
        # ... from the CLI, as an operator would.
        cancelling = cli(server, "cancel", running.id)
        assert cancelling.returncode == 0 and cancelling.stdout.strip() == f"{running.id}: cancelling", cancelling
        assert client.batches.cancel(running.id).status in ("cancelling", "cancelled")
        cancelled = wait(client, running.id, {"cancelled"})
        rows = answered(client, cancelled)
        assert sorted(r["custom_id"] for r in rows) == sorted(f"req-{i}" for i in range(400))
        assert any(r["error"] and r["error"]["code"] == "batch_cancelled" for r in rows)
    finally:
        server.stop()


def test_exactly_once_across_kill_9(tmp_path):
    server = Sluice(tmp_path, config=CONFIG)
    client = OpenAI(base_url=server.base_url, api_key=server.admin_key, max_retries=0)
    (tmp_path / "in.jsonl").write_text(lines(600, "line"))
    uploaded = client.files.create(file=open(tmp_path / "in.jsonl", "rb"), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    deadline = time.monotonic() + 60
    while client.batches.retrieve(batch.id).request_counts.completed < 150 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.batches.retrieve(batch.id).status == "in_progress"
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()
    server.log.close()

    again = Sluice(tmp_path, config=CONFIG, admin_key=server.admin_key)
    try:
        client = OpenAI(base_url=again.base_url, api_key=again.admin_key, max_retries=0)
        recorded = answered_once(client, again, batch.id, 600, "line")
        assert all(r["endpoint"] == "batch" for r in recorded)
    finally:
        again.stop()


PG_CONFIG = CONFIG.replace('store: {{ sqlite: "{db}" }}', 'store: {{ postgres: "%s" }}')


@needs_postgres
def test_two_postgres_replicas_share_a_batch_and_survive_kill_9(tmp_path):
    config = PG_CONFIG % fresh_database()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = Sluice(tmp_path / "a", config=config)
    b = None
    try:
        b = Sluice(tmp_path / "b", config=config, admin_key=a.admin_key)
        client = OpenAI(base_url=a.base_url, api_key=a.admin_key, max_retries=0)
        (tmp_path / "in.jsonl").write_text(lines(800, "pg"))
        uploaded = client.files.create(file=open(tmp_path / "in.jsonl", "rb"), purpose="batch")
        batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
        # Both replicas claim lines of the one batch.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (metric(a, "sluice_batch_lines_total", '{status="completed"}') >= 50
                                                   and metric(b, "sluice_batch_lines_total", '{status="completed"}') >= 50):
            time.sleep(0.05)
        progress = client.batches.retrieve(batch.id)
        assert progress.status == "in_progress" and progress.request_counts.completed < 800, progress
        assert metric(a, "sluice_batch_lines_total", '{status="completed"}') >= 50, "replica a ran lines"
        assert metric(b, "sluice_batch_lines_total", '{status="completed"}') >= 50, "replica b ran lines"
        assert metric(b, "sluice_batch_queue_depth") > 0

        # Replica a dies with lines in flight; b takes them over when their leases run out.
        os.kill(a.process.pid, signal.SIGKILL)
        a.process.wait()
        a.log.close()
        client = OpenAI(base_url=b.base_url, api_key=b.admin_key, max_retries=0)
        answered_once(client, b, batch.id, 800, "pg")
    finally:
        if a.process.poll() is None:
            a.stop()
        if b:
            b.stop()
