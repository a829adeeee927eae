"""The official openai SDK against a real Sluice process, unchanged."""
import json
import signal
import sqlite3
import glob
import threading
import time
import urllib.error
import urllib.request

import openai
import pytest
from openai import OpenAI


def client_for(sluice, key=None):
    return OpenAI(base_url=sluice.base_url, api_key=key or sluice.admin_key, max_retries=0)


def admin(sluice, method, path, body=None):
    request = urllib.request.Request(
        sluice.admin_url + path, method=method, data=None if body is None else json.dumps(body).encode(),
        headers={"authorization": f"Bearer {sluice.admin_key}", "content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def test_keys_limits_and_revocation_through_the_sdk(sluice):
    status, team = admin(sluice, "POST", "/teams", {"name": "e2e-team"})
    assert status == 201
    status, created = admin(sluice, "POST", "/keys", {"name": "e2e-app", "team": "e2e-team", "role": "app", "rpm": 3})
    assert status == 201 and created["key"].startswith("sk-sluice-") and created["team"] == team["id"]
    app = client_for(sluice, created["key"])
    for _ in range(3):
        raw = app.chat.completions.with_raw_response.create(model="sim-small", messages=[{"role": "user", "content": "hi"}])
        assert raw.headers["x-ratelimit-limit-requests"] == "3"
    with pytest.raises(openai.RateLimitError) as refused:
        app.chat.completions.create(model="sim-small", messages=[{"role": "user", "content": "hi"}])
    assert refused.value.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert int(refused.value.response.headers["retry-after"]) >= 1
    with pytest.raises(openai.AuthenticationError):
        client_for(sluice, "sk-sluice-not-a-key").models.list()
    # An app key may not use the admin API; after revocation it may not use anything.
    with pytest.raises(urllib.error.HTTPError) as forbidden:
        urllib.request.urlopen(urllib.request.Request(sluice.admin_url + "/keys", headers={"x-api-key": created["key"]}), timeout=10)
    assert forbidden.value.code == 403
    admin(sluice, "DELETE", f"/keys/{created['id']}")
    with pytest.raises(openai.PermissionDeniedError):
        app.models.list()
    # Keys never reach the log or the database; key ids do.
    sluice.log.flush()
    time.sleep(0.1)
    log = sluice.log_path.read_text()
    assert created["id"] in log
    for secret in (created["key"], sluice.admin_key):
        assert secret not in log
        for path in glob.glob(sluice.db + "*"):
            with open(path, "rb") as f:
                assert secret.encode() not in f.read()


def test_completion(sluice):
    client = client_for(sluice)
    completion = client.chat.completions.create(model="sim-small", messages=[{"role": "user", "content": "Hello"}])
    assert completion.choices[0].message.content == "Sluice says hello to the SDK"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.completion_tokens == 6
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 6


def test_stream_with_usage(sluice):
    client = client_for(sluice)
    stream = client.chat.completions.create(
        model="sim-small", messages=[{"role": "user", "content": "Hello"}], stream=True, stream_options={"include_usage": True}
    )
    text, usage, finish = "", None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert text == "Sluice says hello to the SDK"
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens == 6


def test_tool_call(sluice):
    client = client_for(sluice)
    tools = [{
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }]
    completion = client.chat.completions.create(
        model="sim-small", messages=[{"role": "user", "content": "Weather in Paris?"}], tools=tools, tool_choice="required"
    )
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert "city" in json.loads(call.function.arguments)
    assert completion.choices[0].finish_reason == "tool_calls"

    # The same as a stream, assembled from deltas.
    stream = client.chat.completions.create(
        model="sim-small", messages=[{"role": "user", "content": "Weather in Paris?"}], tools=tools, stream=True
    )
    name, arguments = None, ""
    for chunk in stream:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or []:
                name = delta.function.name or name
                arguments += delta.function.arguments or ""
    assert name == "get_weather"
    assert json.loads(arguments) == {"city": "city"}

    # With the tool's result, the model answers in text.
    follow_up = client.chat.completions.create(
        model="sim-small",
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "18C"},
        ],
        tools=tools,
    )
    assert follow_up.choices[0].message.content


def test_json_schema_response(sluice):
    client = client_for(sluice)
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}},
        "required": ["name", "tags"],
        "additionalProperties": False,
    }
    completion = client.chat.completions.create(
        model="sim-small",
        messages=[{"role": "user", "content": "Describe a cat"}],
        response_format={"type": "json_schema", "json_schema": {"name": "animal", "schema": schema, "strict": True}},
    )
    value = json.loads(completion.choices[0].message.content)
    assert isinstance(value["name"], str)
    assert isinstance(value["tags"], list)


def test_embeddings(sluice):
    client = client_for(sluice)
    result = client.embeddings.create(model="sim-embed", input=["the cat sat", "the cat sat down", "stock prices fell"])
    assert len(result.data) == 3
    assert len(result.data[0].embedding) == 384
    # The SDK asks for base64 by default and decodes it; it must come back the same.
    plain = client.embeddings.create(model="sim-embed", input="the cat sat", encoding_format="float")
    assert plain.data[0].embedding == pytest.approx(result.data[0].embedding, abs=1e-6)
    assert result.usage.prompt_tokens > 0


def test_local_minilm_embeddings(sluice):
    client = client_for(sluice)
    result = client.embeddings.create(
        model="all-minilm-l6-v2",
        input=["How do I learn the guitar?", "What is the best way to learn to play guitar?", "Interest rates rose again."],
    )
    a, b, c = (d.embedding for d in result.data)
    assert len(a) == 384 and result.usage.prompt_tokens > 0
    cos = lambda x, y: sum(p * q for p, q in zip(x, y))  # unit vectors
    assert cos(a, b) > cos(a, c) + 0.3
    # The SDK asks for base64 by default and decodes it: same numbers as floats.
    assert abs(cos(a, client.embeddings.create(model="all-minilm-l6-v2", input="How do I learn the guitar?", encoding_format="float").data[0].embedding) - 1) < 1e-5


def test_local_gemma_chat_through_the_sdk(sluice):
    client = client_for(sluice)
    completion = client.chat.completions.create(
        model="gemma-3-270m", messages=[{"role": "user", "content": "Name a colour."}], max_tokens=16, temperature=0
    )
    assert completion.choices[0].message.content.strip()
    assert 0 < completion.usage.completion_tokens <= 16
    stream = client.chat.completions.create(
        model="gemma-3-270m", messages=[{"role": "user", "content": "Count to five."}], max_tokens=16, stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) >= 3
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_models_list(sluice):
    client = client_for(sluice)
    ids = [m.id for m in client.models.list()]
    assert ids == ["sim-small", "sim-embed", "all-minilm-l6-v2", "gemma-3-270m"]
    assert client.models.retrieve("sim-small").owned_by == "sim"


def test_errors_are_openai_errors(sluice):
    client = client_for(sluice)
    with pytest.raises(openai.NotFoundError) as not_found:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert not_found.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="sim-small", messages=[{"role": "user", "content": "x"}], temperature=5)
    assert bad.value.param == "temperature"
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(
            model="sim-small", messages=[{"role": "user", "content": "x"}], extra_headers={"x-sim-fault": "429"}
        )
    with pytest.raises(openai.APIStatusError) as upstream:
        client.chat.completions.create(
            model="sim-small", messages=[{"role": "user", "content": "x"}], extra_headers={"x-sim-fault": "500"}
        )
    assert upstream.value.status_code == 502
    # A stream that breaks midway raises in the SDK too.
    with pytest.raises(openai.APIError):
        for _ in client.chat.completions.create(
            model="sim-small", messages=[{"role": "user", "content": "x"}], stream=True, extra_headers={"x-sim-fault": "cut"}
        ):
            pass


def test_sigterm_finishes_streams_flushes_and_exits_zero(sluice):
    client = client_for(sluice)
    for _ in range(5):
        client.chat.completions.create(model="sim-small", messages=[{"role": "user", "content": "warm"}])
    started = threading.Event()
    result = {}

    def consume():
        text = ""
        stream = client.chat.completions.create(
            model="sim-small", messages=[{"role": "user", "content": "slow"}], stream=True,
            extra_headers={"x-sim-tps": "20", "x-sim-tokens": "30", "x-request-id": "sigterm-stream"},
        )
        for chunk in stream:
            started.set()
            for choice in chunk.choices:
                text += choice.delta.content or ""
        result["text"] = text

    reader = threading.Thread(target=consume)
    reader.start()
    assert started.wait(10)
    sluice.process.send_signal(signal.SIGTERM)
    reader.join(20)
    assert len(result["text"].split()) == 30, "the in-flight stream was cut short"
    assert sluice.process.wait(timeout=20) == 0
    with sqlite3.connect(sluice.db) as db:
        rows = db.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
        streamed = db.execute("SELECT status, tokens_out FROM requests WHERE id = 'sigterm-stream'").fetchone()
    assert rows == 6
    assert streamed == (200, 30)


def test_cli_keys_reach_a_running_server_within_a_second(sluice):
    import os
    import subprocess
    import time

    from conftest import SLUICE_BIN

    def cli(*args):
        done = subprocess.run([SLUICE_BIN, "keys", *args, "--config", str(sluice.config)], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    key = cli("create", "--name", "cli-key", "--rpm", "60", "--budget-usd", "10/day")
    assert key.startswith("sk-sluice-")
    listing = cli("list")
    assert "cli-key" in listing and "rpm=60" in listing and key not in listing
    key_id = next(line.split("\t")[0] for line in listing.splitlines() if "cli-key" in line)
    client = client_for(sluice, key)
    deadline = time.monotonic() + 2
    while True:  # the server polls the store every 500 ms
        try:
            client.models.list()
            break
        except openai.AuthenticationError:
            assert time.monotonic() < deadline, "the new key was not accepted within 2 s"
            time.sleep(0.05)
    revoked_at = time.monotonic()
    cli("revoke", key_id)
    while True:
        try:
            client.models.list()
        except openai.PermissionDeniedError:
            break
        assert time.monotonic() - revoked_at < 1.5, "the revoked key was still accepted after 1.5 s"
        time.sleep(0.05)
    bad = subprocess.run([SLUICE_BIN, "keys", "create", "--name", "x", "--budget-usd", "10/week", "--config", str(sluice.config)],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and "day or month" in bad.stderr


def run_flow(sluice, name, body):
    request = urllib.request.Request(
        sluice.base_url + f"/flows/{name}/run", method="POST", data=json.dumps(body).encode(),
        headers={"authorization": f"Bearer {sluice.admin_key}", "content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_flow_on_the_local_model_through_the_sdk(sluice):
    client = client_for(sluice)
    text = "The tide rises twice a day because the moon pulls on the oceans. Fishermen plan around it."
    completion = client.chat.completions.create(model="flow:summarize", messages=[{"role": "user", "content": text}])
    assert completion.choices[0].message.content.strip()
    assert completion.usage.prompt_tokens > 0
    chunks = list(client.chat.completions.create(model="flow:summarize", messages=[{"role": "user", "content": text}], stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip()


def test_a_flow_run_answers_its_output_contract(sluice):
    status, body = run_flow(sluice, "triage", {"input": {"subject": "I was charged twice"}})
    assert status == 200, body
    assert body["flow"] == "triage" and body["version"] == 1
    assert body["output"]["queue"] in ("billing", "bug")
    assert body["usage"]["total_tokens"] > 0 and body["cost_usd"] > 0
    status, body = run_flow(sluice, "triage", {"input": {"subject": "x" * 81}})
    assert status == 400 and body["error"]["param"] == "input/subject"
    status, body = run_flow(sluice, "nope", {"input": {}})
    assert status == 404
    with pytest.raises(openai.NotFoundError):
        client_for(sluice).chat.completions.create(model="flow:nope", messages=[{"role": "user", "content": "hi"}])


def test_cli_flow_versions_reach_a_running_server(sluice, tmp_path):
    import subprocess

    from conftest import SLUICE_BIN

    def cli(*args):
        done = subprocess.run([SLUICE_BIN, "flows", *args, "--config", str(sluice.config)], capture_output=True, text=True, timeout=30)
        return done.returncode, done.stdout + done.stderr

    version = tmp_path / "triage-v2.yaml"
    version.write_text(
        "model: sim-small\n"
        "messages: [{ role: user, content: 'Ticket (v2): {{subject}}' }]\n"
        "output: { type: object, required: [queue], properties: { queue: { enum: [account] } } }\n"
    )
    code, out = cli("push", "triage", str(version))
    assert code == 0 and "version 2 added" in out, out
    code, out = cli("activate", "triage", "2")
    assert code == 0, out
    deadline = time.monotonic() + 2
    while True:  # the server polls the store every 500 ms
        status, body = run_flow(sluice, "triage", {"input": {"subject": "Password reset"}})
        if status == 200 and body["version"] == 2:
            assert body["output"] == {"queue": "account"}
            break
        assert time.monotonic() < deadline, f"version 2 not served within 2 s: {body}"
        time.sleep(0.05)
    code, out = cli("diff", "triage", "1", "2")
    assert code == 0 and "+++ triage version 2" in out and "Ticket (v2)" in out, out
    code, out = cli("activate", "triage", "9")
    assert code == 1 and "no version 9" in out, out
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: nope\nmessages: [{ role: user, content: x }]\n")
    code, out = cli("push", "triage", str(bad))
    assert code == 1 and "no model or alias named 'nope'" in out, out


def test_conversations_through_the_sdk(sluice):
    client = client_for(sluice)
    conversation = client.conversations.create(metadata={"topic": "tides"}, items=[{"type": "message", "role": "user", "content": "hello"}])
    assert conversation.id.startswith("conv_") and conversation.metadata == {"topic": "tides"}
    reply = client.chat.completions.create(
        model="sim-small", messages=[{"role": "user", "content": "what next?"}], extra_body={"conversation": conversation.id})
    assert reply.choices[0].message.content
    items = client.conversations.items.list(conversation.id, order="asc")
    texts = [item.content[0].text for item in items.data]
    assert texts == ["hello", "what next?", reply.choices[0].message.content]
    assert [item.role for item in items.data] == ["user", "user", "assistant"]
    updated = client.conversations.update(conversation.id, metadata={"topic": "waves"})
    assert updated.metadata == {"topic": "waves"}
    assert client.conversations.delete(conversation.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conversation.id)
