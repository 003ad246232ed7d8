"""Everything the gateway emits validates against the Open Responses JSON schema (strict mode, see
tests/support/open_responses.py): Response objects (created, retrieved, background), stream events of
every kind (text, function calls, reasoning, refusal, incomplete, failed, error), listed input items,
on every store."""

from __future__ import annotations

import time
from typing import Any

import httpx
import msgspec
import pytest

from responses_gateway.config import settings_from_dict
from responses_gateway.protocol.events import ErrorEvent
from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway, run_gateway
from tests.support.open_responses import EVENT_SCHEMAS, check, check_event, check_events, problems
from tests.tools.sse import post_events

AUTH = {"Authorization": "Bearer sk-test"}
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather for a location",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
}


def _post(gw: Gateway, body: dict[str, Any]) -> dict[str, Any]:
    resp = httpx.post(f"{gw.base_url}/responses", json=body, headers=AUTH, timeout=15)
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


def _get(gw: Gateway, path: str) -> dict[str, Any]:
    resp = httpx.get(f"{gw.base_url}{path}", headers=AUTH, timeout=15)
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


# One body per kind of output the gateway makes; the echo backend's directives pick the kind.
CASES: dict[str, dict[str, Any]] = {
    "text": {"input": "hello there"},
    "function_call": {"input": 'weather? [call:get_weather {"location": "Paris"}]', "tools": [WEATHER]},
    "two_function_calls": {
        "input": '[call:get_weather {"location": "A"}][call:get_weather {"location": "B"}]',
        "tools": [{**WEATHER, "strict": True}],
    },
    "reasoning": {"input": "[reasoning] think first"},
    "refusal": {"input": "[refuse] no"},
    "incomplete": {"input": "[repeat:40] many words", "max_output_tokens": 16},
    "instructions_and_metadata": {
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
        "instructions": "be brief",
        "metadata": {"k": "v"},
        "temperature": 0.5,
        "text": {"format": {"type": "json_object"}},
    },
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_response_objects_and_events_validate(gateway: Gateway, case: str) -> None:
    body = {"model": "m", **CASES[case]}
    created = _post(gateway, body)
    check("ResponseResource", created)
    check("ResponseResource", _get(gateway, f"/responses/{created['id']}"))

    events = post_events(gateway.base_url, body)
    check_events(events)
    final = events[-1]["response"]
    assert final["status"] == created["status"]
    assert {e["type"] for e in events} >= {"response.created", "response.in_progress"}


def test_function_tool_always_carries_strict(gateway: Gateway, echo: EchoBackend) -> None:
    """Omitted -> the backend's `strict_tools_default` (true, OpenAI's default) is sent and reported;
    a value the client sent is forwarded and echoed."""
    tools = [WEATHER, {**WEATHER, "name": "w2", "strict": True}, {**WEATHER, "name": "w3", "strict": False}]
    created = _post(gateway, {"model": "m", "input": "strict-marker", "tools": tools})
    [sent] = [r["body"] for r in echo.chat_requests() if "strict-marker" in str(r["body"]["messages"])]
    assert [t["function"].get("strict", "absent") for t in sent["tools"]] == [True, True, False]
    assert [(t["name"], t["strict"]) for t in created["tools"]] == [
        ("get_weather", True),
        ("w2", True),
        ("w3", False),
    ]
    bare = _post(gateway, {"model": "m", "input": "hi", "tools": [{"type": "function", "name": "f"}]})
    assert bare["tools"] == [
        {"type": "function", "name": "f", "description": None, "parameters": None, "strict": True}
    ]
    check("ResponseResource", bare)


def test_failed_stream_validates(gateway: Gateway) -> None:
    events = post_events(gateway.base_url, {"model": "m", "input": "[die-mid-stream] bye"})
    check_events(events)
    assert events[-1]["type"] == "response.failed"
    stored = _get(gateway, f"/responses/{events[-1]['response']['id']}")
    check("ResponseResource", stored)
    assert stored["status"] == "failed"


def test_stream_error_event_validates() -> None:
    """A stream-level `error` event (the gateway sends one when the store fails after the stream began,
    or on a bug) carries OpenAI's top-level fields and the spec's `error` object."""
    event = msgspec.json.decode(
        msgspec.json.encode(ErrorEvent(sequence_number=7, code="store_unavailable", message="m"))
    )
    check_event(event)
    assert event["code"] == "store_unavailable" and event["error"]["code"] == "store_unavailable"


def test_background_response_validates(gateway: Gateway) -> None:
    queued = _post(gateway, {"model": "m", "input": "hello", "background": True})
    check("ResponseResource", queued)
    assert queued["status"] in ("queued", "in_progress", "completed")
    deadline = time.monotonic() + 10
    done = queued
    while done["status"] in ("queued", "in_progress") and time.monotonic() < deadline:
        time.sleep(0.05)
        done = _get(gateway, f"/responses/{queued['id']}")
    check("ResponseResource", done)
    assert done["status"] == "completed"
    replay = httpx.get(
        f"{gateway.base_url}/responses/{queued['id']}", params={"stream": "true"}, headers=AUTH, timeout=15
    )
    assert replay.status_code == 200, replay.text
    blocks = [b for b in replay.text.strip().split("\n\n") if b]
    import json

    events = [json.loads(dict(x.split(": ", 1) for x in b.split("\n") if ": " in x)["data"]) for b in blocks]
    check_events(events)


def test_input_items_validate_as_items(gateway: Gateway) -> None:
    first = _post(
        gateway, {"model": "m", "input": '[call:get_weather {"location": "P"}]', "tools": [WEATHER]}
    )
    call = first["output"][0]
    assert call["type"] == "function_call"
    second = _post(
        gateway,
        {
            "model": "m",
            "previous_response_id": first["id"],
            "tools": [WEATHER],
            "input": [
                {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"},
                {"type": "message", "role": "assistant", "phase": "commentary", "content": "noted"},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "and?"}]},
            ],
        },
    )
    check("ResponseResource", second)
    page = _get(gateway, f"/responses/{second['id']}/input_items")
    assert page["object"] == "list" and page["data"]
    for item in page["data"]:
        check("ItemField", item)


def test_deleted_object_shape(gateway: Gateway) -> None:
    """The spec has no delete route; the object is OpenAI's `{id, object: "response", deleted}`."""
    created = _post(gateway, {"model": "m", "input": "bye"})
    resp = httpx.delete(f"{gateway.base_url}/responses/{created['id']}", headers=AUTH, timeout=15)
    assert resp.json() == {"id": created["id"], "object": "response", "deleted": True}


def test_the_checker_catches_a_missing_key() -> None:
    """The validator itself fails a response without a required key (so the tests above can fail)."""
    assert problems(
        "FunctionTool", {"type": "function", "name": "f", "description": None, "parameters": None}
    )
    assert not problems(
        "FunctionTool",
        {"type": "function", "name": "f", "description": None, "parameters": None, "strict": True},
    )


def test_with_the_spec_names_every_reasoning_event_validates_as_it_is(echo: EchoBackend) -> None:
    """`response_api.reasoning_event_names: open_responses`: the reasoning text events are the spec's
    `response.reasoning.delta` / `.done`, and every event of a reasoning stream (summary included)
    is in the spec under its own name, with no renaming by the checker."""
    settings = settings_from_dict(
        {
            "backends": [{"name": "echo", "base_url": echo.base_url, "models": ["*"]}],
            "response_api": {"store_backend": "memory", "reasoning_event_names": "open_responses"},
        }
    )
    body = {"model": "m", "input": "[reasoning] think first", "reasoning": {"summary": "auto"}}
    with run_gateway(settings) as gw:
        events = post_events(gw.base_url, body)
    kinds = [e["type"] for e in events]
    assert "response.reasoning.delta" in kinds and "response.reasoning.done" in kinds
    assert not any(k.startswith("response.reasoning_text.") for k in kinds)
    for event in events:
        assert event["type"] in EVENT_SCHEMAS, event["type"]
        check(EVENT_SCHEMAS[event["type"]], event)
    assert events[-1]["response"]["output"][0]["content"][0]["type"] == "reasoning_text"
