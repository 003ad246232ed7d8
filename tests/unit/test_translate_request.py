"""Responses request + history -> Chat Completions request."""

from __future__ import annotations

import msgspec
import orjson
import pytest

from responses_gateway.errors import InvalidRequest
from responses_gateway.protocol import RequestInvalid
from responses_gateway.protocol.items import InputText
from responses_gateway.translate.defaults import OPENAI_DEFAULTS, Defaults
from responses_gateway.translate.request import build_chat_request, check_tool_outputs
from responses_gateway.translate.response import new_response
from responses_gateway.translate.tools import ToolMap
from tests.support.translate import RID, chat_tool_names, items, parse, tool_map
from tests.support.translate import chat as _chat


def test_string_input_and_instructions() -> None:
    body = _chat(
        {
            "model": "m",
            "input": "hi",
            "instructions": "be brief",
            "temperature": 0.2,
            "max_output_tokens": 5,
            "top_p": 0.9,
            "user": "u",
        }
    )
    assert body["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert body["max_tokens"] == 5 and body["temperature"] == 0.2 and body["top_p"] == 0.9 and body["stream"]
    assert body["user"] == "u"


def test_history_order_and_leading_system_merge() -> None:
    history = [
        {"role": "user", "content": "q1"},
        {
            "type": "message",
            "role": "assistant",
            "id": "msg_x",
            "content": [{"type": "output_text", "text": "a1", "annotations": []}],
        },
    ]
    body = _chat(
        {
            "model": "m",
            "instructions": "sys",
            "input": [{"role": "developer", "content": "dev"}, {"role": "user", "content": "q2"}],
        },
        history,
    )
    # instructions + leading developer merge only when adjacent at the start
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "system", "user"]
    body2 = _chat(
        {
            "model": "m",
            "input": [
                {"role": "developer", "content": "a"},
                {"role": "system", "content": "b"},
                {"role": "user", "content": "c"},
            ],
        }
    )
    assert body2["messages"][0] == {"role": "system", "content": "a\n\nb"}


def test_tool_round_trip_and_tool_choice() -> None:
    tools = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}, "strict": True}]
    body = _chat(
        {
            "model": "m",
            "tools": tools,
            "tool_choice": {"type": "function", "name": "get_weather"},
            "parallel_tool_calls": False,
            "input": [
                {"role": "user", "content": "weather?"},
                {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "call_1", "output": '{"t": 21}'},
            ],
        }
    )
    assert body["tools"][0] == {
        "type": "function",
        "function": {"name": "get_weather", "parameters": {"type": "object"}, "strict": True},
    }
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["parallel_tool_calls"] is False
    assert body["messages"][1]["tool_calls"][0]["id"] == "call_1"
    assert body["messages"][2] == {"role": "tool", "tool_call_id": "call_1", "content": '{"t": 21}'}
    for choice in ("auto", "none", "required"):
        assert (
            _chat({"model": "m", "tools": tools, "tool_choice": choice, "input": "x"})["tool_choice"]
            == choice
        )


def test_unmatched_tool_output_is_400() -> None:
    found = items([{"type": "function_call_output", "call_id": "nope", "output": "x"}])
    with pytest.raises(InvalidRequest, match="nope") as exc:
        check_tool_outputs(found)  # type: ignore[arg-type]
    assert exc.value.param == "input[0].call_id"


def test_mixed_tools_hosted_dropped_namespace_flattened() -> None:
    tm = tool_map(
        [
            {"type": "web_search"},
            {"type": "namespace", "name": "ns", "tools": [{"type": "function", "name": "f"}]},
            {"type": "custom", "name": "apply_patch"},
        ]
    )
    names = chat_tool_names(tm)
    assert names == ["ns__f", "apply_patch"] and tm.dropped == ["web_search"]
    assert tm.target("ns__f").namespace == "ns" and tm.target("apply_patch").kind == "custom_tool_call"
    with pytest.raises(InvalidRequest, match="web_search"):
        tool_map([{"type": "web_search"}], reject_hosted=True)


def test_multimodal_parts() -> None:
    body = _chat(
        {
            "model": "m",
            "input": [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "what is this"},
                        {"type": "input_image", "image_url": "data:image/png;base64,AAA", "detail": "low"},
                    ],
                }
            ],
        }
    )
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA", "detail": "low"}},
    ]


def test_text_format_maps_to_response_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    body = _chat(
        {
            "model": "m",
            "input": "x",
            "text": {"format": {"type": "json_schema", "name": "A", "schema": schema, "strict": True}},
        }
    )
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "A", "schema": schema, "strict": True},
    }
    assert _chat({"model": "m", "input": "x", "text": {"format": {"type": "json_object"}}})[
        "response_format"
    ] == {"type": "json_object"}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x"}, "model"),
        ({"model": "m", "temperature": "hot"}, "temperature"),
        ({"model": "m", "metadata": {str(i): "v" for i in range(17)}}, "metadata"),
        ({"model": "m", "metadata": {"k": "v" * 513}}, "metadata"),
        ({"model": "m", "background": True, "store": False}, "background"),
        ({"model": "m", "conversation": 5}, "conversation"),
        ({"model": "m", "input": [{"role": "robot", "content": "x"}]}, "input"),
        (
            {"model": "m", "input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input",
        ),
    ],
)
def test_invalid_requests_name_the_field(body: dict, param: str) -> None:
    with pytest.raises(RequestInvalid) as exc:
        parse(body)
    assert exc.value.param is not None and exc.value.param.startswith(param)


def test_unknown_top_level_fields_ignored_and_hints_kept() -> None:
    req = parse(
        {
            "model": "m",
            "input": "x",
            "client_metadata": {"a": 1},
            "prompt_cache_key": "k",
            "include": ["reasoning.encrypted_content"],
            "store": False,
        }
    )
    assert not hasattr(req, "client_metadata") and req.prompt_cache_key == "k"


def test_input_items_get_ids_and_client_ids_are_kept() -> None:
    found = items(
        [
            {"role": "user", "content": "a", "id": "msg_client-uuid"},
            {"type": "message", "role": "user", "content": "b"},
        ]
    )
    assert found[0].id == "msg_client-uuid"
    assert found[1].id.startswith("msg_" + RID[5:])
    assert found[1].content == [InputText("b")]  # type: ignore[union-attr]


def test_backend_defaults_fill_what_the_client_left_out() -> None:
    """`build_chat_request` sends, and `new_response` reports, the same value for each sampling setting
    and function tool `strict` the client omitted; a value the client gave (0 included) wins."""
    tools = [{"type": "function", "name": "a"}, {"type": "function", "name": "b", "strict": True}]
    keys = ("temperature", "top_p", "presence_penalty", "frequency_penalty")
    tuned = Defaults(0.6, 0.95, 0.25, -0.5, strict_tools=False)
    cases = [
        ({}, OPENAI_DEFAULTS, (1.0, 1.0, 0.0, 0.0), [True, True]),
        ({}, tuned, (0.6, 0.95, 0.25, -0.5), [False, True]),
        ({"temperature": 0, "presence_penalty": 0}, tuned, (0.0, 0.95, 0.0, -0.5), [False, True]),
    ]
    for given, defaults, expected, strict in cases:
        req = parse({"model": "m", "input": "hi", "tools": tools, **given})
        tm = ToolMap(req.tools, strict_default=defaults.strict_tools)
        sent = orjson.loads(msgspec.json.encode(build_chat_request(req, b"[]", tm, defaults)))
        reported = orjson.loads(msgspec.json.encode(new_response(req, RID, 0, defaults)))
        assert tuple(sent[k] for k in keys) == expected == tuple(reported[k] for k in keys)
        assert [t["function"]["strict"] for t in sent["tools"]] == strict
        assert [t["strict"] for t in reported["tools"]] == strict
        assert "max_tokens" not in sent and reported["max_output_tokens"] is None
