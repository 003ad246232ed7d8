"""The typed core end to end: exact params at the edge, regressions that were 500s, a translator bug
is a logged 500 (never relabelled), GET returns the stored bytes, and history joined as bytes."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

from responses_gateway.translate.stream import StreamTranslator
from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway


@pytest.mark.parametrize("refusal", [None, 1, True, [], {}])
def test_non_string_refusal_part_is_a_400(memory_gateway: Gateway, refusal: Any) -> None:
    part = {"type": "refusal", "refusal": refusal}
    body = {"model": "q", "input": [{"role": "user", "content": [part]}]}
    resp = httpx.post(f"{memory_gateway.base_url}/responses", json=body, timeout=10)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["param"] == "input[0].content[0].refusal"


@pytest.mark.parametrize(
    ("patch", "param", "message"),
    [
        ({"model": 5}, "model", "Invalid type for 'model': expected a string, but got an integer instead."),
        (
            {
                "input": [
                    {"role": "user", "content": "a"},
                    {"role": "user", "content": [{"type": "input_image"}]},
                ]
            },
            "input[1].content[0].image_url",
            "input_image parts need an image_url (file_id is not supported).",
        ),
        ({"input": [{"type": "function_call", "call_id": "c", "name": "f"}]}, "input[0].arguments", None),
        ({"tools": [{"type": "robot"}]}, "tools[0]", "Unsupported tool type 'robot' in 'tools[0]'."),
        ({"temperature": 3}, "temperature", "Invalid 'temperature': must be between 0 and 2, got 3."),
    ],
)
def test_param_is_the_exact_path(
    memory_gateway: Gateway, patch: dict[str, Any], param: str, message: str | None
) -> None:
    body = {"model": "q", "input": "hi", **patch}
    error = httpx.post(f"{memory_gateway.base_url}/responses", json=body, timeout=10).json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    if message is not None:
        assert error["message"] == message


@pytest.mark.parametrize("kind", ["list", "str", "details"])
@pytest.mark.parametrize("stream", [False, True])
def test_malformed_backend_usage_is_dropped_not_fatal(
    memory_gateway: Gateway, kind: str, stream: bool
) -> None:
    body = {"model": "q", "input": f"hello [bad-usage:{kind}]", "stream": stream}
    with httpx.Client(timeout=10) as client:
        if stream:
            with client.stream("POST", f"{memory_gateway.base_url}/responses", json=body) as r:
                assert r.status_code == 200
                events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
            assert events[-1]["type"] == "response.completed"
            final = events[-1]["response"]
        else:
            resp = client.post(f"{memory_gateway.base_url}/responses", json=body)
            assert resp.status_code == 200, resp.text
            final = resp.json()
        assert final["usage"] is None and final["output"][0]["content"][0]["text"] == "echo: hello"
        stored = client.get(f"{memory_gateway.base_url}/responses/{final['id']}")
        assert stored.status_code == 200 and stored.json()["status"] == "completed"


def test_translator_bug_is_a_500_with_a_logged_traceback(
    memory_gateway: Gateway, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: StreamTranslator, chunk: object) -> list[object]:
        raise RuntimeError("a bug in the translator")

    monkeypatch.setattr(StreamTranslator, "feed", broken)
    caplog.set_level(logging.ERROR)
    body = {"model": "q", "input": "hi"}
    resp = httpx.post(f"{memory_gateway.base_url}/responses", json=body, timeout=10)
    assert resp.status_code == 500
    assert resp.json()["error"]["type"] == "server_error"
    assert "malformed" not in resp.text
    logged = [r for r in caplog.records if r.exc_info and "a bug in the translator" in str(r.exc_info[1])]
    assert logged, "the traceback is logged"
    with httpx.stream("POST", f"{memory_gateway.base_url}/responses", json={**body, "stream": True}) as r:
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1]["type"] == "error" and events[-1]["code"] == "server_error"


def test_get_returns_the_stored_bytes(memory_gateway: Gateway) -> None:
    with httpx.Client(timeout=10) as client:
        created = client.post(f"{memory_gateway.base_url}/responses", json={"model": "q", "input": "hi"})
        got = client.get(f"{memory_gateway.base_url}/responses/{created.json()['id']}")
    assert got.content == created.content


def test_chain_history_as_bytes(memory_gateway: Gateway, echo: EchoBackend) -> None:
    """Instructions first and merged with the first turn's developer message; a tool output that
    answers a call stored two turns back; reasoning not sent; no merge across turns."""
    url = f"{memory_gateway.base_url}/responses"
    tools = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]
    with httpx.Client(timeout=10) as client:
        first = client.post(
            url,
            json={
                "model": "q",
                "instructions": "old",
                "tools": tools,
                "input": [
                    {"role": "developer", "content": "dev"},
                    {"role": "user", "content": 'Checking. [call:get_weather {"city": "Paris"}] [reasoning]'},
                ],
            },
        ).json()
        call = next(o for o in first["output"] if o["type"] == "function_call")
        second = client.post(
            url, json={"model": "q", "previous_response_id": first["id"], "input": "and?", "tools": tools}
        ).json()
        third = client.post(
            url,
            json={
                "model": "q",
                "instructions": "new",
                "previous_response_id": second["id"],
                "tools": tools,
                "input": [{"type": "function_call_output", "call_id": call["call_id"], "output": "21C"}],
            },
        )
        assert third.status_code == 200, third.text
        bad = client.post(
            url,
            json={
                "model": "q",
                "previous_response_id": second["id"],
                "input": [{"type": "function_call_output", "call_id": "call_nope", "output": "x"}],
            },
        )
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "input[0].call_id"
    sent = echo.chat_requests()[-1]["body"]["messages"]
    assert sent[0] == {"role": "system", "content": "new\n\ndev"}
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user", "assistant", "tool"]
    assert sent[2]["tool_calls"][0]["id"] == call["call_id"]
    assert sent[-1] == {"role": "tool", "tool_call_id": call["call_id"], "content": "21C"}
    assert "thinking" not in json.dumps(sent)
