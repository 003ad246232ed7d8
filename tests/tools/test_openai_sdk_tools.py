"""Function tools with the official `openai` SDK: loops by previous_response_id and stateless full
history, item_reference, unknown call ids, and the streamed shape of tool calls."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway
from tests.tools.sse import post_events, types_at

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
TIME = {
    "type": "function",
    "name": "get_time",
    "description": "The time in a zone.",
    "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
}


def _client(gw: Gateway) -> OpenAI:
    return OpenAI(base_url=gw.base_url, api_key="sk-test", max_retries=0)


def _calls(response: Any) -> list[Any]:
    return [o for o in response.output if o.type == "function_call"]


def test_tool_loop_with_create_and_previous_response_id(gateway: Gateway, echo: EchoBackend) -> None:
    client = _client(gateway)
    r1 = client.responses.create(
        model="qwen3",
        input='Checking. [call:get_weather {"city": "Paris"}]',
        tools=[WEATHER, TIME],
        tool_choice="auto",
        parallel_tool_calls=True,
    )
    # text and a call in one response: the message first, then the call
    assert [o.type for o in r1.output] == ["message", "function_call"]
    assert r1.output_text == "Checking."
    (call,) = _calls(r1)
    assert call.id.startswith("fc_") and call.call_id.startswith("call_") and call.status == "completed"
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    sent = echo.chat_requests()[-1]["body"]
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather", "get_time"]
    assert sent["tools"][0]["function"]["strict"] is True
    assert sent["tool_choice"] == "auto" and sent["parallel_tool_calls"] is True

    r2 = client.responses.create(
        model="qwen3",
        previous_response_id=r1.id,
        tools=[WEATHER, TIME],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": '{"temp": 21}'}],
    )
    assert r2.output_text == 'tool said: {"temp": 21}'
    assert echo.chat_requests()[-1]["body"]["messages"] == [
        {"role": "user", "content": 'Checking. [call:get_weather {"city": "Paris"}]'},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": call.call_id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": call.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.call_id, "content": '{"temp": 21}'},
    ]

    # two parallel calls, then a third turn: every earlier call and output stays in the context
    r3 = client.responses.create(
        model="qwen3",
        previous_response_id=r2.id,
        tools=[WEATHER, TIME],
        input='[call:get_weather {"city": "Oslo"}] [call:get_time {"tz": "CET"}]',
    )
    calls = _calls(r3)
    assert [c.name for c in calls] == ["get_weather", "get_time"] and len({c.call_id for c in calls}) == 2
    r4 = client.responses.create(
        model="qwen3",
        previous_response_id=r3.id,
        tools=[WEATHER, TIME],
        input=[
            {"type": "function_call_output", "call_id": c.call_id, "output": f"out-{c.name}"} for c in calls
        ],
    )
    assert r4.output_text == "tool said: out-get_time"
    r5 = client.responses.create(model="qwen3", previous_response_id=r4.id, input="thanks")
    assert r5.output_text == "echo: thanks"
    msgs = echo.chat_requests()[-1]["body"]["messages"]
    assert [m["role"] for m in msgs] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
        "assistant",
        "tool",
        "tool",
        "assistant",
        "user",
    ]
    assert [tc["id"] for tc in msgs[5]["tool_calls"]] == [c.call_id for c in calls]
    assert [m["tool_call_id"] for m in msgs[6:8]] == [c.call_id for c in calls]


def test_tool_loop_with_stream_helper(gateway: Gateway, echo: EchoBackend) -> None:
    client = _client(gateway)
    with client.responses.stream(
        model="qwen3", input='[call:get_weather {"city": "Rome"}]', tools=[WEATHER]
    ) as stream:
        events = list(stream)
        first = stream.get_final_response()
    (call,) = _calls(first)
    types = [e.type for e in events]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert "response.output_text.delta" not in types  # the call's text is never streamed as text
    call_events = [e for e in events if getattr(e, "output_index", None) == 0]
    assert [e.type for e in call_events] == [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
    ]
    assert "".join(e.delta for e in call_events[1:3]) == call.arguments  # type: ignore[attr-defined]
    assert {getattr(e, "item_id", None) or e.item.id for e in call_events} == {call.id}  # type: ignore[attr-defined]

    with client.responses.stream(
        model="qwen3",
        previous_response_id=first.id,
        tools=[WEATHER],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
    ) as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert final.output_text == "tool said: sunny" and final.previous_response_id == first.id
    assert client.responses.retrieve(final.id).output_text == "tool said: sunny"


def test_stateless_full_history_with_client_ids_and_encrypted_reasoning(
    tool_gateway: Gateway, echo: EchoBackend
) -> None:
    """Codex's shape: store:false, the whole transcript each turn, client-made ids, sealed reasoning."""
    client = _client(tool_gateway)
    history: list[dict[str, Any]] = [
        {
            "type": "message",
            "role": "developer",
            "id": f"msg_{uuid.uuid4()}",
            "content": [{"type": "input_text", "text": "base prompt"}],
        },
        {
            "type": "message",
            "role": "developer",
            "id": f"msg_{uuid.uuid4()}",
            "content": [{"type": "input_text", "text": "skills"}],
        },
        {
            "type": "message",
            "role": "user",
            "id": f"msg_{uuid.uuid4()}",
            "content": [{"type": "input_text", "text": '[reasoning] [call:get_weather {"city": "Lima"}]'}],
        },
    ]
    r1 = client.responses.create(
        model="qwen3",
        input=history,
        tools=[WEATHER],
        store=False,  # type: ignore[arg-type]
        include=["reasoning.encrypted_content"],
    )
    assert [o.type for o in r1.output] == ["reasoning", "function_call"]
    rs, call = r1.output
    assert rs.encrypted_content and rs.content[0].text == "thinking about it"  # type: ignore[union-attr,index]
    assert echo.chat_requests()[-1]["body"]["messages"][0] == {
        "role": "system",
        "content": "base prompt\n\nskills",
    }

    history += [
        {
            "type": "reasoning",
            "id": rs.id,
            "summary": [],
            "content": None,
            "encrypted_content": rs.encrypted_content,
        },  # type: ignore[union-attr]
        {
            "type": "function_call",
            "id": call.id,
            "status": "completed",
            "name": "get_weather",  # type: ignore[union-attr]
            "arguments": call.arguments,
            "call_id": call.call_id,
        },  # type: ignore[union-attr]
        {
            "type": "function_call_output",
            "id": f"fco_{uuid.uuid4()}",
            "call_id": call.call_id,  # type: ignore[union-attr]
            "output": '{"rain": true}',
        },
    ]
    r2 = client.responses.create(
        model="qwen3",
        input=history,
        tools=[WEATHER],
        store=False,  # type: ignore[arg-type]
        include=["reasoning.encrypted_content"],
    )
    assert r2.output_text == 'tool said: {"rain": true}'
    msgs = echo.chat_requests()[-1]["body"]["messages"]
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "tool"]
    assert msgs[2]["tool_calls"][0]["id"] == call.call_id  # type: ignore[union-attr]
    assert "thinking about it" not in json.dumps(msgs)  # reasoning is not sent back to the backend
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r2.id)

    # stored with store:true, the sealed reasoning comes back readable in the input items
    r3 = client.responses.create(model="qwen3", input=history, tools=[WEATHER])  # type: ignore[arg-type]
    items = httpx.get(f"{tool_gateway.base_url}/responses/{r3.id}/input_items?order=asc", timeout=5).json()
    reasoning = next(i for i in items["data"] if i["type"] == "reasoning")
    assert reasoning["id"] == rs.id and reasoning["content"] == [
        {"type": "reasoning_text", "text": "thinking about it"}
    ]
    assert [i["id"] for i in items["data"]] == [h["id"] for h in history]  # client ids kept as they are


def test_unknown_call_id_is_400(gateway: Gateway) -> None:
    client = _client(gateway)
    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.create(
            model="qwen3",
            input=[
                {"role": "user", "content": "hi"},
                {"type": "function_call_output", "call_id": "call_nope", "output": "x"},
            ],
        )
    assert "call_nope" in exc.value.message and exc.value.param == "input[1].call_id"  # type: ignore[attr-defined]
    r1 = client.responses.create(model="qwen3", input='[call:get_weather {"city": "Paris"}]', tools=[WEATHER])
    with pytest.raises(openai.BadRequestError, match="call_other"):
        client.responses.create(
            model="qwen3",
            previous_response_id=r1.id,
            tools=[WEATHER],
            input=[{"type": "function_call_output", "call_id": "call_other", "output": "x"}],
        )


def test_item_reference_resolves_stored_items(gateway: Gateway, echo: EchoBackend) -> None:
    client = _client(gateway)
    r1 = client.responses.create(model="qwen3", input="[reasoning] hello")
    rs, msg = r1.output
    assert rs.id.startswith("rs_") and msg.id.startswith("msg_")
    r2 = client.responses.create(model="qwen3", input='[call:get_weather {"city": "Bern"}]', tools=[WEATHER])
    (call,) = _calls(r2)
    user_item = client.responses.input_items.list(r1.id).data[0]
    # the AI SDK's shape: earlier assistant output and reasoning replaced by references, from any response
    r3 = client.responses.create(
        model="qwen3",
        tools=[WEATHER],
        input=[
            {"type": "item_reference", "id": user_item.id},
            {"type": "item_reference", "id": rs.id},
            {"type": "item_reference", "id": msg.id},
            {"type": "item_reference", "id": call.id},
            {"type": "function_call_output", "call_id": call.call_id, "output": "cold"},
        ],
    )
    assert r3.output_text == "tool said: cold"
    assert echo.chat_requests()[-1]["body"]["messages"] == [
        {"role": "user", "content": "[reasoning] hello"},
        {
            "role": "assistant",
            "content": "echo: hello",
            "tool_calls": [
                {
                    "id": call.call_id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": call.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.call_id, "content": "cold"},
    ]
    for unknown in ("msg_" + "0" * 52, "rs_unknown", "fc_" + uuid.uuid4().hex):
        with pytest.raises(openai.BadRequestError) as exc:
            client.responses.create(model="qwen3", input=[{"type": "item_reference", "id": unknown}])
        assert unknown in exc.value.message


def test_streamed_parallel_calls_have_their_own_items(tool_gateway: Gateway) -> None:
    events = post_events(
        tool_gateway.base_url,
        {
            "model": "qwen3",
            "tools": [WEATHER, TIME],
            "input": 'Two calls: [call:get_weather {"city": "Nice"}] [call:get_time {"tz": "UTC"}]',
        },
    )
    per_call = [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
    ]
    assert types_at(events, 1) == per_call and types_at(events, 2) == per_call
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert text == "Two calls:"  # the message only; arguments never arrive as text
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    final = events[-1]["response"]
    assert final["output"] == done  # the same items, ids and all, in the terminal snapshot
    assert [d["type"] for d in done] == ["message", "function_call", "function_call"]
    for idx in (1, 2):
        item_events = [e for e in events if e.get("output_index") == idx]
        ids = {e.get("item_id") or e["item"]["id"] for e in item_events}
        assert ids == {done[idx]["id"]}
        args_done = next(e for e in item_events if e["type"] == "response.function_call_arguments.done")
        assert args_done["arguments"] == done[idx]["arguments"] and args_done["name"] == done[idx]["name"]
        assert item_events[0]["item"]["arguments"] == "" and item_events[0]["item"]["status"] == "in_progress"
