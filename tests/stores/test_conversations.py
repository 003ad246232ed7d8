"""The conversation store contract (stores/conversations.py's docstring), on every backend."""

from __future__ import annotations

import asyncio
import time

import orjson

from responses_gateway.ids import new_conversation_id, new_conversation_item_id
from responses_gateway.stores.base import ResponseStore
from responses_gateway.stores.conversations import ConversationItem, StoredConversation
from tests.stores.conftest import MakeStore


def _conv(owner: str = "a", metadata: dict[str, str] | None = None) -> StoredConversation:
    return StoredConversation(new_conversation_id(), owner, int(time.time()), orjson.dumps(metadata or {}))


def _items(n: int, tag: str = "m") -> list[ConversationItem]:
    out = []
    for i in range(n):
        item_id = new_conversation_item_id("msg")
        out.append((item_id, orjson.dumps({"id": item_id, "type": "message", "text": f"{tag}{i}"})))
    return out


async def test_create_get_update_delete(store: ResponseStore) -> None:
    convs = store.conversations
    conv = _conv(metadata={"k": "v"})
    await convs.create(conv, [])
    assert await convs.get(conv.id, owner="a") == conv
    updated = await convs.update(conv.id, orjson.dumps({"k": "w"}), owner="a")
    assert updated == StoredConversation(conv.id, "a", conv.created_at, orjson.dumps({"k": "w"}))
    assert await convs.get(conv.id, owner="a") == updated
    assert await convs.delete(conv.id, owner="a") is True
    assert await convs.get(conv.id, owner="a") is None
    assert await convs.delete(conv.id, owner="a") is False
    assert await convs.list_items(conv.id, owner="a", limit=10) is None
    assert await convs.append(conv.id, _items(1), owner="a") is False


async def test_unknown_conversation(store: ResponseStore) -> None:
    convs, unknown = store.conversations, new_conversation_id()
    assert await convs.get(unknown, owner="a") is None
    assert await convs.update(unknown, b"{}", owner="a") is None
    assert await convs.delete(unknown, owner="a") is False
    assert await convs.append(unknown, _items(1), owner="a") is False
    assert await convs.list_items(unknown, owner="a", limit=None) is None
    assert await convs.get_item(unknown, "msg_x", owner="a") is None
    assert await convs.delete_item(unknown, "msg_x", owner="a") is False


async def test_initial_items_then_appends_in_order(store: ResponseStore) -> None:
    convs = store.conversations
    conv = _conv()
    first, second = _items(3, "a"), _items(2, "b")
    await convs.create(conv, first)
    assert await convs.append(conv.id, second, owner="a") is True
    page = await convs.list_items(conv.id, owner="a", limit=None)
    assert page is not None and page.items == first + second and page.has_more is False
    desc = await convs.list_items(conv.id, owner="a", limit=None, order="desc")
    assert desc is not None and desc.items == (first + second)[::-1]


async def test_pages_asc_and_desc_with_after(store: ResponseStore) -> None:
    convs = store.conversations
    conv = _conv()
    items = _items(7)
    await convs.create(conv, items)
    for order, expected in (("asc", items), ("desc", items[::-1])):
        got: list[ConversationItem] = []
        after = None
        while True:
            page = await convs.list_items(conv.id, owner="a", limit=3, order=order, after=after)  # type: ignore[arg-type]
            assert page is not None and not page.after_missing
            got += page.items
            if not page.has_more:
                break
            assert len(page.items) == 3
            after = page.items[-1][0]
        assert got == expected
    end = await convs.list_items(conv.id, owner="a", limit=3, after=items[-1][0])
    assert end is not None and end.items == [] and end.has_more is False
    missing = await convs.list_items(conv.id, owner="a", limit=3, after="msg_nope")
    assert missing is not None and missing.after_missing and missing.items == []


async def test_get_and_delete_item(store: ResponseStore) -> None:
    convs = store.conversations
    conv = _conv()
    items = _items(3)
    await convs.create(conv, items)
    assert orjson.loads(await convs.get_item(conv.id, items[1][0], owner="a") or b"") == orjson.loads(
        items[1][1]
    )
    assert await convs.get_item(conv.id, "msg_unknown", owner="a") is None
    assert await convs.delete_item(conv.id, items[1][0], owner="a") is True
    assert await convs.delete_item(conv.id, items[1][0], owner="a") is False
    assert await convs.get_item(conv.id, items[1][0], owner="a") is None
    page = await convs.list_items(conv.id, owner="a", limit=10)
    assert page is not None and page.items == [items[0], items[2]]
    # a deleted item is no cursor any more; the ones around it still are
    page = await convs.list_items(conv.id, owner="a", limit=10, after=items[0][0])
    assert page is not None and page.items == [items[2]]
    more = _items(1)
    await convs.append(conv.id, more, owner="a")
    page = await convs.list_items(conv.id, owner="a", limit=10, order="desc")
    assert page is not None and page.items == [more[0], items[2], items[0]]


async def test_owner_isolation(store: ResponseStore) -> None:
    convs = store.conversations
    conv = _conv(owner="b")
    items = _items(2)
    await convs.create(conv, items)
    assert await convs.get(conv.id, owner="a") is None
    assert await convs.get(conv.id, owner="") is None
    assert await convs.update(conv.id, b'{"x":"y"}', owner="a") is None
    assert await convs.append(conv.id, _items(1), owner="a") is False
    assert await convs.list_items(conv.id, owner="a", limit=10) is None
    assert await convs.get_item(conv.id, items[0][0], owner="a") is None
    assert await convs.delete_item(conv.id, items[0][0], owner="a") is False
    assert await convs.delete(conv.id, owner="a") is False
    # all still there for b
    assert await convs.get(conv.id, owner="b") == conv
    page = await convs.list_items(conv.id, owner="b", limit=10)
    assert page is not None and page.items == items


async def test_concurrent_appends_never_interleave_or_lose(store: ResponseStore) -> None:
    convs = store.conversations
    conv = _conv()
    await convs.create(conv, [])
    batches = [_items(5, f"b{n}-") for n in range(40)]
    results = await asyncio.gather(*(convs.append(conv.id, b, owner="a") for b in batches))
    assert all(results)
    page = await convs.list_items(conv.id, owner="a", limit=None)
    assert page is not None
    got = page.items
    assert len(got) == 200
    # each batch is contiguous and in its own order; every batch is there once
    seen = []
    for start in range(0, 200, 5):
        chunk = got[start : start + 5]
        assert chunk in batches
        seen.append(batches.index(chunk))
    assert sorted(seen) == list(range(40))


async def test_a_long_conversation_pages_at_constant_cost(store: ResponseStore) -> None:
    convs = store.conversations
    conv = _conv()
    await convs.create(conv, [])
    for _ in range(20):
        await convs.append(conv.id, _items(100), owner="a")
    page = await convs.list_items(conv.id, owner="a", limit=20)
    assert page is not None and len(page.items) == 20 and page.has_more
    first = page.items[-1][0]
    page = await convs.list_items(conv.id, owner="a", limit=20, order="desc", after=first)
    assert page is not None and len(page.items) == 19 and not page.has_more


async def test_conversations_do_not_expire_with_ttl_seconds(make_store: MakeStore) -> None:
    store = await make_store(ttl_seconds=1)
    conv = _conv()
    await store.conversations.create(conv, _items(1))
    await asyncio.sleep(1.3)
    assert await store.conversations.get(conv.id, owner="a") == conv


async def test_conversation_ttl_expires_after_the_last_write(make_store: MakeStore) -> None:
    store = await make_store(conversation_ttl_seconds=1)
    convs = store.conversations
    conv, idle = _conv(), _conv()
    await convs.create(conv, _items(1))
    await convs.create(idle, _items(1))
    await asyncio.sleep(0.6)
    assert await convs.append(conv.id, _items(1), owner="a")  # extends it
    await asyncio.sleep(0.6)
    assert await convs.get(idle.id, owner="a") is None
    assert await convs.list_items(idle.id, owner="a", limit=5) is None
    assert await convs.get(conv.id, owner="a") == conv
    page = await convs.list_items(conv.id, owner="a", limit=5)
    assert page is not None and len(page.items) == 2
    await asyncio.sleep(1.2)
    assert await convs.get(conv.id, owner="a") is None
