"""The store contract (stores/base.py's docstring), run against every backend through `store`."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from responses_gateway.ids import INPUT_INDEX_BASE, item_id, new_response_id
from responses_gateway.stores.base import ResponseStore, StoredResponse
from tests.stores.conftest import MakeStore
from tests.stores.records import light, make_record, put_chain


def _ids(chain: list[StoredResponse] | None) -> list[str]:
    assert chain is not None
    return [r.id for r in chain]


async def test_put_get_round_trip(store: ResponseStore) -> None:
    record = make_record(owner="a")
    record.extra = {"model_backend": "b1", "n": 3}
    await store.put(record)
    assert await store.get(record.id, owner="a") == record


async def test_unknown_id_is_none(store: ResponseStore) -> None:
    unknown = new_response_id()
    assert await store.get(unknown) is None
    assert await store.get_chain(unknown) is None
    assert await store.get_item(item_id("msg", unknown, 0)) is None
    assert await store.delete(unknown) is False


async def test_get_item_of_foreign_id_is_none(store: ResponseStore) -> None:
    assert await store.get_item("msg_abc") is None
    assert await store.get_item("not an id") is None


@pytest.mark.parametrize("depth", [1, 3, 1000])
async def test_get_chain_oldest_first(store: ResponseStore, depth: int) -> None:
    chain = await put_chain(store, depth)
    got = await store.get_chain(chain[-1].id)
    assert got == light(chain)
    assert got[0].input_items[0]["content"][0]["text"] == "turn 0"


async def test_get_chain_of_a_middle_turn_ends_there(store: ResponseStore) -> None:
    chain = await put_chain(store, 5)
    assert _ids(await store.get_chain(chain[2].id)) == _ids(chain[:3])


async def test_branches_see_only_their_own_history(store: ResponseStore) -> None:
    root = make_record()
    left, right = make_record(root, text="left"), make_record(root, text="right")
    left2 = make_record(left)
    for record in (root, left, right, left2):
        await store.put(record)
    assert _ids(await store.get_chain(left2.id)) == [root.id, left.id, left2.id]
    assert _ids(await store.get_chain(right.id)) == [root.id, right.id]


async def test_delete(store: ResponseStore) -> None:
    record = make_record()
    await store.put(record)
    assert await store.delete(record.id) is True
    assert await store.get(record.id) is None
    assert await store.get_chain(record.id) is None
    assert await store.get_item(record.output_items[0]["id"]) is None
    assert await store.delete(record.id) is False


async def test_deleted_turn_drops_out_of_a_childs_history(store: ResponseStore) -> None:
    root, middle, child = await put_chain(store, 3)
    assert await store.delete(middle.id) is True
    assert _ids(await store.get_chain(child.id)) == [root.id, child.id]


async def test_owner_isolation(store: ResponseStore) -> None:
    record = make_record(owner="b")
    child = make_record(record, owner="b")
    await store.put(record)
    await store.put(child)
    out_id = record.output_items[0]["id"]
    assert await store.get(record.id, owner="a") is None
    assert await store.get(record.id) is None  # the default owner "" is an owner like any other
    assert await store.get_chain(child.id, owner="a") is None
    assert await store.get_item(out_id, owner="a") is None
    assert await store.delete(record.id, owner="a") is False
    # b's data is untouched by a's attempts
    assert await store.get(record.id, owner="b") == record
    assert _ids(await store.get_chain(child.id, owner="b")) == [record.id, child.id]
    assert await store.get_item(out_id, owner="b") == record.output_items[0]


async def test_history_never_includes_another_owners_turn(store: ResponseStore) -> None:
    foreign = make_record(owner="b")
    mine = make_record(foreign, owner="a")
    await store.put(foreign)
    await store.put(mine)
    assert await store.get(mine.id, owner="a") == mine
    assert await store.get_chain(mine.id, owner="a") is None


async def test_get_item_finds_input_and_output_items(store: ResponseStore) -> None:
    record = make_record()
    await store.put(record)
    out_id = item_id("msg", record.id, 0)
    in_id = item_id("msg", record.id, INPUT_INDEX_BASE)
    assert await store.get_item(out_id) == record.output_items[0]
    assert await store.get_item(in_id) == record.input_items[0]
    assert await store.get_item(item_id("msg", record.id, 7)) is None


async def test_record_expires_after_ttl(make_store: MakeStore) -> None:
    store = await make_store(ttl_seconds=1)
    record = make_record()
    await store.put(record)
    assert await store.get(record.id) == record
    await asyncio.sleep(1.6)
    assert await store.get(record.id) is None
    assert await store.get_chain(record.id) is None
    assert await store.get_item(record.output_items[0]["id"]) is None
    assert await store.delete(record.id) is False


async def test_a_put_extends_its_ancestors(make_store: MakeStore) -> None:
    store = await make_store(ttl_seconds=1)
    root = make_record()
    await store.put(root)
    await asyncio.sleep(0.7)
    child = make_record(root)
    await store.put(child)
    await asyncio.sleep(0.7)  # 1.4 s after the root was written: alive only because the child extended it
    assert await store.get(root.id) == root
    assert await store.get_chain(child.id) == light([root, child])


async def test_put_is_idempotent(store: ResponseStore) -> None:
    chain = await put_chain(store, 3)
    await store.put(chain[1])
    await store.put(chain[2])
    assert await store.get_chain(chain[2].id) == light(chain)
    assert await store.get(chain[1].id) == chain[1]


async def test_concurrent_puts(store: ResponseStore) -> None:
    root = make_record()
    await store.put(root)
    records = [make_record(root if i % 2 else None, text=f"c{i}") for i in range(20)]
    await asyncio.gather(*(store.put(r) for r in records))
    for record in records:
        assert await store.get(record.id) == record
    for record in records[1::2]:
        assert await store.get_chain(record.id) == light([root, record])


async def test_large_and_special_content_round_trips(store: ResponseStore) -> None:
    text = "x" * 16_000
    special = (
        "emoji 😀🎉, \"double\" and 'single' quotes,\nnewlines\r\n\ttabs, back\\slash, ünïcödé, 中文, \u2028"
    )
    record = make_record(text=text)
    record.response["output"][0]["content"][0]["text"] = special
    record.response["metadata"] = {'k"ey': special}
    await store.put(record)
    got = await store.get(record.id)
    assert got == record
    assert got.input_items[0]["content"][0]["text"] == text
    assert got.output_items[0]["content"][0]["text"].encode() == special.encode()
    assert await store.get_chain(record.id) == light([record])


async def test_returned_records_are_copies(store: ResponseStore) -> None:
    record = make_record()
    await store.put(record)
    original = dataclasses.replace(record, input_items=list(record.input_items))
    record.input_items.append({"type": "message"})  # the caller's object is not the stored one
    got = await store.get(record.id)
    assert got is not None
    got.response["output"].clear()
    got.input_items.clear()
    again = await store.get(record.id)
    assert again is not None
    assert again.input_items == original.input_items
    assert again.output_items == original.output_items


async def test_ping(store: ResponseStore) -> None:
    await store.ping()
