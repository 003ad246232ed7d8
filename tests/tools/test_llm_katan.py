"""llm-katan's echo backend as a third-party upstream with tools: it answers any request that has
tools with one call of the first tool (dummy arguments from its schema), as a plain JSON completion
even when asked to stream."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from openai import OpenAI

from tests.support.gateway import Gateway, gateway_settings, run_gateway
from tests.support.katan import run_katan
from tests.tools.sse import post_events, types_at

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
}


@pytest.fixture(scope="module")
def katan_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with run_katan(tmp_path_factory.mktemp("katan-tools")) as url, run_gateway(gateway_settings(url)) as gw:
        yield gw


def test_tool_call_and_result_turn(katan_gateway: Gateway) -> None:
    client = OpenAI(base_url=katan_gateway.base_url, api_key="sk-test", max_retries=0)
    r1 = client.responses.create(model="qwen3", input="What is the weather?", tools=[WEATHER])  # type: ignore[list-item]
    assert r1.status == "completed"
    (call,) = r1.output
    assert call.type == "function_call" and call.name == "get_weather" and call.id.startswith("fc_")
    assert call.call_id.startswith("call_") and json.loads(call.arguments) == {"city": "test_city", "days": 1}
    r2 = client.responses.create(
        model="qwen3",
        previous_response_id=r1.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
    )
    assert r2.status == "completed" and r2.output[0].type == "message" and r2.output_text


def test_streamed_tool_call(katan_gateway: Gateway) -> None:
    events = post_events(katan_gateway.base_url, {"model": "qwen3", "input": "weather?", "tools": [WEATHER]})
    assert types_at(events, 0) == [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
    ]
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["output"][0]["name"] == "get_weather"
    assert not any(e["type"] == "response.output_text.delta" for e in events)
