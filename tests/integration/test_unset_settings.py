"""Sampling settings the client did not set: the gateway sends the backend none of them (the backend's
own defaults apply), and the Response reports null where the Open Responses schema allows it
(`max_output_tokens`, `max_tool_calls`) and, where the schema requires a number, the Chat Completions
API's documented default for an absent parameter (README "What a Response reports"). Settings the
client did set are sent and reported as given."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway

SAMPLING = ("temperature", "top_p", "max_tokens", "max_completion_tokens", "presence_penalty",
            "frequency_penalty", "logprobs", "top_logprobs", "seed", "n", "stop")  # fmt: skip


def _create(gw: Gateway, **fields: Any) -> dict[str, Any]:
    r = httpx.post(f"{gw.base_url}/responses", json={"model": "qwen3", "input": "hi", **fields}, timeout=15)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_unset_settings_are_not_sent_and_not_claimed(memory_gateway: Gateway, echo: EchoBackend) -> None:
    resp = _create(memory_gateway)
    sent = echo.chat_requests()[-1]["body"]
    assert [k for k in SAMPLING if k in sent] == []
    assert resp["max_output_tokens"] is None and resp["max_tool_calls"] is None
    # required numbers in the Open Responses schema: the Chat Completions defaults of an absent parameter
    assert (resp["temperature"], resp["top_p"], resp["presence_penalty"], resp["frequency_penalty"]) == (
        1.0, 1.0, 0.0, 0.0)  # fmt: skip
    assert resp["top_logprobs"] == 0  # none were asked for, none are returned


def test_set_settings_are_sent_and_reported(memory_gateway: Gateway, echo: EchoBackend) -> None:
    given = {"temperature": 0.2, "top_p": 0.9, "max_output_tokens": 50, "presence_penalty": 0.5,
             "frequency_penalty": -0.5}  # fmt: skip
    resp = _create(memory_gateway, **given)
    sent = echo.chat_requests()[-1]["body"]
    assert (sent["temperature"], sent["top_p"], sent["max_tokens"]) == (0.2, 0.9, 50)
    assert (sent["presence_penalty"], sent["frequency_penalty"]) == (0.5, -0.5)
    assert {k: resp[k] for k in given} == given
