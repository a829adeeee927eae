"""Sluice in front of scripted fakes of Gemini, Azure OpenAI and Bedrock: the official SDKs call
Sluice as they would OpenAI or Anthropic, and each provider adapter speaks its vendor's wire
format (and credentials: Bedrock's SigV4 is checked by the fake) behind the same pipeline."""
import json

import anthropic
import openai
import pytest
from openai import OpenAI

from conftest import Sluice
from fake_vendors import AWS_ACCESS_KEY, AWS_SECRET_KEY, AZURE_KEY, GEMINI_KEY, REPLY, FakeVendors

CONFIG = """
server: {{ host: 127.0.0.1, port: {port}, shutdown_grace_s: 10 }}
store: {{ sqlite: "{db}" }}
providers:
  gemini: {{ kind: gemini, base_url: "http://127.0.0.1:VENDORS/v1beta", api_key: "GEMINI_KEY" }}
  azure: {{ kind: azure-openai, base_url: "http://127.0.0.1:VENDORS", api_key: "AZURE_KEY", api_version: "2024-10-21" }}
  bedrock: {{ kind: bedrock, base_url: "http://127.0.0.1:VENDORS", region: us-east-1 }}
  anthropic: {{ kind: anthropic, base_url: "http://127.0.0.1:VENDORS", api_key: "sk-ant-e2e" }}
models:
  - {{ name: gemini-flash, provider: gemini, upstream_model: gemini-2.5-flash, price: {{ input_per_mtok: 0.3, output_per_mtok: 2.5 }} }}
  - {{ name: gemini-busy, provider: gemini, upstream_model: gemini-busy }}
  - {{ name: azure-gpt, provider: azure, upstream_model: gpt4o-prod }}
  - {{ name: azure-filtered, provider: azure, upstream_model: filtered }}
  - {{ name: claude-bedrock, provider: bedrock, upstream_model: "anthropic.claude-3-5-haiku-20241022-v1:0" }}
  - {{ name: claude-direct, provider: anthropic, upstream_model: claude-sonnet-4-5 }}
aliases:
  resilient: {{ deployments: [gemini-busy, azure-gpt], strategy: ordered }}
logging: {{ level: info }}
"""

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


@pytest.fixture
def setup(tmp_path):
    vendors = FakeVendors()
    config = (CONFIG.replace("VENDORS", str(vendors.port)).replace("GEMINI_KEY", GEMINI_KEY).replace("AZURE_KEY", AZURE_KEY))
    server = None
    try:
        server = Sluice(tmp_path, config=config, env={"AWS_ACCESS_KEY_ID": AWS_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": AWS_SECRET_KEY})
        yield server, vendors
    finally:
        if server:
            server.stop()
        vendors.stop()


def client(server):
    return OpenAI(base_url=server.base_url, api_key=server.admin_key, max_retries=0)


@pytest.mark.parametrize("model", ["gemini-flash", "azure-gpt", "claude-bedrock"])
def test_each_vendor_answers_plain_and_streamed(setup, model):
    server, vendors = setup
    answer = client(server).chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content.startswith(REPLY) and answer.usage.total_tokens > 0
    stream = client(server).chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip() == REPLY
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5


@pytest.mark.parametrize("model", ["gemini-flash", "claude-bedrock"])
def test_tool_calls_round_trip_through_gemini_and_bedrock(setup, model):
    server, _ = setup
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    first = client(server).chat.completions.create(model=model, messages=messages, tools=TOOLS)
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    messages += [first.choices[0].message.model_dump(exclude_none=True), {"role": "tool", "tool_call_id": call.id, "content": "Sunny"}]
    second = client(server).chat.completions.create(model=model, messages=messages, tools=TOOLS)
    assert second.choices[0].message.content.startswith(REPLY)
    streamed = list(client(server).chat.completions.create(model=model, messages=messages[:1], tools=TOOLS, stream=True))
    arguments = "".join(tc.function.arguments or "" for c in streamed if c.choices for tc in (c.choices[0].delta.tool_calls or []))
    assert json.loads(arguments) == {"city": "Paris"}


def test_client_apis_reach_the_clouds(setup):
    server, vendors = setup
    message = anthropic.Anthropic(base_url=server.base_url.removesuffix("/v1"), api_key=server.admin_key, max_retries=0).messages.create(
        model="claude-bedrock", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].text.startswith(REPLY) and message.usage.input_tokens == 13
    response = client(server).responses.create(model="gemini-flash", input="hi")
    assert response.output_text == REPLY
    bedrock_calls = [c for c in vendors.calls if c[0].startswith("/model/")]
    assert bedrock_calls and all("%3A0" in path for path, _ in bedrock_calls)


def test_a_rate_limited_vendor_falls_back_and_a_content_filter_is_a_clear_400(setup):
    server, vendors = setup
    raw = client(server).chat.completions.with_raw_response.create(model="resilient", messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["x-sluice-model"] == "azure-gpt" and raw.headers["x-sluice-attempts"] == "2"
    assert raw.parse().choices[0].message.content == REPLY
    assert any(path.startswith("/v1beta/models/gemini-busy") for path, _ in vendors.calls)
    with pytest.raises(openai.BadRequestError) as refused:
        client(server).chat.completions.create(model="azure-filtered", messages=[{"role": "user", "content": "something"}])
    assert refused.value.body["code"] == "content_filter" and "content management policy" in refused.value.body["message"]


def test_missing_cloud_credentials_stop_the_server_with_a_clear_message(tmp_path):
    config = """
server: {{ host: 127.0.0.1, port: {port} }}
store: {{ sqlite: "{db}" }}
providers:
  bedrock: {{ kind: bedrock, region: us-east-1 }}
models:
  - {{ name: claude-bedrock, provider: bedrock, upstream_model: anthropic.claude-3-5-haiku-20241022-v1:0 }}
"""
    with pytest.raises(RuntimeError, match="exited during start-up"):
        Sluice(tmp_path, config=config, env={"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""})
    assert "AWS_ACCESS_KEY_ID" in (tmp_path / "sluice.log").read_text()


def test_messages_to_an_anthropic_deployment_pass_through_untouched(setup):
    server, vendors = setup
    claude = anthropic.Anthropic(base_url=server.base_url.removesuffix("/v1"), api_key=server.admin_key, max_retries=0)
    system = [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
    message = claude.messages.create(model="claude-direct", max_tokens=64, extra_body={"top_k": 5}, system=system,
                                     messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].text == REPLY
    sent = json.loads(vendors.bodies[-1])
    assert sent["model"] == "claude-sonnet-4-5" and sent["top_k"] == 5 and sent["system"] == system and "stream" not in sent
    with claude.messages.stream(model="claude-direct", max_tokens=64, extra_body={"top_k": 5}, messages=[{"role": "user", "content": "hi"}]) as stream:
        assert "".join(stream.text_stream) == REPLY
    sent = json.loads(vendors.bodies[-1])
    assert sent["stream"] is True and sent["top_k"] == 5
