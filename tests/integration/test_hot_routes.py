"""The hot routes (`api/hot.py`) answer exactly as Starlette's routes did: headers, errors, the routes
next to them, metrics; and a gateway mounted under a root path still serves them through Starlette."""

from __future__ import annotations

import logging
import re

import httpx
import pytest

from responses_gateway.translate.stream import StreamTranslator
from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway, gateway_settings, run_gateway


def test_headers_of_json_and_stream_replies(memory_gateway: Gateway) -> None:
    with httpx.Client(timeout=10) as client:
        created = client.post(f"{memory_gateway.base_url}/responses", json={"model": "q", "input": "hi"})
        assert created.status_code == 200
        assert created.headers["content-type"] == "application/json"
        assert created.headers["content-length"] == str(len(created.content))
        got = client.get(f"{memory_gateway.base_url}/responses/{created.json()['id']}")
        assert got.content == created.content
        assert got.headers["content-type"] == "application/json"
        body = {"model": "q", "input": "hi", "stream": True}
        with client.stream("POST", f"{memory_gateway.base_url}/responses", json=body) as r:
            text = r.read().decode()
        assert r.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert r.headers["cache-control"] == "no-cache" and r.headers["x-accel-buffering"] == "no"
        assert r.headers["transfer-encoding"] == "chunked"
        types = re.findall(r"^event: (\S+)$", text, re.M)
        assert types[0] == "response.created" and types[-1] == "response.completed"
        seqs = [int(s) for s in re.findall(r'"sequence_number":(\d+)', text)]
        assert seqs == list(range(len(types)))


def test_errors_and_neighbouring_routes(memory_gateway: Gateway) -> None:
    base = memory_gateway.base_url
    with httpx.Client(timeout=10) as client:
        missing = client.get(f"{base}/responses/resp_nope")
        assert missing.status_code == 404 and missing.json()["error"]["param"] == "response_id"
        replay = client.get(f"{base}/responses/resp_nope", params={"stream": "true"})  # Starlette's route
        assert replay.status_code == 404 and replay.json()["error"]["param"] == "response_id"
        bad = client.post(
            f"{base}/responses", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
        put = client.put(f"{base}/responses", json={})
        assert put.status_code == 405
        assert put.json()["error"]["message"] == "Method PUT is not allowed for /v1/responses."
        nested = client.get(f"{base}/responses/a/b")
        assert (
            nested.status_code == 404
            and nested.json()["error"]["message"] == "Invalid URL (GET /v1/responses/a/b)"
        )
        created = client.post(f"{base}/responses", json={"model": "q", "input": "hi"}).json()
        items = client.get(f"{base}/responses/{created['id']}/input_items")
        assert items.status_code == 200 and items.json()["data"][0]["content"][0]["text"] == "hi"
        assert client.delete(f"{base}/responses/{created['id']}").json()["deleted"] is True


def test_metrics_count_the_hot_routes(memory_gateway: Gateway) -> None:
    base = memory_gateway.base_url
    with httpx.Client(timeout=10) as client:
        created = client.post(f"{base}/responses", json={"model": "q", "input": "hi"}).json()
        client.get(f"{base}/responses/{created['id']}")
        client.get(f"{base}/responses/resp_nope")
        text = client.get(f"{memory_gateway.root_url}/metrics").text
    assert 'gateway_requests_total{method="POST",route="/v1/responses",status="200"} 1.0' in text
    assert 'gateway_requests_total{method="GET",route="/v1/responses/{id}",status="200"} 1.0' in text
    assert 'gateway_requests_total{method="GET",route="/v1/responses/{id}",status="404"} 1.0' in text
    assert 'gateway_request_seconds_count{route="/v1/responses"} 1.0' in text


def test_unexpected_error_is_a_logged_500_counted_as_500(
    memory_gateway: Gateway, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: StreamTranslator, chunk: object) -> list[object]:
        raise RuntimeError("a bug in the translator")

    monkeypatch.setattr(StreamTranslator, "feed", broken)
    caplog.set_level(logging.ERROR)
    # the error is re-raised to uvicorn too (as Starlette's ServerErrorMiddleware does), which closes
    # the connection after the 500: a new connection for each request
    resp = httpx.post(f"{memory_gateway.base_url}/responses", json={"model": "q", "input": "hi"}, timeout=10)
    text = httpx.get(f"{memory_gateway.root_url}/metrics", timeout=10).text
    assert resp.status_code == 500 and resp.json()["error"]["code"] == "internal_error"
    assert 'gateway_requests_total{method="POST",route="/v1/responses",status="500"} 1.0' in text
    handler = [r for r in caplog.records if r.name == "responses_gateway.api" and r.exc_info]
    assert handler, "the error handler logged the traceback"


def test_a_root_path_goes_through_starlette(echo: EchoBackend) -> None:
    """Under a root path (scope path = root path + path) the fast path steps aside; Starlette strips
    the root path and the routes answer as before."""
    settings = gateway_settings(echo.base_url)
    with run_gateway(settings) as gw:
        gw.server.config.root_path = "/gw"  # read per request by uvicorn
        with httpx.Client(timeout=10) as client:
            created = client.post(f"{gw.root_url}/v1/responses", json={"model": "q", "input": "hi"})
            assert created.status_code == 200
            got = client.get(f"{gw.root_url}/v1/responses/{created.json()['id']}")
            assert got.content == created.content
