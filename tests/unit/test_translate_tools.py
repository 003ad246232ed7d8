"""Translation cases of the semantic router reference (tool_choice variants, mixed tool types,
multimodal parts, history ordering with tool calls), tool-call stream edge cases, sealed reasoning."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from responses_gateway.crypto import ReasoningCipher
from responses_gateway.errors import InvalidRequest
from responses_gateway.protocol import RequestInvalid
from responses_gateway.protocol.items import Reasoning, ReasoningText
from responses_gateway.translate.items import Sealed, open_reasoning, seal_payload
from responses_gateway.translate.output_items import Sealer
from tests.support.translate import chat, chat_tool_names, items, tool_map, translate

FN = {"type": "function", "name": "calc", "description": "A calculator", "parameters": {"type": "object"}}


def _chat(req: dict[str, Any], history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return chat({"model": "m", **req}, history)


# -- tool_choice -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ({"type": "function", "name": "calc"}, {"type": "function", "function": {"name": "calc"}}),
        (
            {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "calc"}]},
            "required",
        ),
        ({"type": "allowed_tools", "mode": "auto", "tools": []}, "auto"),
        ({"type": "web_search"}, "auto"),  # a hosted tool the backend never sees: let it choose
    ],
)
def test_tool_choice_variants(choice: Any, expected: Any) -> None:
    assert _chat({"input": "x", "tools": [FN], "tool_choice": choice})["tool_choice"] == expected


def test_tool_choice_errors_and_absence() -> None:
    with pytest.raises(InvalidRequest, match="other"):
        _chat({"input": "x", "tools": [FN], "tool_choice": {"type": "function", "name": "other"}})
    with pytest.raises(RequestInvalid):
        _chat({"input": "x", "tools": [FN], "tool_choice": "sometimes"})
    body = _chat({"input": "x", "tool_choice": "required"})  # no tools: nothing tool-related is sent
    assert "tools" not in body and "tool_choice" not in body and "parallel_tool_calls" not in body
    ns = [{"type": "namespace", "name": "ns", "tools": [{"type": "function", "name": "f"}]}]
    assert _chat(
        {"input": "x", "tools": ns, "tool_choice": {"type": "function", "name": "f", "namespace": "ns"}}
    )["tool_choice"] == {"type": "function", "function": {"name": "ns__f"}}


# -- mixed tool types --------------------------------------------------------------------------------


def test_mixed_tool_types_keep_functions_in_order() -> None:
    tools = [
        FN,
        {"type": "image_generation"},
        {"type": "code_interpreter", "container": {"type": "auto"}},
        {"type": "function", "name": "fn2", "parameters": {"type": "object"}},
        {"type": "mcp", "server_label": "x"},
        {"type": "tool_search"},
    ]  # tool_search without execution:client is hosted
    tm = tool_map(tools)
    assert chat_tool_names(tm) == ["calc", "fn2"]
    assert tm.dropped == ["image_generation", "code_interpreter", "mcp", "tool_search"]
    assert _chat({"input": "Draw a cat", "tools": [{"type": "image_generation"}]}).get("tools") is None


def test_tool_shapes() -> None:
    with pytest.raises(RequestInvalid, match="flat Responses shape"):
        tool_map([{"type": "function", "function": {"name": "nested"}}])
    with pytest.raises(RequestInvalid, match="Unsupported tool type 'robot'"):
        tool_map([{"type": "robot"}])
    tm = tool_map(
        [
            {
                "type": "function",
                "name": "f",
                "parameters": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"},
            },
            {"type": "function", "name": "g"},
        ]
    )
    assert tm.chat_tools()[0].function.parameters["$schema"]  # passed on untouched (AI SDK sends it)
    assert tm.chat_tools()[1].function.parameters == {"type": "object", "properties": {}}


# -- multimodal --------------------------------------------------------------------------------------


def test_multimodal_parts_and_text_only_fallback() -> None:
    body = _chat(
        {
            "input": [
                {
                    "type": "message",
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "What is in this image?"},
                        {"type": "input_image", "image_url": "https://example.com/cat.jpg", "detail": "auto"},
                    ],
                }
            ]
        }
    )
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this image?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            ],
        }
    ]
    body = _chat(
        {
            "input": [
                {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "Just text, no images."}],
                }
            ]
        }
    )
    assert body["messages"] == [{"role": "user", "content": "Just text, no images."}]
    body = _chat(
        {
            "input": [
                {
                    "role": "user",
                    "content": [{"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}],
                }
            ]
        }
    )
    assert body["messages"][0]["content"] == [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]


# -- history ordering with tool calls -----------------------------------------------------------------


def _fc(call_id: str, name: str = "calc", args: str = "{}") -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": f"fc_{call_id}",
        "call_id": call_id,
        "name": name,
        "arguments": args,
        "status": "completed",
    }


def _out(call_id: str, output: str) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def test_history_ordering_with_tool_calls() -> None:
    history = [
        {"type": "message", "role": "user", "content": "What is 2+2 and 3+3?"},
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [],
            "content": [{"type": "reasoning_text", "text": "hmm"}],
        },
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Let me check."}],
        },
        _fc("c1", args='{"e": "2+2"}'),
        _fc("c2", args='{"e": "3+3"}'),
    ]
    body = _chat(
        {
            "tools": [FN],
            "input": [
                _out("c1", "4"),
                _out("c2", "6"),
                _fc("c3"),
                _out("c3", "x"),
                {"role": "user", "content": "thanks"},
            ],
        },
        history,
    )
    msgs = body["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool", "tool", "assistant", "tool", "user"]
    assert msgs[1]["content"] == "Let me check."  # text and calls of one turn: one assistant message
    assert [c["id"] for c in msgs[1]["tool_calls"]] == ["c1", "c2"]
    assert msgs[1]["tool_calls"][0]["function"] == {"name": "calc", "arguments": '{"e": "2+2"}'}
    assert [m["tool_call_id"] for m in msgs if m["role"] == "tool"] == ["c1", "c2", "c3"]
    assert msgs[4] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c3", "type": "function", "function": {"name": "calc", "arguments": "{}"}}],
    }
    assert "hmm" not in str(msgs)  # reasoning is not sent back


def test_tool_output_shapes_and_custom_calls() -> None:
    body = _chat(
        {
            "tools": [{"type": "custom", "name": "apply_patch"}],
            "input": [
                {
                    "type": "custom_tool_call",
                    "call_id": "k1",
                    "name": "apply_patch",
                    "input": "*** Begin Patch",
                },
                {
                    "type": "custom_tool_call_output",
                    "call_id": "k1",
                    "output": [{"type": "input_text", "text": "ok"}],
                },
            ],
        }
    )
    assert body["messages"][0]["tool_calls"][0]["function"] == {
        "name": "apply_patch",
        "arguments": '{"input":"*** Begin Patch"}',
    }
    assert body["messages"][1] == {"role": "tool", "tool_call_id": "k1", "content": "ok"}


def test_system_and_developer_merge_rule() -> None:
    body = _chat(
        {
            "instructions": "inst",
            "input": [
                {"role": "developer", "content": "d1"},
                {"role": "system", "content": [{"type": "input_text", "text": "s1"}]},
                {"role": "user", "content": "u"},
                {"role": "developer", "content": "later"},
            ],
        }
    )
    assert body["messages"] == [
        {"role": "system", "content": "inst\n\nd1\n\ns1"},
        {"role": "user", "content": "u"},
        {"role": "system", "content": "later"},
    ]


# -- stream edge cases --------------------------------------------------------------------------------


def _translate(
    chunks: list[dict[str, Any]], tools: list[dict[str, Any]], seal: Sealer | None = None
) -> list[dict[str, Any]]:
    return translate(chunks, tools, seal=seal)[0]


def test_whole_completion_instead_of_chunks() -> None:
    """A backend that answers a stream request with one JSON completion (llm-katan with tools)."""
    evs = _translate(
        [
            {
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "tool_calls",
                        "message": {
                            "role": "assistant",
                            "content": None,
                            "tool_calls": [
                                {
                                    "id": "call_a",
                                    "type": "function",
                                    "function": {"name": "calc", "arguments": '{"x": 1}'},
                                },
                                {
                                    "id": "call_b",
                                    "type": "function",
                                    "function": {"name": "calc", "arguments": "{}"},
                                },
                            ],
                        },
                    }
                ],
                "usage": {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5},
            }
        ],
        [FN],
    )
    out = evs[-1]["response"]["output"]
    assert [(o["call_id"], o["arguments"]) for o in out] == [("call_a", '{"x": 1}'), ("call_b", "{}")]
    assert evs[-1]["response"]["usage"]["total_tokens"] == 5


def test_calls_all_numbered_zero_are_told_apart_by_id() -> None:
    evs = _translate(
        [
            {
                "choices": [
                    {
                        "index": 0,
                        "delta": {
                            "tool_calls": [
                                {"index": 0, "id": "call_a", "function": {"name": "calc", "arguments": "{}"}}
                            ]
                        },
                    }
                ]
            },
            {
                "choices": [
                    {
                        "index": 0,
                        "delta": {
                            "tool_calls": [
                                {
                                    "index": 0,
                                    "id": "call_b",
                                    "function": {"name": "calc", "arguments": '{"y": 2}'},
                                }
                            ]
                        },
                    }
                ]
            },
            {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        ],
        [FN],
    )
    out = evs[-1]["response"]["output"]
    assert [(o["call_id"], o["arguments"], o["id"]) for o in out] == [
        ("call_a", "{}", "fc_0"),
        ("call_b", '{"y": 2}', "fc_1"),
    ]


def test_sealed_reasoning_round_trip() -> None:
    cipher = ReasoningCipher("secret")
    evs = _translate(
        [
            {"choices": [{"index": 0, "delta": {"reasoning_content": "deep"}}]},
            {"choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}]},
        ],
        [],
        seal=lambda item: cipher.seal(seal_payload(item)),
    )
    rs = evs[-1]["response"]["output"][0]
    token = rs["encrypted_content"]
    assert token.startswith("rgw1:") and "deep" not in token
    done = next(e for e in evs if e["type"] == "response.output_item.done")
    assert done["item"]["encrypted_content"] == token
    opened = cipher.open(token)
    assert opened is not None
    assert msgspec.json.decode(opened, type=Sealed) == Sealed([ReasoningText("deep")], [])
    assert cipher.seal(opened) != cipher.seal(opened)  # a fresh nonce each time

    found = items(
        [
            {"type": "reasoning", "id": "rs_x", "summary": [], "content": None, "encrypted_content": token},
            {
                "type": "reasoning",
                "id": "rs_y",
                "summary": [],
                "content": None,
                "encrypted_content": token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB"),
            },
            {"type": "reasoning", "id": "rs_z", "summary": [], "encrypted_content": "gAAAAB-openai"},
        ]
    )
    open_reasoning(found, cipher.open)
    assert isinstance(found[0], Reasoning) and found[0].content == [ReasoningText("deep")]
    assert isinstance(found[1], Reasoning) and isinstance(found[2], Reasoning)
    assert found[1].content is None and found[2].content is None  # altered or foreign: kept as sent
    assert ReasoningCipher("other key").open(token) is None
    with pytest.raises(ValueError):
        ReasoningCipher("")
