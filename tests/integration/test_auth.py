"""Keys and tenants end to end: the gateway in-process, the real echo backend, the openai SDK.

Every `/v1` route needs a key when `auth.api_keys` is set; the key's tenant owns what it stores (proven
on every store backend); the client's gateway key never reaches a backend; no key appears in an
answer, a log line or /metrics."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from responses_gateway.config import Settings, settings_from_dict
from tests.integration.conftest import STORES, store_block
from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway, run_gateway
from tests.support.tenants import KEY_A, KEY_B, assert_isolated, auth_block, client

BACKEND_KEY = "sk-backend-own-key-123456"
METRICS_KEY = "metrics-key-0123456789abcdef"
WRONG_KEY = "rgw-not-a-key-of-this-gateway-0000"


def settings(
    backend_url: str,
    store: dict[str, Any] | None = None,
    *,
    auth: dict[str, Any] | None = None,
    backend_key: str | None = None,
) -> Settings:
    backend: dict[str, Any] = {
        "name": "echo",
        "base_url": backend_url,
        "models": ["*"],
        "timeout_seconds": 10,
    }
    if backend_key is not None:
        backend["api_key"] = backend_key
    data: dict[str, Any] = {"backends": [backend], "response_api": store or {"store_backend": "memory"}}
    if auth is not None:
        data["auth"] = auth
    return settings_from_dict(data)


@pytest.fixture
def authed(echo: EchoBackend) -> Iterator[Gateway]:
    """Memory store, two tenants, /metrics behind its own key, a backend without an api_key."""
    with run_gateway(settings(echo.base_url, auth=auth_block(metrics_key=METRICS_KEY))) as gw:
        yield gw


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


V1_ROUTES = [
    ("POST", "/responses", {"model": "echo", "input": "hi"}),
    ("GET", "/responses/resp_0123", None),
    ("DELETE", "/responses/resp_0123", None),
    ("GET", "/responses/resp_0123/input_items", None),
    ("POST", "/chat/completions", {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}),
    ("GET", "/models", None),
    ("GET", "/no-such-route", None),
]


@pytest.mark.parametrize(("method", "path", "body"), V1_ROUTES)
def test_every_v1_route_needs_a_key(
    authed: Gateway, echo: EchoBackend, method: str, path: str, body: dict[str, Any] | None
) -> None:
    url = authed.base_url + path
    missing = httpx.request(method, url, json=body, timeout=10)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert missing.json() == {
        "error": {
            "message": "You didn't provide an API key. You need to provide your API key in an Authorization "
            "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    for header in (
        {"Authorization": KEY_A},
        {"Authorization": "Basic " + KEY_A},
        {"Authorization": "Bearer"},
    ):
        assert httpx.request(method, url, json=body, headers=header, timeout=10).status_code == 401
    wrong = httpx.request(method, url, json=body, headers=_bearer(WRONG_KEY), timeout=10)
    assert wrong.status_code == 401
    error = wrong.json()["error"]
    assert error["code"] == "invalid_api_key" and error["type"] == "invalid_request_error"
    fingerprint = hashlib.sha256(WRONG_KEY.encode()).hexdigest()[:8]
    assert fingerprint in error["message"] and WRONG_KEY not in wrong.text and WRONG_KEY[:8] not in wrong.text
    assert echo.requests() == []  # nothing reached the backend
    ok = httpx.request(method, url, json=body, headers=_bearer(KEY_B), timeout=10)
    assert ok.status_code != 401
    ok = httpx.request(method, url, json=body, headers={"Authorization": f"bearer  {KEY_A}"}, timeout=10)
    assert ok.status_code != 401


def test_the_sdk_with_a_key_and_without(authed: Gateway) -> None:
    with pytest.raises(openai.AuthenticationError) as exc:
        client(authed.base_url, WRONG_KEY).responses.create(model="echo", input="hi")
    assert exc.value.status_code == 401 and exc.value.code == "invalid_api_key"
    r = client(authed.base_url, KEY_A).responses.create(model="echo", input="hi")
    assert r.output_text == "echo: hi"
    with client(authed.base_url, KEY_A).responses.stream(model="echo", input="streamed") as stream:
        final = stream.get_final_response()
    assert client(authed.base_url, KEY_A).responses.retrieve(final.id).output_text == "echo: streamed"


def test_health_and_ready_stay_open_metrics_needs_its_key(authed: Gateway) -> None:
    root = authed.root_url
    assert httpx.get(f"{root}/health", timeout=5).status_code == 200
    assert httpx.get(f"{root}/ready", timeout=5).status_code == 200
    document = httpx.get(f"{root}/openapi.json", timeout=5)  # open: it holds no secret
    assert document.status_code == 200
    assert document.json()["paths"]["/v1/responses"]["post"]["security"] == [{"apiKey": []}]
    assert document.json()["paths"]["/metrics"]["get"]["security"] == [{"metricsKey": []}]
    for secret in (KEY_A, KEY_B, METRICS_KEY):
        assert secret not in document.text
    assert httpx.get(f"{root}/metrics", timeout=5).status_code == 401
    assert httpx.get(f"{root}/metrics", headers=_bearer(KEY_A), timeout=5).status_code == 401  # a client key
    client(authed.base_url, KEY_A).responses.create(model="echo", input="hi")
    metrics = httpx.get(f"{root}/metrics", headers=_bearer(METRICS_KEY), timeout=5)
    assert metrics.status_code == 200 and "gateway_requests_total" in metrics.text
    assert 'status="401"' in metrics.text  # the edge's own answers are counted
    for secret in (KEY_A, KEY_B, METRICS_KEY, WRONG_KEY):
        assert secret not in metrics.text


def test_metrics_open_without_a_metrics_key(echo: EchoBackend) -> None:
    with run_gateway(settings(echo.base_url, auth=auth_block())) as gw:
        assert httpx.get(f"{gw.root_url}/metrics", timeout=5).status_code == 200
        assert httpx.get(f"{gw.base_url}/models", timeout=5).status_code == 401


def test_metrics_key_given_as_its_sha256(echo: EchoBackend) -> None:
    digest = hashlib.sha256(METRICS_KEY.encode()).hexdigest()
    with run_gateway(settings(echo.base_url, auth={"metrics_key_sha256": digest})) as gw:
        assert httpx.get(f"{gw.root_url}/metrics", timeout=5).status_code == 401
        assert httpx.get(f"{gw.root_url}/metrics", headers=_bearer(METRICS_KEY), timeout=5).status_code == 200
        assert httpx.get(f"{gw.base_url}/models", timeout=5).status_code == 200  # no api_keys: /v1 is open


@pytest.mark.parametrize("backend_key", [None, BACKEND_KEY])
def test_the_gateway_key_never_reaches_a_backend(echo: EchoBackend, backend_key: str | None) -> None:
    expected = None if backend_key is None else f"Bearer {backend_key}"
    with run_gateway(settings(echo.base_url, auth=auth_block(), backend_key=backend_key)) as gw:
        sdk = client(gw.base_url, KEY_A)
        sdk.responses.create(model="echo", input="plain")
        with sdk.responses.stream(model="echo", input="streamed") as stream:
            stream.get_final_response()
        sdk.chat.completions.create(model="echo", messages=[{"role": "user", "content": "pass-through"}])
        sdk.models.list()
    seen = echo.requests()
    assert {r["path"] for r in seen} == {"/v1/chat/completions", "/v1/models"} and len(seen) == 4
    assert [r["authorization"] for r in seen] == [expected] * 4


def test_without_auth_the_client_key_is_passed_through_as_before(echo: EchoBackend) -> None:
    with run_gateway(settings(echo.base_url)) as gw:
        sdk = client(gw.base_url, "sk-client-own-key")
        sdk.responses.create(model="echo", input="plain")
        sdk.chat.completions.create(model="echo", messages=[{"role": "user", "content": "pass-through"}])
        sdk.models.list()
    assert [r["authorization"] for r in echo.requests()] == ["Bearer sk-client-own-key"] * 3


def test_keys_never_in_logs(authed: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    httpx.get(f"{authed.base_url}/models", headers=_bearer(WRONG_KEY), timeout=5)
    with pytest.raises(openai.InternalServerError):
        client(authed.base_url, KEY_A).responses.create(model="echo", input="[fail:500]")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert hashlib.sha256(WRONG_KEY.encode()).hexdigest()[:8] in text  # the rejection is logged...
    for secret in (KEY_A, KEY_B, METRICS_KEY, WRONG_KEY, WRONG_KEY[4:16]):
        assert secret not in text  # ...without the key


def test_a_duplicate_key_is_a_config_error(echo: EchoBackend) -> None:
    from responses_gateway.app import create_app
    from responses_gateway.errors import ConfigError

    digest = hashlib.sha256(KEY_A.encode()).hexdigest()
    auth = {"api_keys": [{"tenant": "a", "key": KEY_A}, {"tenant": "b", "key_sha256": digest}]}
    with pytest.raises(ConfigError, match=r"auth.api_keys\[1\]: the same key as auth.api_keys\[0\]"):
        create_app(settings(echo.base_url, auth=auth))


@pytest.mark.parametrize("kind", STORES)
def test_tenants_are_isolated_on_every_store(
    kind: str, request: pytest.FixtureRequest, echo: EchoBackend, tmp_path: Path
) -> None:
    store = store_block(kind, request, tmp_path)
    with run_gateway(settings(echo.base_url, store, auth=auth_block())) as gw:
        assert_isolated(gw.base_url, gw.base_url)
