"""msgspec Structs vs pydantic v2 on the gateway's hot path: parse + validate a realistic create
request (a few items of several kinds, four tools), and encode a Response and its event stream.

The pydantic models mirror the msgspec ones (`responses_gateway.protocol`) for the kinds the sample
uses, with discriminated unions on `type`. Pure CPU, one process, no I/O.

Run: .venv/bin/python benchmarks/protocol_parse.py [--n 20000]
"""

from __future__ import annotations

import _common

# isort: split
import argparse
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal

import msgspec
import orjson
from pydantic import BaseModel, ConfigDict, Field
from tests.support.translate import translate

from responses_gateway.protocol import parse_create

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
BODY: dict[str, Any] = {
    "model": "gpt-test",
    "instructions": "You are a helpful assistant.",
    "input": [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Be brief."}]},
        {"role": "user", "content": "What is the weather in Paris and in Rome?"},
        {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
            "status": "completed",
        },
        {"type": "function_call_output", "call_id": "call_1", "output": '{"temp": 21}'},
        {
            "type": "message",
            "role": "assistant",
            "id": "msg_1",
            "status": "completed",
            "content": [{"type": "output_text", "text": "Paris is 21C.", "annotations": []}],
        },
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "And Rome?"},
                {"type": "input_image", "image_url": "https://example.com/rome.jpg"},
            ],
        },
    ],
    "tools": [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather of a city",
            "parameters": SCHEMA,
            "strict": True,
        },
        {"type": "function", "name": "get_time", "parameters": SCHEMA},
        {
            "type": "custom",
            "name": "apply_patch",
            "format": {"type": "grammar", "syntax": "lark", "definition": "start: x"},
        },
        {"type": "web_search", "external_web_access": False},
    ],
    "tool_choice": "auto",
    "temperature": 0.2,
    "metadata": {"session": "abc"},
    "store": True,
    "client_metadata": {"x": "y"},
}
RAW = orjson.dumps(BODY)


# -- the pydantic mirror --------------------------------------------------------------------------
class _M(BaseModel):
    model_config = ConfigDict(extra="ignore")


class PInputText(_M):
    type: Literal["input_text"]
    text: str


class POutputText(_M):
    type: Literal["output_text"]
    text: str
    annotations: list[dict[str, Any]] | None = None
    logprobs: list[dict[str, Any]] | None = None


class PInputImage(_M):
    type: Literal["input_image"]
    image_url: str | None = None
    detail: str | None = None


PPart = Annotated[PInputText | POutputText | PInputImage, Field(discriminator="type")]


class PMessage(_M):
    type: Literal["message"] = "message"
    role: Literal["user", "system", "developer", "assistant"]
    content: str | list[PPart] = ""
    id: str | None = None
    status: str | None = None


class PFunctionCall(_M):
    type: Literal["function_call"]
    call_id: str
    name: str
    arguments: str
    id: str | None = None
    status: str | None = None


class PFunctionCallOutput(_M):
    type: Literal["function_call_output"]
    call_id: str
    output: str | list[PPart]
    id: str | None = None


PItem = Annotated[PMessage | PFunctionCall | PFunctionCallOutput, Field(discriminator="type")]


class PFunctionTool(_M):
    type: Literal["function"]
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class PCustomFormat(_M):
    type: str
    syntax: str | None = None
    definition: str | None = None


class PCustomTool(_M):
    type: Literal["custom"]
    name: str
    format: PCustomFormat | None = None


class PWebSearch(_M):
    type: Literal["web_search"]


PTool = Annotated[PFunctionTool | PCustomTool | PWebSearch, Field(discriminator="type")]


class PCreate(_M):
    model: Annotated[str, Field(min_length=1)]
    input: str | list[PItem] | None = None
    instructions: str | None = None
    tools: list[PTool] | None = None
    tool_choice: Literal["auto", "none", "required"] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None


def _pydantic_input(body: dict[str, Any]) -> None:
    for item in body.get("input") or ():
        if isinstance(item, dict) and "type" not in item and "role" in item:
            item["type"] = "message"


def parse_pydantic(raw: bytes) -> PCreate:
    body = orjson.loads(raw)  # the same edge as ours: items without `type` need it inferred first
    _pydantic_input(body)
    return PCreate.model_validate(body)


RAW_TYPED = orjson.dumps(
    {**BODY, "input": [{"type": "message", **i} if "type" not in i else i for i in BODY["input"]]}
)


def bench(fn: Callable[[], object], n: int) -> float:
    """Microseconds per call (best of 3 runs)."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - start) / n * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    n = parser.parse_args().n
    assert parse_pydantic(RAW).tools is not None and parse_create(RAW).tools is not None

    chunks = [
        {"choices": [{"index": 0, "delta": {"content": w + " "}}]}
        for w in "the quick brown fox jumps over the lazy dog again".split()
    ]
    chunks.append(
        {
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 10, "total_tokens": 19},
        }
    )
    events, response = translate(chunks)
    # the same events and response as pydantic models would hold them: validate once, then dump
    p_events = [_PEvent.model_validate(e) for e in events]
    p_response = _PEvent.model_validate({"type": "r", "sequence_number": 0, **response})
    from responses_gateway.protocol.events import Event
    from responses_gateway.protocol.response import Response

    m_events = [msgspec.convert(e, Event) for e in events]
    m_response = msgspec.convert(response, Response)
    enc = msgspec.json.Encoder().encode

    rows = [
        (
            "msgspec: parse_create, 2 items without `type` (refused, then orjson + infer + convert)",
            bench(lambda: parse_create(RAW), n),
        ),
        (
            "msgspec: parse_create, every item typed (one-pass typed decode)",
            bench(lambda: parse_create(RAW_TYPED), n),
        ),
        (
            "pydantic v2: orjson + infer types + model_validate",
            bench(lambda: parse_pydantic(RAW), n),
        ),
        (
            "pydantic v2: model_validate_json, every item typed",
            bench(lambda: PCreate.model_validate_json(RAW_TYPED), n),
        ),
        (f"encode {len(events)} events (msgspec)", bench(lambda: [enc(e) for e in m_events], n // 4)),
        (
            f"encode {len(events)} events (pydantic v2 model_dump_json)",
            bench(lambda: [e.model_dump_json() for e in p_events], n // 4),
        ),
        ("encode the Response (msgspec)", bench(lambda: enc(m_response), n)),
        ("encode the Response (pydantic v2)", bench(lambda: p_response.model_dump_json(), n)),
    ]
    print(f"request body {len(RAW)} bytes, {len(BODY['input'])} items, {len(BODY['tools'])} tools; n={n}\n")
    print(_common.md_table(["operation", "µs per call"], [(a, f"{b:.1f}") for a, b in rows]))


class _PEvent(BaseModel):
    """Events as pydantic holds them for encoding: the exact fields, no schema work on dump."""

    model_config = ConfigDict(extra="allow")
    type: str
    sequence_number: int


if __name__ == "__main__":
    main()
