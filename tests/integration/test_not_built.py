"""Endpoints this gateway does not have answer 404 `Invalid URL (METHOD path)`, as OpenAI does, also
where the path only matched a route's parameter (`POST /v1/responses/<word>` against
`/v1/responses/{response_id}`); a method a literal route lacks stays a 405."""

from __future__ import annotations

import httpx
import openai
import orjson
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.support.gateway import Gateway


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/responses/not_an_endpoint"),
        ("POST", "/v1/responses/resp_123"),
        ("PUT", "/v1/responses/resp_123/input_items"),
        ("POST", "/v1/responses/resp_123/cancel/now"),
        ("PATCH", "/v1/conversations/conv_1"),
        ("POST", "/v1/embeddings"),
        ("GET", "/v2/responses"),
    ],
)
def test_unknown_endpoint_is_a_404(memory_gateway: Gateway, method: str, path: str) -> None:
    resp = httpx.request(method, f"{memory_gateway.root_url}{path}", json={"model": "m"}, timeout=10)
    assert resp.status_code == 404, resp.text
    assert resp.json() == {
        "error": {
            "message": f"Invalid URL ({method} {path})",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }


def test_method_a_literal_route_lacks_is_a_405(memory_gateway: Gateway) -> None:
    resp = httpx.put(f"{memory_gateway.base_url}/responses", json={}, timeout=10)
    assert resp.status_code == 405
    assert resp.headers["allow"] == "POST"
    assert resp.json()["error"]["message"] == "Method PUT is not allowed for /v1/responses."


def test_openai_sdk_sees_not_found(memory_gateway: Gateway) -> None:
    """The SDKs surface a 404 as NotFoundError (a 405 was a generic APIStatusError)."""
    client = openai.OpenAI(base_url=memory_gateway.base_url, api_key="sk-test", max_retries=0)
    with pytest.raises(openai.NotFoundError) as caught:
        client.post("/responses/not_an_endpoint", body={"model": "m"}, cast_to=object)
    assert caught.value.status_code == 404
    client.close()


@pytest.mark.parametrize("path", ["/v1/not_a_socket", "/v1/responses/resp_1"])
def test_websocket_on_an_unknown_path_is_a_404(memory_gateway: Gateway, path: str) -> None:
    """An upgrade no WebSocket route takes gets the HTTP 404 of an unknown URL (not a bare 403)."""
    url = memory_gateway.root_url.replace("http://", "ws://") + path
    with pytest.raises(InvalidStatus) as caught:
        connect(url, open_timeout=10)
    response = caught.value.response
    assert response.status_code == 404
    error = orjson.loads(response.body)["error"]
    assert error["message"].startswith("Invalid URL (") and path in error["message"]
    assert error["type"] == "invalid_request_error"
