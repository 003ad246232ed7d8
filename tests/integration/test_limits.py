"""What a request may contain (`limits.*`), id formats checked before any store access, echoed values
cut short, and a backend's completion bounded. Every limit is a 400 naming it and the `param`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from openai import OpenAI

from responses_gateway.config import settings_from_dict
from responses_gateway.ids import new_response_id
from responses_gateway.stores.base import ResponseStore, StoredResponse
from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway, run_gateway

LIMITS = {
    "max_json_depth": 16,
    "max_input_items": 3,
    "max_tools": 2,
    "max_metadata_pairs": 2,
    "max_metadata_key_chars": 8,
    "max_metadata_value_chars": 10,
    "max_output_tokens": 1000,
    "max_completion_bytes": 65536,
}


@pytest.fixture
def limited(echo: EchoBackend) -> Iterator[Gateway]:
    settings = settings_from_dict(
        {
            "backends": [{"name": "echo", "base_url": echo.base_url, "timeout_seconds": 10}],
            "limits": LIMITS,
        }
    )
    with run_gateway(settings) as gw:
        yield gw


def _post(gw: Gateway, body: dict[str, Any] | bytes) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    return httpx.post(f"{gw.base_url}/responses", content=content, headers=headers, timeout=30)


def _error(resp: httpx.Response, status: int = 400) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    error: dict[str, Any] = resp.json()["error"]
    assert error["type"] == "invalid_request_error"
    return error


def _fn(name: str) -> dict[str, Any]:
    return {"type": "function", "name": name, "parameters": {"type": "object", "properties": {}}}


@pytest.mark.parametrize(
    ("patch", "param", "words"),
    [
        ({"input": [{"role": "user", "content": "x"}] * 4}, "input", "at most 3 items"),
        ({"tools": [_fn("a"), _fn("b"), _fn("c")]}, "tools", "at most 2 tools"),
        ({"metadata": {"a": "1", "b": "2", "c": "3"}}, "metadata", "at most 2 key-value pairs"),
        ({"metadata": {"k" * 9: "v"}}, "metadata", "keys are at most 8 characters"),
        ({"metadata": {"k": "v" * 11}}, "metadata.k", "values are at most 10 characters"),
        ({"max_output_tokens": 1001}, "max_output_tokens", "between 1 and 1000, got 1001"),
        ({"max_output_tokens": 0}, "max_output_tokens", "between 1 and 1000, got 0"),
    ],
)
def test_each_limit_is_a_400_naming_it(
    limited: Gateway, patch: dict[str, Any], param: str, words: str
) -> None:
    error = _error(_post(limited, {"model": "m", "input": "hi", **patch}))
    assert error["param"] == param and words in error["message"], error


def test_just_within_the_limits_is_served(limited: Gateway) -> None:
    body = {
        "model": "m",
        "input": [{"role": "user", "content": "x"}] * 3,
        "tools": [_fn("a"), _fn("b")],
        "metadata": {"k" * 8: "v" * 10, "b": "2"},
        "max_output_tokens": 1000,
    }
    assert _post(limited, body).status_code == 200


def test_json_depth(limited: Gateway) -> None:
    """16 levels pass, 17 are a 400 naming the limit; 100,000 are a quick 400, never a 500."""
    ok: Any = "x"
    for _ in range(12):  # {"tools": [{"parameters": {"a": <12 lists>}}]}: 16 levels in all
        ok = [ok]
    body = {
        "model": "m",
        "input": "hi",
        "tools": [{"type": "function", "name": "f", "parameters": {"a": ok}}],
    }
    assert _post(limited, body).status_code == 200
    body["tools"][0]["parameters"] = {"a": [ok]}
    error = _error(_post(limited, body))
    assert "deeper than 16 levels" in error["message"] and error["code"] == "json_too_deep"
    for raw in (
        b"[" * 100_000 + b"]" * 100_000,
        b'{"model":"m","input":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ):
        started = time.monotonic()
        error = _error(_post(limited, raw))
        assert time.monotonic() - started < 2 and "deeper than 16 levels" in error["message"]


def test_a_huge_id_is_echoed_cut_short(limited: Gateway) -> None:
    huge = "resp_" + "z" * (8 * 1024 * 1024)
    error = _error(_post(limited, {"model": "m", "input": "hi", "previous_response_id": huge}))
    assert error["code"] == "previous_response_not_found"
    assert len(error["message"]) < 150 and "…" in error["message"]
    named = {"type": "function", "name": "f" * 100_000}
    error = _error(_post(limited, {"model": "m", "input": "hi", "tool_choice": named}))
    assert error["param"] == "tool_choice" and len(error["message"]) < 150
    long_key = {"k" * 100_000: "v"}
    assert len(_error(_post(limited, {"model": "m", "input": "hi", "metadata": long_key}))["message"]) < 200


# -- ids checked before any store access ---------------------------------------------------------


class CountingStore:
    """The app's store, counting every call made to it."""

    def __init__(self, inner: ResponseStore) -> None:
        self.inner = inner
        self.backend_name = inner.backend_name
        self.calls: list[str] = []

    async def put(self, record: StoredResponse) -> None:
        self.calls.append("put")
        await self.inner.put(record)

    async def get(self, response_id: str, *, owner: str = "") -> StoredResponse | None:
        self.calls.append("get")
        return await self.inner.get(response_id, owner=owner)

    async def get_history(self, response_id: str, *, owner: str = "") -> list[bytes] | None:
        self.calls.append("get_history")
        return await self.inner.get_history(response_id, owner=owner)

    async def delete(self, response_id: str, *, owner: str = "") -> bool:
        self.calls.append("delete")
        return await self.inner.delete(response_id, owner=owner)

    async def get_item(self, item_id: str, *, owner: str = "") -> bytes | None:
        self.calls.append("get_item")
        return await self.inner.get_item(item_id, owner=owner)

    async def ping(self) -> None:
        await self.inner.ping()

    async def aclose(self) -> None:
        await self.inner.aclose()


def _count_store_calls(gw: Gateway) -> CountingStore:
    service = gw.server.config.app.state.gateway.service
    counting = CountingStore(service.store)
    service.store = counting
    return counting


BAD_IDS = [
    "resp_nope",
    "resp_" + "A" * 48,  # upper-case hex: not ours
    new_response_id() + "\n",  # a trailing newline must not slip through a `$`
    "resp_{x}:" + "0" * 40,  # would move a Redis key to another hash slot
    "resp_..%2F..%2Fetc",
    "resp_" + "0" * 10_000,
]


def _strip_id(message: str) -> str:
    return message.split("'")[0] + message.rsplit("'", 1)[-1]


@pytest.mark.parametrize("bad", BAD_IDS, ids=range(len(BAD_IDS)))
def test_bad_ids_answer_as_unknown_ids_without_a_store_call(gateway: Gateway, bad: str) -> None:
    store = _count_store_calls(gateway)
    unknown = new_response_id()
    base = gateway.base_url
    with httpx.Client(timeout=10) as client:

        def answers(rid: str) -> list[tuple[int, Any, Any, str]]:
            url = f"{base}/responses/{quote(rid, safe='')}"
            replies = [
                client.get(url),
                client.delete(url),
                client.get(f"{url}/input_items"),
                client.post(
                    f"{base}/responses", json={"model": "m", "input": "x", "previous_response_id": rid}
                ),
            ]
            return [
                (
                    r.status_code,
                    r.json()["error"]["param"],
                    r.json()["error"]["code"],
                    _strip_id(r.json()["error"]["message"]),
                )
                for r in replies
            ]

        expected = answers(unknown)
        assert [a[0] for a in expected] == [404, 404, 404, 400]
        store.calls.clear()
        assert answers(bad) == expected
        assert store.calls == [], store.calls


def test_bad_item_references_and_after_make_no_store_call(gateway: Gateway) -> None:
    client = OpenAI(base_url=gateway.base_url, api_key="x", max_retries=0)
    first = client.responses.create(model="m", input="one")
    store = _count_store_calls(gateway)
    with httpx.Client(timeout=10) as http:
        for ref in ("msg_nope", "x" * 10_000, "msg_" + "g" * 52):
            r = http.post(
                f"{gateway.base_url}/responses",
                json={"model": "m", "input": [{"type": "item_reference", "id": ref}]},
            )
            error = _error(r)
            assert error["param"] == "input[0].id" and "not found" in error["message"]
            assert len(error["message"]) < 150
        assert store.calls == []
        url = f"{gateway.base_url}/responses/{first.id}/input_items"
        for after in ("has space", "x" * 300, "\u00e9t\u00e9"):
            error = _error(http.get(url, params={"after": after}))
            assert error["param"] == "after" and "not found" in error["message"]
        assert store.calls == []
        # a well-formed reference still works (one store call)
        item_id = first.output[0].id
        r = http.post(f"{gateway.base_url}/responses", json={"model": "m", "input": [{"id": item_id}]})
        assert r.status_code == 200 and store.calls[:1] == ["get_item"]


# -- a backend's completion is bounded ------------------------------------------------------------


def test_a_huge_completion_is_cut_and_stored_incomplete(limited: Gateway, echo: EchoBackend) -> None:
    """Beyond limits.max_completion_bytes the backend is left (its connection closed) and the
    response settles `incomplete` with reason `max_output_tokens`, stored, found by GET."""
    client = OpenAI(base_url=limited.base_url, api_key="x", max_retries=0)
    big = "[big:30000000]"  # 30 MB: far more than socket buffers hold, so a stop is seen
    r = client.responses.create(model="m", input=big)
    assert r.status == "incomplete" and r.incomplete_details is not None
    assert r.incomplete_details.reason == "max_output_tokens"
    assert 65536 < len(r.output_text) <= 65536 + 16384
    stored = client.responses.retrieve(r.id)
    assert stored.status == "incomplete" and len(stored.output_text) == len(r.output_text)
    echo.wait_for(lambda rs: len(rs) == 1 and rs[0]["disconnected"], timeout=10)

    echo.reset()
    events = list(client.responses.create(model="m", input=big, stream=True))
    final = events[-1]
    assert final.type == "response.incomplete" and final.response.status == "incomplete"
    assert client.responses.retrieve(final.response.id).status == "incomplete"
    echo.wait_for(lambda rs: len(rs) == 1 and rs[0]["disconnected"], timeout=10)
