"""Bad input gets a clear 400 (never a 500, and the connection stays usable); a backend that sends
garbage mid-stream gets `response.failed`, stored as failed. Found by review; each was a 500 once."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.support.gateway import Gateway

NEST = {"x": 1}
for _ in range(300):
    NEST = {"x": NEST}

BAD_BODIES: list[dict[str, Any]] = [
    {"input": [{"type": ["x"], "content": "hi"}]},
    {"input": [{"a": 1}]},
    {"input": [{"type": "message", "role": ["user"], "content": "hi"}]},
    {"input": [{"role": "user", "content": [{"type": ["input_text"], "text": "x"}]}]},
    {"input": [{"role": "user", "content": ["just a string"]}]},
    {"input": [{"type": "function_call", "call_id": [1], "name": "f", "arguments": "{}"}]},
    {"input": [{"type": "function_call_output", "call_id": {"a": 1}, "output": "x"}]},
    {"input": [{"type": "tool_search_call", "arguments": {}}]},
    {"input": [{"role": "user", "content": "x", "id": 5}]},
    {"tools": [{"type": "namespace", "name": "ns", "tools": 5}]},
    {"tools": [{"type": "custom", "name": "c", "format": "text"}]},
    {"tools": [{"type": "custom", "name": "c", "description": ["x"]}]},
    {"tools": [{"type": "custom", "name": ""}]},
    {"tools": [{"type": "function", "name": "f"}], "tool_choice": {"type": "function", "name": ["f"]}},
    {"tool_choice": {"type": "function", "name": "not_in_tools"}},
    {"previous_response_id": ""},
    {"model": ""},
    {"top_logprobs": 50},
    {"input": [{"role": "user", "content": "hi", "extra": NEST}]},
    {"tools": [{"type": "function", "name": "f", "parameters": NEST}]},
]


@pytest.mark.parametrize("patch", BAD_BODIES, ids=[json.dumps(b)[:60] for b in BAD_BODIES])
def test_bad_bodies_are_400s(memory_gateway: Gateway, patch: dict[str, Any]) -> None:
    body = {"model": "qwen3", "input": "hi", **patch}
    with httpx.Client(timeout=10) as client:
        resp = client.post(f"{memory_gateway.base_url}/responses", json=body)
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"]["type"] == "invalid_request_error"
        # the same keep-alive connection still works
        assert client.post(
            f"{memory_gateway.base_url}/responses", json={"model": "q", "input": "ok"}
        ).is_success


def test_item_reference_without_type(memory_gateway: Gateway) -> None:
    with httpx.Client(timeout=10) as client:
        first = client.post(
            f"{memory_gateway.base_url}/responses", json={"model": "q", "input": "one"}
        ).json()
        msg_id = first["output"][0]["id"]
        resp = client.post(
            f"{memory_gateway.base_url}/responses",
            json={"model": "q", "input": [{"id": msg_id}, {"role": "user", "content": "two"}]},
        )
        assert resp.status_code == 200, resp.text


def test_malformed_backend_chunk_fails_the_response(gateway: Gateway) -> None:
    body = {"model": "qwen3", "input": "a b c d [bad-chunk]"}
    with httpx.Client(timeout=10) as client:
        plain = client.post(f"{gateway.base_url}/responses", json=body)
        assert plain.status_code == 502 and "malformed" in plain.json()["error"]["message"]
        with client.stream("POST", f"{gateway.base_url}/responses", json={**body, "stream": True}) as r:
            events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
        assert events[-1]["type"] == "response.failed"
        stored = client.get(f"{gateway.base_url}/responses/{events[-1]['response']['id']}").json()
        assert stored["status"] == "failed" and stored["error"]["code"] == "server_error"
