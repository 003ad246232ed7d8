"""The store contract (stores/base.py's docstring), run against every backend through `store`.

This is the only place a backend's behaviour is specified; backend test modules test only what is
particular to them (files, servers, bounds, failures).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable

import orjson
import pytest

from responses_gateway.ids import INPUT_INDEX_BASE, item_id, new_response_id
from responses_gateway.stores.base import ChainIncomplete, ResponseStore, StoredResponse
from tests.stores.conftest import MakeStore
from tests.stores.records import (
    history,
    input_item,
    join_history,
    make_record,
    output_id,
    output_item,
    put_chain,
)

Lose = Callable[[ResponseStore, list[StoredResponse]], Awaitable[None]]


def _same_json(got: bytes | None, expected: bytes) -> bool:
    return got is not None and orjson.loads(got) == orjson.loads(expected)


async def test_put_get_round_trip(store: ResponseStore) -> None:
    record = make_record(owner="a", metadata={"model_backend": "b1", "n": "3"})
    await store.put(record)
    assert await store.get(record.id, owner="a") == record


async def test_unknown_id_is_none(store: ResponseStore) -> None:
    unknown = new_response_id()
    assert await store.get(unknown) is None
    assert await store.get_history(unknown) is None
    assert await store.get_item(item_id("msg", unknown, 0)) is None
    assert await store.delete(unknown) is False


async def test_get_item_of_foreign_id_is_none(store: ResponseStore) -> None:
    assert await store.get_item("msg_abc") is None
    assert await store.get_item("not an id") is None


@pytest.mark.parametrize("depth", [1, 3, 1000])
async def test_get_history_oldest_first(store: ResponseStore, depth: int) -> None:
    chain = await put_chain(store, depth)
    got = await store.get_history(chain[-1].id)
    assert got == history(chain)
    assert orjson.loads(got[0])[0] == {"role": "user", "content": "turn 0"}
    assert orjson.loads(join_history(got))[-1] == {"role": "assistant", "content": f"echo: turn {depth - 1}"}


async def test_get_history_of_a_middle_turn_ends_there(store: ResponseStore) -> None:
    chain = await put_chain(store, 5)
    assert await store.get_history(chain[2].id) == history(chain[:3])


async def test_branches_see_only_their_own_history(store: ResponseStore) -> None:
    root = make_record()
    left, right = make_record(root, text="left"), make_record(root, text="right")
    left2 = make_record(left)
    for record in (root, left, right, left2):
        await store.put(record)
    assert await store.get_history(left2.id) == history([root, left, left2])
    assert await store.get_history(right.id) == history([root, right])


async def test_branching_from_the_middle_of_a_deep_chain(store: ResponseStore) -> None:
    chain = await put_chain(store, 200)
    branch = await put_chain(store, 3, parent=chain[99])
    twig = await put_chain(store, 2, parent=branch[0])  # a branch of the branch
    more = await put_chain(store, 2, parent=chain[-1])  # the trunk goes on
    assert await store.get_history(branch[-1].id) == history([*chain[:100], *branch])
    assert await store.get_history(twig[-1].id) == history([*chain[:100], branch[0], *twig])
    assert await store.get_history(branch[0].id) == history([*chain[:100], branch[0]])
    assert await store.get_history(more[-1].id) == history([*chain, *more])
    assert await store.get_history(chain[99].id) == history(chain[:100])
    assert await store.get_history(chain[0].id) == history(chain[:1])


async def test_delete(store: ResponseStore) -> None:
    record = make_record()
    await store.put(record)
    assert await store.delete(record.id) is True
    assert await store.get(record.id) is None
    assert await store.get_history(record.id) is None
    assert await store.get_item(output_id(record)) is None
    assert await store.delete(record.id) is False


async def test_deleted_turn_drops_out_of_a_childs_history(store: ResponseStore) -> None:
    root, middle, child = await put_chain(store, 3)
    assert await store.delete(middle.id) is True
    assert await store.get_history(child.id) == history([root, child])


async def test_a_deleted_middle_turn_of_a_deep_chain_drops_out(store: ResponseStore) -> None:
    chain = await put_chain(store, 50)
    branch = await put_chain(store, 2, parent=chain[30])
    for turn in (chain[10], chain[40]):
        assert await store.delete(turn.id) is True
    kept = [r for r in chain if r not in (chain[10], chain[40])]
    assert await store.get_history(chain[-1].id) == history(kept)
    assert await store.get_history(branch[-1].id) == history([*kept[:30], *branch])
    assert await store.get_history(chain[10].id) is None


async def test_branching_from_a_tombstones_child(store: ResponseStore) -> None:
    root, middle, child = await put_chain(store, 3)
    sibling = make_record(middle, text="sibling")
    await store.put(sibling)
    assert await store.delete(middle.id) is True
    left = make_record(child, text="left")
    right = make_record(child, text="right")
    await store.put(left)
    await store.put(right)
    assert await store.get_history(left.id) == history([root, child, left])
    assert await store.get_history(right.id) == history([root, child, right])
    assert await store.get_history(sibling.id) == history([root, sibling])


async def test_owner_isolation(store: ResponseStore) -> None:
    record = make_record(owner="b")
    child = make_record(record, owner="b")
    await store.put(record)
    await store.put(child)
    out_id = output_id(record)
    assert await store.get(record.id, owner="a") is None
    assert await store.get(record.id) is None  # the default owner "" is an owner like any other
    assert await store.get_history(child.id, owner="a") is None
    assert await store.get_item(out_id, owner="a") is None
    assert await store.delete(record.id, owner="a") is False
    # b's data is untouched by a's attempts
    assert await store.get(record.id, owner="b") == record
    assert await store.get_history(child.id, owner="b") == history([record, child])
    assert _same_json(await store.get_item(out_id, owner="b"), output_item(record))


async def test_history_never_includes_another_owners_turn(store: ResponseStore) -> None:
    foreign = make_record(owner="b")
    mine = make_record(foreign, owner="a")
    await store.put(foreign)
    await store.put(mine)
    assert await store.get(mine.id, owner="a") == mine
    assert await store.get_history(mine.id, owner="a") is None
    mine2 = make_record(mine, owner="a")  # deeper turns of a's do not make it any better
    await store.put(mine2)
    assert await store.get_history(mine2.id, owner="a") is None
    assert await store.get_history(foreign.id, owner="b") == history([foreign])


async def test_get_item_finds_input_and_output_items(store: ResponseStore) -> None:
    record = make_record()
    await store.put(record)
    out_id = item_id("msg", record.id, 0)
    in_id = item_id("msg", record.id, INPUT_INDEX_BASE)
    assert _same_json(await store.get_item(out_id), output_item(record))
    assert _same_json(await store.get_item(in_id), input_item(record))
    assert await store.get_item(item_id("msg", record.id, 7)) is None


async def test_a_lost_ancestor_makes_history_incomplete(store: ResponseStore, lose: Lose) -> None:
    chain = await put_chain(store, 4)
    head = chain[-1]
    await lose(store, chain)  # as eviction or expiry would: not a delete
    assert await store.get(head.id) == head
    with pytest.raises(ChainIncomplete) as info:
        await store.get_history(head.id)
    assert info.value.response_id == head.id
    assert info.value.missing_id in {r.id for r in chain[:-1]}


async def test_a_lost_ancestor_of_a_branch_makes_its_history_incomplete(
    store: ResponseStore, lose: Lose
) -> None:
    trunk = await put_chain(store, 5)
    branch = await put_chain(store, 3, parent=trunk[1])
    await lose(store, [*trunk[:2], *branch])
    assert await store.get(branch[-1].id) == branch[-1]
    with pytest.raises(ChainIncomplete) as info:
        await store.get_history(branch[-1].id)
    assert info.value.missing_id in {r.id for r in [*trunk[:2], *branch[:-1]]}


async def test_a_parent_expired_before_its_child_was_put(make_store: MakeStore) -> None:
    store = await make_store(ttl_seconds=1)
    root = make_record()
    await store.put(root)
    await asyncio.sleep(1.6)  # gone before anything extended it
    child = make_record(root)
    await store.put(child)
    assert await store.get(child.id) == child
    with pytest.raises(ChainIncomplete) as info:
        await store.get_history(child.id)
    assert info.value.missing_id == root.id
    assert info.value.response_id == child.id


async def test_record_expires_after_ttl(make_store: MakeStore) -> None:
    store = await make_store(ttl_seconds=1)
    record = make_record()
    await store.put(record)
    assert await store.get(record.id) == record
    await asyncio.sleep(1.6)
    assert await store.get(record.id) is None
    assert await store.get_history(record.id) is None
    assert await store.get_item(output_id(record)) is None
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
    assert await store.get_history(child.id) == history([root, child])


async def test_a_branch_extends_its_ancestors(make_store: MakeStore) -> None:
    store = await make_store(ttl_seconds=1)
    chain = await put_chain(store, 4)
    await asyncio.sleep(0.7)
    branch = make_record(chain[1])
    await store.put(branch)
    await asyncio.sleep(0.7)
    assert await store.get(chain[0].id) == chain[0]
    assert await store.get_history(branch.id) == history([*chain[:2], branch])


async def test_put_is_idempotent(store: ResponseStore) -> None:
    chain = await put_chain(store, 3)
    await store.put(chain[1])
    await store.put(chain[2])
    assert await store.get_history(chain[2].id) == history(chain)
    assert await store.get(chain[1].id) == chain[1]
    child = make_record(chain[2])  # the chain goes on as if the retries had not happened
    await store.put(child)
    assert await store.get_history(child.id) == history([*chain, child])


async def test_concurrent_puts(store: ResponseStore) -> None:
    root = make_record()
    await store.put(root)
    records = [make_record(root if i % 2 else None, text=f"c{i}") for i in range(20)]
    await asyncio.gather(*(store.put(r) for r in records))
    for record in records:
        assert await store.get(record.id) == record
    for record in records[1::2]:
        assert await store.get_history(record.id) == history([root, record])


async def test_concurrent_chains(store: ResponseStore) -> None:
    async def grow(i: int) -> list[StoredResponse]:
        return await put_chain(store, 10, owner=f"o{i % 3}")

    chains = await asyncio.gather(*(grow(i) for i in range(8)))
    for i, chain in enumerate(chains):
        assert await store.get_history(chain[-1].id, owner=f"o{i % 3}") == history(chain)


async def test_large_and_special_content_round_trips(store: ResponseStore) -> None:
    text = "x" * 16_000
    special = (
        "emoji 😀🎉, \"double\" and 'single' quotes,\nnewlines\r\n\ttabs, back\\slash, ünïcödé, 中文, \u2028"
    )
    record = make_record(text=text, output_text=special, metadata={'k"ey': special})
    await store.put(record)
    got = await store.get(record.id)
    assert got == record
    assert orjson.loads(got.input_items)[0]["content"][0]["text"] == text
    assert orjson.loads(got.response)["output"][0]["content"][0]["text"].encode() == special.encode()
    assert await store.get_history(record.id) == history([record])
    assert orjson.loads(join_history(history([record])))[1]["content"] == special


async def test_returned_records_are_immutable(store: ResponseStore) -> None:
    record = make_record()
    await store.put(record)
    got = await store.get(record.id)
    assert got is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.response = b"{}"  # type: ignore[misc]
    for value in (got.response, got.input_items, got.chat):
        assert type(value) is bytes  # not a bytearray or memoryview over the store's buffer
    turns = await store.get_history(record.id)
    assert turns is not None
    turns.clear()  # the list is the caller's
    assert await store.get_history(record.id) == [record.chat]
    assert await store.get(record.id) == record


async def test_ping(store: ResponseStore) -> None:
    await store.ping()
