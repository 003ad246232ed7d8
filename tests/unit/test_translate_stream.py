"""Chat chunks -> Responses events: the state machine, with golden sequences."""

from __future__ import annotations

from typing import Any

import msgspec

from responses_gateway.protocol.chat import ChatChunk
from responses_gateway.translate.response import new_response
from responses_gateway.translate.stream import StreamTranslator
from responses_gateway.translate.tools import ToolMap
from tests.support.translate import RID, parse, translate


def _chunk(
    delta: dict[str, Any] | None = None, finish: str | None = None, usage: Any = None
) -> dict[str, Any]:
    c: dict[str, Any] = {
        "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    }
    if usage:
        c["usage"] = usage
    return c


def _run(
    chunks: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    return translate(chunks, tools)


def test_text_sequence_and_final_object() -> None:
    evs, _ = _run(
        [
            _chunk({"role": "assistant", "content": ""}),
            _chunk({"content": "Hello "}),
            _chunk({"content": "world"}),
            _chunk({}, "stop"),
            _chunk(None, usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}),
        ]
    )
    assert [e["type"] for e in evs] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in evs] == list(range(len(evs)))
    final = evs[-1]["response"]
    assert final["status"] == "completed" and final["completed_at"] == 101
    assert final["output"][0]["id"] == "msg_0" == evs[2]["item"]["id"] == evs[4]["item_id"]
    assert final["output"][0]["content"][0]["text"] == "Hello world"
    assert final["usage"]["input_tokens"] == 3 and final["usage"]["total_tokens"] == 5
    assert evs[2]["item"]["content"] == []  # the added item is not mutated later
    assert evs[0]["response"]["output"] == [] and evs[0]["response"]["status"] == "in_progress"


def test_length_makes_incomplete() -> None:
    evs, response = _run([_chunk({"content": "a b"}), _chunk({}, "length")])
    assert evs[-1]["type"] == "response.incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response["output"][0]["status"] == "incomplete"


def test_reasoning_then_text_then_parallel_calls() -> None:
    tools = [{"type": "function", "name": "f", "parameters": {}}, {"type": "function", "name": "g"}]
    evs, response = _run(
        [
            _chunk({"reasoning_content": "think"}),
            _chunk({"content": "ok"}),
            _chunk(
                {"tool_calls": [{"index": 0, "id": "call_a", "function": {"name": "f", "arguments": '{"x"'}}]}
            ),
            _chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}),
            _chunk(
                {"tool_calls": [{"index": 1, "id": "call_b", "function": {"name": "g", "arguments": "{}"}}]}
            ),
            _chunk({}, "tool_calls"),
        ],
        tools,
    )
    types = [e["type"] for e in evs]
    assert "response.output_text.delta" in types
    out = response["output"]
    assert [o["type"] for o in out] == ["reasoning", "message", "function_call", "function_call"]
    assert out[2]["arguments"] == '{"x": 1}' and out[2]["call_id"] == "call_a" and out[2]["id"] == "fc_2"
    assert out[3]["name"] == "g" and out[3]["id"] == "fc_3"
    # per call: added -> deltas -> arguments.done -> item.done, in order
    call_evs = [e for e in evs if e.get("output_index") == 2]
    assert [e["type"] for e in call_evs] == [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
    ]
    assert not any(e["type"] == "response.output_text.delta" and "x" in e["delta"] for e in evs)


def test_refusal() -> None:
    evs, response = _run([_chunk({"refusal": "no"}), _chunk({}, "stop")])
    assert "response.refusal.delta" in [e["type"] for e in evs]
    assert response["output"][0]["content"] == [{"type": "refusal", "refusal": "no"}]


def test_fail_closes_items() -> None:
    tr = StreamTranslator(new_response(parse({"model": "m"}), RID, 1), lambda p, i: f"{p}_{i}", ToolMap(None))
    tr.start()
    tr.feed(msgspec.convert(_chunk({"content": "part"}), ChatChunk))
    response, evs = tr.fail("server_error", "boom")
    last = msgspec.to_builtins(evs[-1])
    assert last["type"] == "response.output_item.done" and last["item"]["status"] == "incomplete"
    term = msgspec.to_builtins(tr.terminal_event(response))
    assert term["type"] == "response.failed" and term["response"]["error"]["message"] == "boom"
