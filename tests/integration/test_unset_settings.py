"""Settings the client did not set: the Response reports what the gateway told the backend, never a value
nobody chose (docs/API.md "What a Response reports").

- `temperature`, `top_p`, `presence_penalty`, `frequency_penalty` (numbers the Open Responses schema
  requires): the backend's `sampling_defaults` are sent and reported (OpenAI's 1, 1, 0, 0 unless
  configured).
- a function tool's `strict`: the backend's `strict_tools_default` is sent and reported (OpenAI's true
  unless configured).
- `max_output_tokens`, `max_tool_calls`: nothing sent, reported null.

Each is checked against what the echo backend received, on create, stream, background and GET, for the
default config and for a configured backend; settings the client did set win."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from responses_gateway.config import settings_from_dict
from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway, run_gateway
from tests.support.ws import completed, socket
from tests.tools.sse import post_events

SAMPLING = ("temperature", "top_p", "presence_penalty", "frequency_penalty")
NEVER_SENT = ("max_tokens", "max_completion_tokens", "logprobs", "top_logprobs", "seed", "n", "stop")
OPENAI = (1.0, 1.0, 0.0, 0.0)
TUNED = {"temperature": 0.6, "top_p": 0.95, "presence_penalty": 0.25, "frequency_penalty": -0.5}
TOOLS = [
    {"type": "function", "name": "omitted", "parameters": {"type": "object", "properties": {}}},
    {"type": "function", "name": "given_true", "strict": True},
    {"type": "function", "name": "given_false", "strict": False},
]


@pytest.fixture
def tuned_gateway(echo: EchoBackend) -> Iterator[Gateway]:
    """Two backends on the same echo process: `tuned` (model `tuned-model`) with configured defaults,
    and the catch-all `plain` with none."""
    tuned = {"name": "tuned", "base_url": echo.base_url, "models": ["tuned-model"]}
    settings = settings_from_dict(
        {
            "backends": [
                {**tuned, "sampling_defaults": TUNED, "strict_tools_default": False},
                {"name": "plain", "base_url": echo.base_url, "models": ["*"]},
            ],
            "response_api": {"store_backend": "memory"},
        },
        {},
    )
    with run_gateway(settings) as gw:
        yield gw


def _create(gw: Gateway, marker: str, **fields: Any) -> dict[str, Any]:
    body = {"model": "qwen3", "input": marker, **fields}
    r = httpx.post(f"{gw.base_url}/responses", json=body, timeout=15)
    assert r.status_code == 200, r.text
    resp: dict[str, Any] = r.json()
    return resp


def _get(gw: Gateway, response_id: str) -> dict[str, Any]:
    r = httpx.get(f"{gw.base_url}/responses/{response_id}", timeout=15)
    assert r.status_code == 200, r.text
    resp: dict[str, Any] = r.json()
    return resp


def _sent(echo: EchoBackend, marker: str) -> dict[str, Any]:
    """The one chat request whose messages carry `marker`."""
    [body] = [r["body"] for r in echo.chat_requests() if marker in str(r["body"]["messages"])]
    return body


def _reported(resp: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(resp[k] for k in SAMPLING)


def _strict(tools: list[dict[str, Any]]) -> list[Any]:
    """`strict` per function tool, of the Response's tools or (nested) of the Chat tools."""
    return [t.get("function", t).get("strict", "absent") for t in tools]


def _all_reports(gw: Gateway, marker: str, **fields: Any) -> list[dict[str, Any]]:
    """The Response of a create, its GET, the first and last snapshots of a stream and its GET, and a
    background response (queued, then GET once completed): each to be checked the same way."""
    created = _create(gw, f"{marker}-create", **fields)
    events = post_events(gw.base_url, {"model": "qwen3", "input": f"{marker}-stream", **fields})
    assert events[-1]["type"] == "response.completed"
    streamed = events[-1]["response"]
    queued = _create(gw, f"{marker}-background", background=True, **fields)
    deadline = time.monotonic() + 10
    done = _get(gw, queued["id"])
    while done["status"] in ("queued", "in_progress") and time.monotonic() < deadline:
        time.sleep(0.05)
        done = _get(gw, queued["id"])
    assert done["status"] == "completed"
    return [
        created,
        _get(gw, created["id"]),
        events[0]["response"],
        streamed,
        _get(gw, streamed["id"]),
        queued,
        done,
    ]


def test_defaults_are_openais_sent_and_reported(memory_gateway: Gateway, echo: EchoBackend) -> None:
    reports = _all_reports(memory_gateway, "plain", tools=TOOLS)
    for kind in ("create", "stream", "background"):
        sent = _sent(echo, f"plain-{kind}")
        assert tuple(sent[k] for k in SAMPLING) == OPENAI, kind
        assert [k for k in NEVER_SENT if k in sent] == [], kind
        assert _strict(sent["tools"]) == [True, True, False], kind
    for resp in reports:
        assert _reported(resp) == OPENAI
        assert _strict(resp["tools"]) == [True, True, False]
        assert resp["max_output_tokens"] is None and resp["max_tool_calls"] is None
        assert resp["top_logprobs"] == 0  # none were asked for, none are returned


def test_configured_backend_defaults_are_sent_and_reported(tuned_gateway: Gateway, echo: EchoBackend) -> None:
    reports = _all_reports(tuned_gateway, "tuned", model="tuned-model", tools=TOOLS)
    expected = tuple(TUNED[k] for k in SAMPLING)
    for kind in ("create", "stream", "background"):
        sent = _sent(echo, f"tuned-{kind}")
        assert tuple(sent[k] for k in SAMPLING) == expected, kind
        assert _strict(sent["tools"]) == [False, True, False], kind
        assert "max_tokens" not in sent
    for resp in reports:
        assert _reported(resp) == expected
        assert _strict(resp["tools"]) == [False, True, False]
        assert resp["max_output_tokens"] is None
    # the other backend of the same gateway keeps OpenAI's
    plain = _create(tuned_gateway, "other-backend", tools=TOOLS[:1])
    sent = _sent(echo, "other-backend")
    assert tuple(sent[k] for k in SAMPLING) == OPENAI == _reported(plain)
    assert _strict(sent["tools"]) == [True] == _strict(plain["tools"])


def test_websocket_creates_report_what_was_sent(tuned_gateway: Gateway, echo: EchoBackend) -> None:
    with socket(tuned_gateway.base_url) as ws:
        tuned = completed(ws, model="tuned-model", input="ws-tuned", tools=TOOLS[:1])
        plain = completed(ws, model="qwen3", input="ws-plain", tools=TOOLS[:1], store=False)
    for resp, marker, values, strict in ((tuned, "ws-tuned", tuple(TUNED[k] for k in SAMPLING), False),
                                         (plain, "ws-plain", OPENAI, True)):  # fmt: skip
        sent = _sent(echo, marker)
        assert tuple(sent[k] for k in SAMPLING) == values == _reported(resp)
        assert _strict(sent["tools"]) == [strict] == _strict(resp["tools"])
    assert _reported(_get(tuned_gateway, tuned["id"])) == _reported(tuned)


def test_set_settings_win_over_backend_defaults(tuned_gateway: Gateway, echo: EchoBackend) -> None:
    given = {"temperature": 0.2, "frequency_penalty": 0.0, "max_output_tokens": 50}
    tools = [{**TOOLS[0], "strict": True}]
    resp = _create(tuned_gateway, "given", model="tuned-model", tools=tools, **given)
    sent = _sent(echo, "given")
    expected = (0.2, TUNED["top_p"], TUNED["presence_penalty"], 0.0)  # 0.0 given is kept, not defaulted
    assert (
        tuple(sent[k] for k in SAMPLING)
        == expected
        == _reported(resp)
        == _reported(_get(tuned_gateway, resp["id"]))
    )
    assert sent["max_tokens"] == 50 and resp["max_output_tokens"] == 50
    assert _strict(sent["tools"]) == [True] == _strict(resp["tools"])


def test_set_settings_are_sent_and_reported(memory_gateway: Gateway, echo: EchoBackend) -> None:
    given = {"temperature": 0.2, "top_p": 0.9, "max_output_tokens": 50, "presence_penalty": 0.5,
             "frequency_penalty": -0.5}  # fmt: skip
    resp = _create(memory_gateway, "set", **given)
    sent = _sent(echo, "set")
    assert (sent["temperature"], sent["top_p"], sent["max_tokens"]) == (0.2, 0.9, 50)
    assert (sent["presence_penalty"], sent["frequency_penalty"]) == (0.5, -0.5)
    assert {k: resp[k] for k in given} == given
