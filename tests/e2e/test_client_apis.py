"""The official anthropic SDK (Messages API), the openai SDK's Responses API and the OpenAI
Agents SDK against a real Sluice process, unchanged: every one goes through the same pipeline
as chat completions (keys, limits, audit)."""
import asyncio
import json
import sqlite3
import time

import anthropic
import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from conftest import Sluice
from test_openai_sdk import admin

REPLY = "Sluice says hello to the SDK"

CONFIG = """
server: {{ host: 127.0.0.1, port: {port}, shutdown_grace_s: 10 }}
store: {{ sqlite: "{db}" }}
providers:
  sim: {{ kind: simulated, reply: "Sluice says hello to the SDK" }}
  gemma: {{ kind: llama-server, model_path: auto, context: 2048, threads: 2, slots: 2 }}
models:
  - {{ name: sim-small, provider: sim, upstream_model: small, price: {{ input_per_mtok: 0.15, output_per_mtok: 0.60 }}, context_window: 8192 }}
  - {{ name: gemma-3-270m, provider: gemma }}
aliases:
  claude-sonnet-4-5: {{ deployments: [sim-small] }}
logging: {{ level: info }}
"""

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture
def server(tmp_path):
    s = Sluice(tmp_path, config=CONFIG)
    yield s
    s.stop()


def claude(server, key=None):
    return anthropic.Anthropic(base_url=server.base_url.removesuffix("/v1"), api_key=key or server.admin_key, max_retries=0)


def gpt(server, key=None):
    return OpenAI(base_url=server.base_url, api_key=key or server.admin_key, max_retries=0)


def audit_rows(server, endpoint, at_least):
    """The audit rows of an endpoint, once the writer (which batches) has written `at_least`."""
    deadline = time.monotonic() + 10
    while True:
        with sqlite3.connect(server.db) as db:
            rows = db.execute("SELECT model_requested, status, deployment FROM requests WHERE endpoint = ?", (endpoint,)).fetchall()
        if len(rows) >= at_least or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def test_anthropic_sdk_plain_streamed_and_tool_use(server):
    client = claude(server)
    message = client.messages.create(
        model="claude-sonnet-4-5", max_tokens=64, system="Be brief.", messages=[{"role": "user", "content": "Say hello"}])
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "text" and message.content[0].text == REPLY
    assert message.stop_reason == "end_turn" and message.model == "claude-sonnet-4-5"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0

    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": "Say hello"}]) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == REPLY and final.content[0].text == REPLY and final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0

    asked = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.messages.create(model="claude-sonnet-4-5", max_tokens=64, tools=[WEATHER_TOOL], messages=asked)
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    assert call.name == "get_weather" and isinstance(call.input, dict) and "city" in call.input
    answered = asked + [
        {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "Sunny, 21 C"}]},
    ]
    second = client.messages.create(model="claude-sonnet-4-5", max_tokens=64, tools=[WEATHER_TOOL], messages=answered)
    assert second.stop_reason == "end_turn" and second.content[0].text == REPLY

    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=64, tools=[WEATHER_TOOL], messages=asked) as stream:
        final = stream.get_final_message()
    streamed_call = next(b for b in final.content if b.type == "tool_use")
    assert final.stop_reason == "tool_use" and streamed_call.name == "get_weather" and "city" in streamed_call.input

    counted = client.messages.count_tokens(model="claude-sonnet-4-5", messages=asked, tools=[WEATHER_TOOL])
    assert counted.input_tokens > 10

    rows = audit_rows(server, "messages", 5)
    assert len(rows) == 5 and all(status == 200 and deployment == "sim-small" for _, status, deployment in rows)


def test_anthropic_errors_in_anthropic_shape(server):
    client = claude(server)
    with pytest.raises(anthropic.BadRequestError) as missing:
        client.messages.create(model="claude-sonnet-4-5", messages=[{"role": "user", "content": "hi"}], max_tokens=0)
    assert missing.value.body["type"] == "error" and missing.value.body["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in missing.value.body["error"]["message"]
    with pytest.raises(anthropic.BadRequestError) as server_tool:
        client.messages.create(
            model="claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": "hi"}],
            tools=[{"type": "web_search_20250305", "name": "web_search"}])
    assert "server tools" in server_tool.value.body["error"]["message"]
    with pytest.raises(anthropic.NotFoundError) as unknown:
        client.messages.create(model="claude-nope", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert unknown.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.AuthenticationError) as bad_key:
        claude(server, "sk-sluice-not-a-key").messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert bad_key.value.body["error"]["type"] == "authentication_error"


def test_limits_apply_whichever_api_a_request_comes_in_through(server):
    status, created = admin(server, "POST", "/keys", {"name": "three", "role": "app", "rpm": 3})
    assert status == 201
    key = created["key"]
    claude(server, key).messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    gpt(server, key).responses.create(model="sim-small", input="hi")
    gpt(server, key).chat.completions.create(model="sim-small", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(anthropic.RateLimitError) as refused:
        claude(server, key).messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert refused.value.body["error"]["type"] == "rate_limit_error"
    with pytest.raises(openai.RateLimitError):
        gpt(server, key).responses.create(model="sim-small", input="hi")


def test_openai_responses_plain_streamed_tools_structured_and_stored(server):
    client = gpt(server)
    response = client.responses.create(model="sim-small", input="Say hello", instructions="Be brief.")
    assert response.status == "completed" and response.output_text == REPLY
    assert response.usage.input_tokens > 0 and response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens

    events = list(client.responses.create(model="sim-small", input="Say hello", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == REPLY
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].response.output_text == REPLY

    tools = [{"type": "function", "name": "get_weather", "description": "The weather in a city",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
    first = client.responses.create(model="sim-small", input="What is the weather in Paris?", tools=tools)
    call = next(item for item in first.output if item.type == "function_call")
    assert call.name == "get_weather" and "city" in json.loads(call.arguments)
    # The stored first turn carries the question and the call: only the result is sent.
    second = client.responses.create(
        model="sim-small", previous_response_id=first.id, tools=tools,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21 C"}])
    assert second.output_text == REPLY and second.previous_response_id == first.id

    with client.responses.stream(model="sim-small", input="What is the weather in Paris?", tools=tools) as stream:
        streamed = list(stream)
        final = stream.get_final_response()
    assert any(e.type == "response.function_call_arguments.delta" for e in streamed)
    streamed_call = next(item for item in final.output if item.type == "function_call")
    assert streamed_call.name == "get_weather" and "city" in json.loads(streamed_call.arguments)

    schema = {"type": "object", "properties": {"city": {"type": "string"}, "temperature_c": {"type": "number"}},
              "required": ["city", "temperature_c"], "additionalProperties": False}
    structured = client.responses.create(
        model="sim-small", input="Weather in Paris as JSON",
        text={"format": {"type": "json_schema", "name": "weather", "schema": schema, "strict": True}})
    parsed = json.loads(structured.output_text)
    assert set(parsed) == {"city", "temperature_c"} and isinstance(parsed["temperature_c"], (int, float))

    again = client.responses.retrieve(response.id)
    assert again.id == response.id and again.output_text == REPLY
    client.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError) as gone:
        client.responses.create(model="sim-small", input="more", previous_response_id=response.id)
    assert gone.value.body["param"] == "previous_response_id"
    unstored = client.responses.create(model="sim-small", input="hi", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unstored.id)

    # Another key cannot read, continue or delete this key's response.
    status, other = admin(server, "POST", "/keys", {"name": "other", "role": "app"})
    with pytest.raises(openai.NotFoundError):
        gpt(server, other["key"]).responses.retrieve(first.id)
    with pytest.raises(openai.BadRequestError) as hosted:
        client.responses.create(model="sim-small", input="hi", tools=[{"type": "web_search"}])
    assert hosted.value.body["param"] == "tools[0].type"
    assert len(audit_rows(server, "responses", 8)) >= 8


def test_openai_agents_sdk_runs_an_agent_with_a_function_tool(server):
    from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled

    set_tracing_disabled(True)
    seen = []

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        seen.append(city)
        return "Sunny, 21 C"

    async def run():
        client = AsyncOpenAI(base_url=server.base_url, api_key=server.admin_key, max_retries=0)
        try:
            agent = Agent(
                name="weather", instructions="Answer questions about the weather.", tools=[get_weather],
                model=OpenAIResponsesModel(model="sim-small", openai_client=client))
            return await Runner.run(agent, "What is the weather in Paris?")
        finally:
            await client.close()

    result = asyncio.run(run())
    assert len(seen) == 1 and result.final_output == REPLY


def test_local_gemma_answers_the_messages_and_responses_apis(server):
    message = claude(server).messages.create(
        model="gemma-3-270m", max_tokens=16, messages=[{"role": "user", "content": "The capital of France is"}])
    assert message.content and message.content[0].text.strip() and message.usage.output_tokens > 0
    response = gpt(server).responses.create(model="gemma-3-270m", input="The capital of France is", max_output_tokens=16)
    assert response.output_text.strip() and response.usage.output_tokens > 0
