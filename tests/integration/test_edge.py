"""The browser-facing checks (api/edge.py): a web page cannot drive a local gateway.

A page can send a "simple" cross-site POST (text/plain, no preflight) and can reach a loopback
gateway by DNS rebinding (its own name, resolved to 127.0.0.1); it always sends its `Origin`. So: a
POST body must be JSON (415), the Host must be a name of the gateway (400), and an Origin must be
allowed (403); CORS is off unless configured, and then answers for exactly those origins."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from responses_gateway.config import settings_from_dict
from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway, run_gateway

APP = "https://app.example"
BODY = b'{"model": "echo", "input": "hi"}'


def _gateway(backend_url: str, **server: Any) -> Any:
    backend = {"name": "echo", "base_url": backend_url, "models": ["*"], "timeout_seconds": 10}
    return run_gateway(settings_from_dict({"backends": [backend], "server": server}))


@pytest.fixture
def cors_gateway(echo: EchoBackend) -> Iterator[Gateway]:
    with _gateway(echo.base_url, cors_allowed_origins=[APP]) as gw:
        yield gw


def _post(
    gw: Gateway, path: str, content_type: str | None, body: bytes = BODY, **headers: str
) -> httpx.Response:
    if content_type is not None:
        headers["Content-Type"] = content_type
    return httpx.post(gw.base_url + path, content=body, headers=headers, timeout=10)


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=latin-1",
        "application/jsonx",
    ],
)
@pytest.mark.parametrize("path", ["/responses", "/chat/completions"])
def test_a_post_body_must_be_json(
    memory_gateway: Gateway, echo: EchoBackend, content_type: str | None, path: str
) -> None:
    resp = _post(memory_gateway, path, content_type)
    assert resp.status_code == 415
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "unsupported_media_type"
    assert "Content-Type: application/json" in error["message"]
    assert echo.requests() == []


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", 'Application/JSON;Charset="UTF-8"'],
)
def test_json_content_types_pass(memory_gateway: Gateway, content_type: str) -> None:
    resp = _post(memory_gateway, "/responses", content_type)
    assert resp.status_code == 200, resp.text
    assert resp.json()["output"][0]["content"][0]["text"] == "echo: hi"


def test_an_empty_post_needs_no_content_type(memory_gateway: Gateway) -> None:
    resp = _post(memory_gateway, "/responses", None, body=b"")
    assert resp.status_code == 400  # the body's own error, not 415
    assert resp.json()["error"]["code"] != "unsupported_media_type"


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8801", "127.0.0.1.nip.io", "localhost.evil.example", "10.0.0.1"]
)
@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/health"), ("GET", "/v1/models"), ("POST", "/v1/responses")]
)
def test_host_must_be_a_loopback_name_when_bound_to_loopback(
    memory_gateway: Gateway, echo: EchoBackend, host: str, method: str, path: str
) -> None:
    resp = httpx.request(
        method,
        memory_gateway.root_url + path,
        content=BODY if method == "POST" else None,
        headers={"Host": host, "Content-Type": "application/json"},
        timeout=10,
    )
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["message"].startswith(f"Invalid Host header '{host}'") and error["code"] == "invalid_host"
    assert echo.requests() == []


@pytest.mark.parametrize(
    "host", ["localhost", "LOCALHOST:1", "127.0.0.1", "127.0.0.1:8801", "[::1]", "[::1]:8801"]
)
def test_loopback_names_pass_with_any_port(memory_gateway: Gateway, host: str) -> None:
    assert (
        httpx.get(f"{memory_gateway.root_url}/health", headers={"Host": host}, timeout=5).status_code == 200
    )


def test_a_long_host_is_cut_in_the_message(memory_gateway: Gateway) -> None:
    host = "a" * 5000 + ".example"
    resp = httpx.get(f"{memory_gateway.root_url}/health", headers={"Host": host}, timeout=5)
    assert resp.status_code == 400 and len(resp.text) < 600


def test_allowed_hosts_replace_the_default(echo: EchoBackend) -> None:
    with _gateway(echo.base_url, allowed_hosts=["gw.example", "::1"]) as gw:
        ok = {"gw.example", "GW.example:443", "[::1]:1"}
        for host in ok | {"localhost", "127.0.0.1:1", "other.example"}:
            status = httpx.get(f"{gw.root_url}/health", headers={"Host": host}, timeout=5).status_code
            assert status == (200 if host in ok else 400), host


def test_any_host_when_bound_to_a_non_loopback_address(echo: EchoBackend) -> None:
    # server.host is what the gateway believes it is bound to; the test server still listens on 127.0.0.1
    with _gateway(echo.base_url, host="0.0.0.0", allow_unauthenticated=True) as gw:
        assert (
            httpx.get(f"{gw.root_url}/health", headers={"Host": "gw.example"}, timeout=5).status_code == 200
        )
    with _gateway(echo.base_url, host="0.0.0.0", allowed_hosts=["*"]) as gw:
        assert (
            httpx.get(f"{gw.root_url}/health", headers={"Host": "gw.example"}, timeout=5).status_code == 200
        )


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://127.0.0.1:8801", APP + ".evil"])
def test_a_browser_origin_is_refused_when_cors_is_off(
    memory_gateway: Gateway, echo: EchoBackend, origin: str
) -> None:
    for method, path in (("POST", "/v1/responses"), ("GET", "/v1/models"), ("GET", "/health")):
        resp = httpx.request(
            method,
            memory_gateway.root_url + path,
            content=BODY if method == "POST" else None,
            headers={"Origin": origin, "Content-Type": "application/json"},
            timeout=10,
        )
        assert resp.status_code == 403, resp.text
        error = resp.json()["error"]
        assert error["code"] == "origin_not_allowed" and "server.cors_allowed_origins" in error["message"]
        assert "access-control-allow-origin" not in resp.headers
    preflight = httpx.options(
        f"{memory_gateway.base_url}/responses",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
        timeout=5,
    )
    assert preflight.status_code == 403 and "access-control-allow-origin" not in preflight.headers
    assert echo.requests() == []


def test_the_probe_attack_a_simple_cross_site_post(memory_gateway: Gateway, echo: EchoBackend) -> None:
    """What a page's `fetch(url, {method: "POST", mode: "no-cors", body})` sends: refused twice over."""
    page = {"Origin": "https://evil.example", "Content-Type": "text/plain;charset=UTF-8"}
    assert _post(memory_gateway, "/responses", None, **page).status_code == 403
    rebound = {**page, "Host": "evil.example:8801"}
    assert _post(memory_gateway, "/responses", None, **rebound).status_code == 400
    assert echo.requests() == []


def test_cors_preflight_for_an_allowed_origin(cors_gateway: Gateway) -> None:
    resp = httpx.options(
        f"{cors_gateway.base_url}/responses",
        headers={
            "Origin": APP,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, x-stainless-lang",
        },
        timeout=5,
    )
    assert resp.status_code == 200
    assert resp.headers["access-control-allow-origin"] == APP
    assert set(resp.headers["access-control-allow-methods"].split(", ")) == {
        "GET",
        "POST",
        "DELETE",
        "OPTIONS",
    }
    assert resp.headers["access-control-allow-headers"] == "authorization, content-type, x-stainless-lang"
    assert "Origin" in resp.headers["vary"]


@pytest.mark.parametrize(("method", "headers"), [("PUT", ""), ("POST", "x-evil"), ("POST", "cookie")])
def test_cors_preflight_refuses_other_methods_and_headers(
    cors_gateway: Gateway, method: str, headers: str
) -> None:
    resp = httpx.options(
        f"{cors_gateway.base_url}/responses",
        headers={
            "Origin": APP,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers,
        },
        timeout=5,
    )
    assert resp.status_code == 400 and "access-control-allow-origin" not in resp.headers


def test_cors_answers_carry_the_allowed_origin(cors_gateway: Gateway) -> None:
    headers = {"Origin": APP, "Content-Type": "application/json"}
    plain = httpx.post(f"{cors_gateway.base_url}/responses", content=BODY, headers=headers, timeout=10)
    assert plain.status_code == 200 and plain.headers["access-control-allow-origin"] == APP
    rid = plain.json()["id"]
    got = httpx.get(f"{cors_gateway.base_url}/responses/{rid}", headers=headers, timeout=10)  # the hot route
    assert got.headers["access-control-allow-origin"] == APP
    items = httpx.get(f"{cors_gateway.base_url}/responses/{rid}/input_items", headers=headers, timeout=10)
    assert items.status_code == 200 and items.headers["access-control-allow-origin"] == APP
    body = b'{"model": "echo", "input": "hi", "stream": true}'
    with httpx.stream(
        "POST", f"{cors_gateway.base_url}/responses", content=body, headers=headers, timeout=10
    ) as s:
        assert s.headers["access-control-allow-origin"] == APP
        assert "response.completed" in s.read().decode()
    other = httpx.get(
        f"{cors_gateway.root_url}/health", headers={"Origin": "https://evil.example"}, timeout=5
    )
    assert other.status_code == 403
    without = httpx.get(f"{cors_gateway.root_url}/health", timeout=5)
    assert "access-control-allow-origin" not in without.headers


def test_edge_answers_are_counted(memory_gateway: Gateway) -> None:
    _post(memory_gateway, "/responses", "text/plain")
    httpx.get(f"{memory_gateway.root_url}/health", headers={"Origin": "https://evil.example"}, timeout=5)
    text = httpx.get(f"{memory_gateway.root_url}/metrics", timeout=5).text
    assert 'gateway_requests_total{method="POST",route="/v1/responses",status="415"} 1.0' in text
    assert 'gateway_requests_total{method="GET",route="/health",status="403"} 1.0' in text
