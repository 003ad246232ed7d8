"""The edge: every item, part and tool kind parses into its type; every failure is one 400 whose
`param` is the exact path and whose message is worded as OpenAI words it."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
import pytest

from responses_gateway.protocol import RequestInvalid, parse_create
from responses_gateway.protocol.events import OutputTextDelta, event_type
from responses_gateway.protocol.items import (
    CustomToolCall,
    CustomToolCallOutput,
    FunctionCall,
    FunctionCallOutput,
    InputFile,
    InputImage,
    InputText,
    ItemReference,
    Message,
    OutputText,
    PlainText,
    Reasoning,
    Refusal,
    SummaryText,
    ToolSearchCall,
    ToolSearchOutput,
)
from responses_gateway.protocol.request import FormatJSONObject, FormatJSONSchema, FormatText
from responses_gateway.protocol.tools import (
    CustomTool,
    FunctionTool,
    HostedTool,
    HostedToolChoice,
    NamespaceTool,
    ToolChoiceAllowed,
    ToolChoiceCustom,
    ToolChoiceFunction,
    ToolSearchTool,
    tool_type,
)


def _parse(**fields: Any) -> Any:
    return parse_create(orjson.dumps({"model": "m", **fields}))


def _error(**fields: Any) -> RequestInvalid:
    with pytest.raises(RequestInvalid) as exc:
        _parse(**fields)
    return exc.value


ITEMS: list[tuple[dict[str, Any], type]] = [
    ({"type": "message", "role": "user", "content": "hi"}, Message),
    ({"role": "assistant", "content": [{"type": "output_text", "text": "a", "annotations": []}]}, Message),
    ({"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}, FunctionCall),
    ({"type": "function_call_output", "call_id": "c", "output": "x"}, FunctionCallOutput),
    (
        {"type": "function_call_output", "call_id": "c", "output": [{"type": "input_text", "text": "x"}]},
        FunctionCallOutput,
    ),
    ({"type": "custom_tool_call", "call_id": "c", "name": "p", "input": "x"}, CustomToolCall),
    ({"type": "custom_tool_call_output", "call_id": "c", "output": "ok"}, CustomToolCallOutput),
    (
        {"type": "tool_search_call", "call_id": "c", "arguments": {"q": 1}, "execution": "client"},
        ToolSearchCall,
    ),
    (
        {"type": "tool_search_output", "call_id": "c", "tools": [{"type": "function", "name": "f"}]},
        ToolSearchOutput,
    ),
    (
        {"type": "reasoning", "id": "rs_1", "summary": [], "content": None, "encrypted_content": "t"},
        Reasoning,
    ),
    ({"type": "item_reference", "id": "msg_1"}, ItemReference),
    ({"id": "msg_1"}, ItemReference),
    ({"role": "user", "content": "x", "id": None, "status": None}, Message),
]


@pytest.mark.parametrize(("item", "kind"), ITEMS, ids=[f"{k.__name__}-{i}" for i, (_, k) in enumerate(ITEMS)])
def test_every_item_kind(item: dict[str, Any], kind: type) -> None:
    (parsed,) = _parse(input=[item]).input
    assert type(parsed) is kind


def test_every_part_kind() -> None:
    parts = [
        {"type": "input_text", "text": "a"},
        {"type": "output_text", "text": "b", "annotations": [], "logprobs": []},
        {"type": "text", "text": "c"},
        {"type": "summary_text", "text": "d"},
        {"type": "refusal", "refusal": "e"},
        {"type": "input_image", "image_url": "https://x/y.png", "detail": "low"},
    ]
    (msg,) = _parse(input=[{"role": "user", "content": parts}]).input
    assert [type(p) for p in msg.content] == [
        InputText,
        OutputText,
        PlainText,
        SummaryText,
        Refusal,
        InputImage,
    ]
    assert InputFile  # a frozen Struct of its own (hashable: `render` maps each part to what it became)


def test_every_tool_kind_and_tool_choice() -> None:
    req = _parse(
        tools=[
            {"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": None},
            {"type": "namespace", "name": "ns", "tools": [{"type": "function", "name": "g"}]},
            {
                "type": "custom",
                "name": "p",
                "format": {"type": "grammar", "syntax": "lark", "definition": "x"},
            },
            {"type": "tool_search", "execution": "client", "parameters": {}},
            {"type": "web_search", "external_web_access": False},
            {"type": "mcp", "server_label": "s"},
        ]
    )
    kinds = [FunctionTool, NamespaceTool, CustomTool, ToolSearchTool, HostedTool, HostedTool]
    assert all(isinstance(t, k) for t, k in zip(req.tools, kinds, strict=True))
    assert [tool_type(t) for t in req.tools[4:]] == ["web_search", "mcp"]
    choices = [
        ("auto", str),
        ({"type": "function", "name": "f", "namespace": "ns"}, ToolChoiceFunction),
        ({"type": "custom", "name": "p"}, ToolChoiceCustom),
        ({"type": "allowed_tools", "mode": "required", "tools": []}, ToolChoiceAllowed),
        ({"type": "web_search"}, HostedToolChoice),
    ]
    for choice, kind in choices:
        assert isinstance(_parse(tool_choice=choice).tool_choice, kind)


def test_text_formats_nulls_and_unknown_fields() -> None:
    assert isinstance(_parse(text={"format": {"type": "text"}}).text.format, FormatText)
    assert isinstance(_parse(text={"format": {"type": "json_object"}}).text.format, FormatJSONObject)
    fmt = _parse(text={"format": {"type": "json_schema", "name": "A", "schema": {}}}).text.format
    assert isinstance(fmt, FormatJSONSchema)
    req = _parse(input="x", temperature=None, tools=None, client_metadata={"a": 1}, generate=False)
    assert req.temperature is None and req.input == "x"


@pytest.mark.parametrize(
    ("fields", "param", "message"),
    [
        ({"model": 1}, "model", "Invalid type for 'model': expected a string, but got an integer instead."),
        ({"model": ""}, "model", "Invalid 'model': empty string."),
        (
            {"temperature": "hot"},
            "temperature",
            "Invalid type for 'temperature': expected a number, but got a string instead.",
        ),
        (
            {"temperature": True},
            "temperature",
            "Invalid type for 'temperature': expected a number, but got a boolean instead.",
        ),
        ({"top_p": 2}, "top_p", "Invalid 'top_p': must be between 0 and 1, got 2."),
        (
            {"max_output_tokens": 0},
            "max_output_tokens",
            "Invalid 'max_output_tokens': must be between 1 and 1000000, got 0.",
        ),
        (
            {"metadata": {str(i): "v" for i in range(17)}},
            "metadata",
            "Invalid 'metadata': at most 16 key-value pairs, got 17.",
        ),
        (
            {"metadata": {"k": 1}},
            "metadata.k",
            "Invalid type for 'metadata.k': expected a string, but got an integer instead.",
        ),
        (
            {"metadata": {"k": "v" * 513}},
            "metadata.k",
            "Invalid 'metadata.k': values are at most 512 characters.",
        ),
        (
            {"input": 5},
            "input",
            "Invalid type for 'input': expected a string or an array of input items, "
            "but got an integer instead.",
        ),
        (
            {"input": [{"type": "web_search_call"}]},
            "input[0].type",
            "Invalid value for 'input[0].type': 'web_search_call'.",
        ),
        ({"input": [{"a": 1}]}, "input[0].type", "Missing required parameter: 'input[0].type'."),
        ({"input": [{"role": "robot"}]}, "input[0].role", None),
        (
            {"input": [{"type": "function_call", "call_id": "c", "name": "f"}]},
            "input[0].arguments",
            "Missing required parameter: 'input[0].arguments'.",
        ),
        (
            {"input": ["x", {"role": "user", "content": [{"type": "input_text", "text": 1}]}]},
            "input[0]",
            None,
        ),
        (
            {
                "input": [
                    {"role": "user", "content": "a"},
                    {"role": "user", "content": [{"type": "input_text", "text": 1}]},
                ]
            },
            "input[1].content[0].text",
            None,
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
            "input[0].content[0].image_url",
            None,
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input[0].content[0].file_id",
            None,
        ),
        (
            {"input": [{"role": "system", "content": [{"type": "input_file", "file_data": "eA=="}]}]},
            "input[0].content[0]",
            "Invalid 'input[0].content[0]': input_file parts are accepted in user messages and tool "
            "outputs only.",
        ),
        ({"input": [{"role": "user", "content": [{"type": "video"}]}]}, "input[0].content[0].type", None),
        ({"input": [{"role": "user", "content": "x", "id": 5}]}, "input[0].id", None),
        ({"tools": [{"type": "robot"}]}, "tools[0]", "Unsupported tool type 'robot' in 'tools[0]'."),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools[0].name", None),
        (
            {"tools": [{"type": "function", "name": ""}]},
            "tools[0].name",
            "Invalid 'tools[0].name': empty string.",
        ),
        ({"tools": [{"type": "namespace", "name": "ns", "tools": 5}]}, "tools[0].tools", None),
        ({"tool_choice": "sometimes"}, "tool_choice", "Invalid value for 'tool_choice': 'sometimes'."),
        (
            {"tool_choice": 3},
            "tool_choice",
            "Invalid type for 'tool_choice': expected a string or an object, but got an integer instead.",
        ),
        ({"truncation": "x"}, "truncation", "Invalid value for 'truncation': expected 'auto' or 'disabled'."),
        (
            {"text": {"format": {"type": "json_schema", "schema": {}}}},
            "text.format.name",
            "Missing required parameter: 'text.format.name'.",
        ),
        (
            {"reasoning": {"effort": "max"}},
            "reasoning.effort",
            "Invalid value for 'reasoning.effort': 'max'.",
        ),
        (
            {"background": True, "store": False},
            "background",
            "background can only be used when `store` is true",
        ),
        ({"conversation": 5}, "conversation", None),
        ({"conversation": {"id": ""}}, "conversation.id", None),
    ],
)
def test_errors_name_the_exact_path(fields: dict[str, Any], param: str, message: str | None) -> None:
    err = _error(**fields)
    assert err.param == param
    if message is not None:
        assert err.message == message


@pytest.mark.parametrize("refusal", [None, 1, True, [], {}])
def test_non_string_refusal_is_a_400(refusal: Any) -> None:
    err = _error(input=[{"role": "user", "content": [{"type": "refusal", "refusal": refusal}]}])
    assert err.param == "input[0].content[0].refusal"


def test_body_level_errors() -> None:
    for raw, words in [
        (b"{not json", "could not parse"),
        (b"[1]", "must be a JSON object"),
        (b"{}", "'model'"),
    ]:
        with pytest.raises(RequestInvalid, match=words):
            parse_create(raw)
    deep: Any = 1
    for _ in range(200):
        deep = [deep]
    with pytest.raises(RequestInvalid, match="deeper than 64"):
        parse_create(orjson.dumps({"model": "m", "metadata": deep}))


def test_events_encode_with_their_type_first() -> None:
    ev = OutputTextDelta(
        sequence_number=3, item_id="msg_1", output_index=0, content_index=0, delta="hi", logprobs=[]
    )
    assert event_type(ev) == "response.output_text.delta"
    assert msgspec.json.encode(ev).startswith(b'{"type":"response.output_text.delta"')


def test_conversation_and_previous_response_id_are_mutually_exclusive() -> None:
    with pytest.raises(RequestInvalid) as exc:
        parse_create(orjson.dumps({"model": "m", "conversation": "conv_1", "previous_response_id": "resp_1"}))
    assert exc.value.code == "mutually_exclusive_parameters" and exc.value.param is None
    assert exc.value.message == (
        "Mutually exclusive parameters. Ensure you are only providing one of: "
        "'previous_response_id' or 'conversation'."
    )
    for conversation in ("conv_1", {"id": "conv_1"}):
        req = parse_create(orjson.dumps({"model": "m", "conversation": conversation}))
        assert req.conversation == conversation or req.conversation.id == "conv_1"  # type: ignore[union-attr]
