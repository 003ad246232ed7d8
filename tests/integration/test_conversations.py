"""The Conversations API through HTTP with the official `openai` SDK, on every store backend:
`client.conversations.*`, `client.conversations.items.*`, and `responses.create(conversation=...)`
over several turns (the echo backend shows the history the gateway gave it)."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from responses_gateway.config import settings_from_dict
from responses_gateway.ids import new_conversation_id
from tests.integration.conftest import store_block
from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway, gateway_settings, run_gateway
from tests.support.tenants import KEY_A, KEY_B, auth_block

MSG = {"type": "message", "role": "user", "content": "hello"}


def _client(gw: Gateway, key: str = "sk-test") -> OpenAI:
    return OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)


def _texts(client: OpenAI, cid: str) -> list[str]:
    items = client.conversations.items.list(cid, order="asc", limit=100)
    out = []
    for item in items.data:
        assert item.type == "message"
        out.append(item.content[0].text)  # type: ignore[union-attr]
    return out


def test_conversation_crud_and_items(gateway: Gateway) -> None:
    client = _client(gateway)
    conv = client.conversations.create(
        metadata={"topic": "demo"},
        items=[{"type": "message", "role": "user", "content": f"m{i}"} for i in range(3)],
    )
    assert (
        conv.id.startswith("conv_") and conv.object == "conversation" and conv.metadata == {"topic": "demo"}
    )
    got = client.conversations.retrieve(conv.id)
    assert got.model_dump() == conv.model_dump()
    updated = client.conversations.update(conv.id, metadata={"topic": "other"})
    assert updated.metadata == {"topic": "other"} and updated.created_at == conv.created_at

    added = client.conversations.items.create(
        conv.id,
        items=[{"type": "message", "role": "assistant", "content": "m3"}, {**MSG, "content": "m4"}],
    )
    assert [i.content[0].text for i in added.data] == ["m3", "m4"]  # type: ignore[union-attr]
    assert added.data[0].content[0].type == "output_text"  # type: ignore[union-attr]
    # default order desc, limit 20
    page = client.conversations.items.list(conv.id)
    assert [i.content[0].text for i in page.data] == ["m4", "m3", "m2", "m1", "m0"]  # type: ignore[union-attr]
    assert page.has_more is False and page.first_id == page.data[0].id and page.last_id == page.data[-1].id
    # paging: asc, 2 at a time, by `after`
    first = client.conversations.items.list(conv.id, order="asc", limit=2)
    assert first.has_more is True and len(first.data) == 2
    second = client.conversations.items.list(conv.id, order="asc", limit=2, after=first.last_id)
    assert [i.content[0].text for i in second.data] == ["m2", "m3"]  # type: ignore[union-attr]
    # the SDK's auto-pagination walks every page
    assert len(list(client.conversations.items.list(conv.id, limit=2))) == 5

    item_id = page.data[1].id
    item = client.conversations.items.retrieve(item_id, conversation_id=conv.id)
    assert item.id == item_id and item.content[0].text == "m3"  # type: ignore[union-attr]
    after_delete = client.conversations.items.delete(item_id, conversation_id=conv.id)
    assert after_delete.id == conv.id and after_delete.object == "conversation"
    with pytest.raises(openai.NotFoundError) as exc:
        client.conversations.items.retrieve(item_id, conversation_id=conv.id)
    assert exc.value.body["message"] == f"Item with id '{item_id}' not found."  # type: ignore[index]
    assert _texts(client, conv.id) == ["m0", "m1", "m2", "m4"]

    deleted = client.conversations.delete(conv.id)
    assert deleted.id == conv.id and deleted.deleted is True and deleted.object == "conversation.deleted"
    with pytest.raises(openai.NotFoundError) as exc:
        client.conversations.retrieve(conv.id)
    assert exc.value.body["message"] == f"Conversation with id '{conv.id}' not found."  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.list(conv.id)


def test_bad_requests(gateway: Gateway) -> None:
    client = _client(gateway)
    for bad in ("conv_nope", "not-an-id", new_conversation_id()):
        with pytest.raises(openai.NotFoundError):
            client.conversations.retrieve(bad)
    conv = client.conversations.create()
    assert conv.metadata == {}
    with pytest.raises(openai.BadRequestError) as exc:
        client.conversations.items.create(conv.id, items=[MSG] * 21)  # type: ignore[list-item]
    assert exc.value.param == "items"  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError) as exc:
        client.conversations.update(conv.id, metadata={str(i): "v" for i in range(17)})
    assert exc.value.param == "metadata"  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError) as exc:
        client.conversations.items.list(conv.id, limit=101)
    assert exc.value.param == "limit"  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError) as exc:
        client.conversations.items.list(conv.id, after="msg_unknown")
    assert exc.value.param == "after"  # type: ignore[attr-defined]
    r = httpx.post(f"{gateway.base_url}/conversations/{conv.id}/items", json={"items": [{"type": "bogus"}]})
    assert r.status_code == 400 and r.json()["error"]["param"].startswith("items[0]")


def test_responses_with_a_conversation_over_several_turns(gateway: Gateway, echo: EchoBackend) -> None:
    client = _client(gateway)
    conv = client.conversations.create(items=[{**MSG, "content": "seed"}])
    r1 = client.responses.create(model="qwen3", input="one", conversation=conv.id)
    assert r1.conversation is not None and r1.conversation.id == conv.id
    assert echo.chat_requests()[-1]["body"]["messages"] == [
        {"role": "user", "content": "seed"},
        {"role": "user", "content": "one"},
    ]
    r2 = client.responses.create(model="qwen3", input="two", conversation={"id": conv.id})
    assert r2.output_text == "echo: two"
    stream = client.responses.create(model="qwen3", input="three", conversation=conv.id, stream=True)
    events = list(stream)
    assert events[-1].type == "response.completed"
    assert events[-1].response.conversation.id == conv.id  # type: ignore[union-attr]
    msgs = echo.chat_requests()[-1]["body"]["messages"]
    assert [m["content"] for m in msgs] == ["seed", "one", "echo: one", "two", "echo: two", "three"]
    assert _texts(client, conv.id) == ["seed", "one", "echo: one", "two", "echo: two", "three", "echo: three"]
    # the conversation's items are the responses' own items (same ids)
    items = client.conversations.items.list(conv.id, order="asc").data
    assert items[2].id == r1.output[0].id
    assert client.responses.retrieve(r2.id).conversation.id == conv.id  # type: ignore[union-attr]

    # a failed response appends nothing
    with pytest.raises(openai.InternalServerError):
        client.responses.create(model="qwen3", input="[fail:500] four", conversation=conv.id)
    assert len(_texts(client, conv.id)) == 7
    # ... also when the backend fails mid-stream (the response is stored as failed)
    with pytest.raises(openai.APIStatusError):
        client.responses.create(model="qwen3", input="[die-mid-stream] five six seven", conversation=conv.id)
    broken = client.responses.create(
        model="qwen3", input="[die-mid-stream] eight nine ten", conversation=conv.id, stream=True
    )
    assert [e.type for e in broken][-1] == "response.failed"
    assert len(_texts(client, conv.id)) == 7

    # conversation + previous_response_id: 400 as OpenAI; an unknown conversation: 404
    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.create(model="qwen3", input="x", conversation=conv.id, previous_response_id=r1.id)
    assert exc.value.code == "mutually_exclusive_parameters"
    for unknown in (new_conversation_id(), "conv_nope"):
        with pytest.raises(openai.NotFoundError) as exc:
            client.responses.create(model="qwen3", input="x", conversation=unknown)
        assert exc.value.body["message"] == f"Conversation with id '{unknown}' not found."  # type: ignore[index]


def test_concurrent_turns_on_one_conversation_never_lose_or_interleave(gateway: Gateway) -> None:
    client = _client(gateway)
    conv = client.conversations.create()
    n = 12
    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
        list(
            pool.map(
                lambda i: client.responses.create(model="qwen3", input=f"turn {i}", conversation=conv.id),
                range(n),
            )
        )
    texts = _texts(client, conv.id)
    assert len(texts) == 2 * n
    pairs = [(texts[i], texts[i + 1]) for i in range(0, 2 * n, 2)]
    assert sorted(pairs) == sorted((f"turn {i}", f"echo: turn {i}") for i in range(n))


@pytest.fixture
def tenants_gateway(request: pytest.FixtureRequest, echo: EchoBackend, tmp_path: Path) -> Iterator[Gateway]:
    data: dict[str, Any] = {
        "backends": [{"name": "echo", "base_url": echo.base_url, "models": ["*"], "timeout_seconds": 10}],
        "response_api": store_block(request.param, request, tmp_path),
        "auth": auth_block(),
    }
    with run_gateway(settings_from_dict(data)) as gw:
        yield gw


@pytest.mark.parametrize(
    "tenants_gateway",
    ["memory", pytest.param("redis_cluster", marks=pytest.mark.redis_cluster)],
    indirect=True,
)
def test_another_tenants_conversation_answers_as_unknown(tenants_gateway: Gateway) -> None:
    url = tenants_gateway.base_url
    a, b = _client(tenants_gateway, KEY_A), _client(tenants_gateway, KEY_B)
    conv = a.conversations.create(metadata={"owner": "a"}, items=[{**MSG, "content": "secret"}])
    item_id = a.conversations.items.list(conv.id).data[0].id
    unknown = new_conversation_id()
    hdr = {"Authorization": f"Bearer {KEY_B}"}
    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", "", None),
        ("POST", "", {"metadata": {"x": "y"}}),
        ("DELETE", "", None),
        ("GET", "/items", None),
        ("POST", "/items", {"items": [MSG]}),
        ("GET", f"/items/{item_id}", None),
        ("DELETE", f"/items/{item_id}", None),
    ]
    for method, tail, body in calls:
        theirs = httpx.request(method, f"{url}/conversations/{conv.id}{tail}", json=body, headers=hdr)
        mine = httpx.request(method, f"{url}/conversations/{unknown}{tail}", json=body, headers=hdr)
        assert theirs.status_code == mine.status_code == 404, (method, tail)
        assert theirs.content.replace(conv.id.encode(), b"<id>") == mine.content.replace(
            unknown.encode(), b"<id>"
        )
    with pytest.raises(openai.NotFoundError):
        b.responses.create(model="echo", input="x", conversation=conv.id)
    # nothing of team a's changed
    assert a.conversations.retrieve(conv.id).metadata == {"owner": "a"}
    assert _texts(a, conv.id) == ["secret"]


def test_memory_store_bounds_conversation_bytes(echo: EchoBackend) -> None:
    """`response_api.memory.max_conversation_bytes`: a write one conversation cannot hold is a 400 that
    changes nothing (a response's turn is then not added, the response stands); beyond the bound the
    least recently written conversation is evicted whole."""
    store = {"store_backend": "memory", "memory": {"max_conversation_bytes": 4000}}
    with run_gateway(gateway_settings(echo.base_url, store)) as gw:
        client = _client(gw)
        a = client.conversations.create(items=[{**MSG, "content": "a" * 100}])
        with pytest.raises(openai.BadRequestError) as exc:
            client.conversations.items.create(a.id, items=[{**MSG, "content": "x" * 5000}])
        assert exc.value.status_code == 400 and exc.value.code == "conversation_too_large"
        assert exc.value.param == "items"
        assert "response_api.memory.max_conversation_bytes" in exc.value.message
        with pytest.raises(openai.BadRequestError) as exc:
            client.conversations.create(items=[{**MSG, "content": "x" * 5000}])
        assert exc.value.code == "conversation_too_large"
        # a response whose turn would take the conversation over: answered, but not added
        r = client.responses.create(model="echo", input="y" * 2500, conversation=a.id)
        assert r.output_text == "echo: " + "y" * 2500
        assert client.responses.retrieve(r.id).id == r.id
        assert _texts(client, a.id) == ["a" * 100]

        b = client.conversations.create(items=[{**MSG, "content": "b" * 1200}])
        c = client.conversations.create(items=[{**MSG, "content": "c" * 1200}])
        client.conversations.items.create(a.id, items=[{**MSG, "content": "a2"}])  # a: the most recent
        d = client.conversations.create(items=[{**MSG, "content": "d" * 1200}])
        with pytest.raises(openai.NotFoundError):
            client.conversations.retrieve(b.id)  # the least recently written, evicted whole
        assert _texts(client, a.id) == ["a" * 100, "a2"]
        assert _texts(client, c.id) == ["c" * 1200] and _texts(client, d.id) == ["d" * 1200]
