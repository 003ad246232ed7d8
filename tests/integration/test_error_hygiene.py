"""What errors may say: a backend's text, internal addresses and driver messages never reach clients
(only our log, with secrets masked); a backend's 429 is passed on with its Retry-After."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from responses_gateway.config import settings_from_dict
from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway, run_gateway
from tests.support.processes import free_port

GATEWAY_KEY = "sk-gateway-configured-key-0123456789abcdef"


@pytest.fixture
def keyed(echo: EchoBackend) -> Iterator[Gateway]:
    """A gateway holding its own api_key for the backend (the issue's probe)."""
    backend = {"name": "echo", "base_url": echo.base_url, "api_key": GATEWAY_KEY, "timeout_seconds": 10}
    with run_gateway(settings_from_dict({"backends": [backend]})) as gw:
        yield gw


def _sse_events(resp: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in resp.iter_lines() if line.startswith("data: ")]


@pytest.mark.parametrize(("status", "expected"), [(400, 400), (404, 404), (401, 502), (500, 502)])
def test_a_backend_echoing_its_credential_leaks_nothing(
    keyed: Gateway, echo: EchoBackend, caplog: pytest.LogCaptureFixture, status: int, expected: int
) -> None:
    """Regression (issue 8, probe 7): an unauthenticated client got the gateway's api_key back."""
    caplog.set_level(logging.WARNING, logger="responses_gateway")
    body = {"model": "m", "input": f"hi [leak-auth:{status}]"}
    with httpx.Client(timeout=10) as client:
        resp = client.post(f"{keyed.base_url}/responses", json=body)
        assert resp.status_code == expected, resp.text
        assert GATEWAY_KEY not in resp.text and "invalid credential" not in resp.text
        assert "'echo'" in resp.json()["error"]["message"]  # names the backend by its configured name
        chat = {"model": "m", "messages": [{"role": "user", "content": f"[leak-auth:{status}]"}]}
        passed = client.post(f"{keyed.base_url}/chat/completions", json=chat)  # the pass-through too
        assert passed.status_code == expected and GATEWAY_KEY not in passed.text
    assert echo.chat_requests()[0]["authorization"] == f"Bearer {GATEWAY_KEY}"  # it was sent: and echoed
    assert "invalid credential: Bearer ***" in caplog.text  # the backend's text is in our log, masked
    assert GATEWAY_KEY not in caplog.text


def test_an_in_stream_error_echoing_the_credential_leaks_nothing(
    keyed: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="responses_gateway")
    body = {"model": "m", "input": "hi [leak-auth:200]"}
    with httpx.Client(timeout=10) as client:
        plain = client.post(f"{keyed.base_url}/responses", json=body)
        assert plain.status_code == 502 and GATEWAY_KEY not in plain.text
        with client.stream("POST", f"{keyed.base_url}/responses", json={**body, "stream": True}) as r:
            events = _sse_events(r)
        assert events[-1]["type"] == "response.failed"
        assert GATEWAY_KEY not in json.dumps(events)
        stored = client.get(f"{keyed.base_url}/responses/{events[-1]['response']['id']}")
        assert stored.json()["status"] == "failed" and GATEWAY_KEY not in stored.text
    assert "invalid credential: Bearer ***" in caplog.text and GATEWAY_KEY not in caplog.text


def test_a_backend_429_is_passed_on_with_retry_after(keyed: Gateway) -> None:
    with httpx.Client(timeout=10) as client:
        resp = client.post(f"{keyed.base_url}/responses", json={"model": "m", "input": "[fail:429]"})
    assert resp.status_code == 429 and resp.headers["retry-after"] == "1"
    error = resp.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("requests", "rate_limit_exceeded", None)
    assert "injected" not in error["message"] and "'echo'" in error["message"]
    client = OpenAI(base_url=keyed.base_url, api_key="x", max_retries=0)
    with pytest.raises(openai.RateLimitError) as info:
        client.responses.create(model="m", input="[fail:429]")
    assert info.value.code == "rate_limit_exceeded"


def test_an_unreachable_backend_names_no_address() -> None:
    port = free_port()
    backend = {"name": "gpu-pool", "base_url": f"http://user:pw@127.0.0.1:{port}/v1", "timeout_seconds": 5}
    with (
        run_gateway(settings_from_dict({"backends": [backend]})) as gw,
        httpx.Client(timeout=10) as client,
    ):
        resp = client.post(f"{gw.base_url}/responses", json={"model": "m", "input": "hi"})
    assert resp.status_code == 502
    assert resp.json()["error"]["message"] == "Backend 'gpu-pool' is unreachable."
    assert str(port) not in resp.text and "127.0.0.1" not in resp.text and "pw" not in resp.text


def test_store_failures_say_nothing_internal(echo: EchoBackend, caplog: pytest.LogCaptureFixture) -> None:
    """Regression (issue 8, probe 9): `Error 111 connecting to 127.0.0.1:18820` was in error bodies
    and in /ready. The 503 and Retry-After stay; the detail is in our log."""
    caplog.set_level(logging.WARNING, logger="responses_gateway")
    port = free_port()
    redis = {"address": f"127.0.0.1:{port}", "dial_timeout": 0.2, "max_retries": 0}
    settings = settings_from_dict(
        {
            "backends": [{"name": "echo", "base_url": echo.base_url}],
            "response_api": {"store_backend": "redis", "redis": redis},
        }
    )
    generic = "The response store is unavailable."
    with run_gateway(settings) as gw, httpx.Client(timeout=20) as client:
        replies = [
            client.post(f"{gw.base_url}/responses", json={"model": "m", "input": "hi"}),
            client.get(f"{gw.base_url}/responses/resp_{'0' * 48}"),
            client.delete(f"{gw.base_url}/responses/resp_{'0' * 48}"),
            client.get(f"{gw.base_url}/responses/resp_{'0' * 48}/input_items"),
        ]
        for resp in replies:
            assert resp.status_code == 503 and resp.headers["retry-after"], resp.text
            assert resp.json()["error"] == {
                "message": generic,
                "type": "server_error",
                "param": None,
                "code": "store_unavailable",
            }
        ready = client.get(f"{gw.root_url}/ready")
        assert ready.status_code == 503 and ready.json()["reason"] == generic
        body = {"model": "m", "input": "hi", "stream": True}
        with client.stream("POST", f"{gw.base_url}/responses", json=body) as r:
            events = _sse_events(r)
        assert events[-1]["type"] == "error" and events[-1]["code"] == "store_unavailable"
        texts = [r.text for r in [*replies, ready]] + [json.dumps(events)]
    for text in texts:
        assert str(port) not in text and "127.0.0.1" not in text and "Error" not in text
    assert str(port) in caplog.text  # the detail was logged for the operator
