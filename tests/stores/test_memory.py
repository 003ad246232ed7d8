"""MemoryStore-only behaviour: the bound and its eviction order, TTL with a fake clock, segments."""

from __future__ import annotations

import pytest

from responses_gateway.config import MemorySettings, ResponseAPISettings
from responses_gateway.stores import open_store
from responses_gateway.stores.base import StoredResponse
from responses_gateway.stores.memory import MemoryStore
from tests.stores.records import FakeClock, history, make_record, put_chain


async def test_evicts_the_oldest_when_full() -> None:
    store = MemoryStore(max_responses=3, ttl_seconds=3600)
    records = [make_record(text=str(i)) for i in range(4)]
    for record in records:
        await store.put(record)
    assert len(store) == 3
    assert await store.get(records[0].id) is None
    for record in records[1:]:
        assert await store.get(record.id) == record


async def test_a_chain_in_use_outlives_an_idle_one() -> None:
    store = MemoryStore(max_responses=6, ttl_seconds=3600)
    active = await put_chain(store, 2)
    idle = await put_chain(store, 2)
    active += await put_chain(store, 2, parent=active[-1])  # moves the active root to the recent end
    assert len(store) == 6
    active.append(make_record(active[-1]))
    await store.put(active[-1])  # full: the idle root, now the oldest, goes first
    assert await store.get(idle[0].id) is None
    assert await store.get(idle[1].id) == idle[1]
    assert await store.get_history(active[-1].id) == history(active)


async def test_a_branch_in_use_keeps_its_ancestors() -> None:
    store = MemoryStore(max_responses=5, ttl_seconds=3600)
    trunk = await put_chain(store, 3)
    idle = make_record()
    await store.put(idle)
    branch = await put_chain(store, 1, parent=trunk[0])  # extends trunk's segment, not idle
    assert len(store) == 5
    await store.put(make_record())  # full: idle, the least recently extended, goes
    assert await store.get(idle.id) is None
    assert await store.get_history(branch[0].id) == history([trunk[0], *branch])


async def test_ttl_and_extension_with_a_clock() -> None:
    clock = FakeClock()
    store = MemoryStore(max_responses=100, ttl_seconds=100, clock=clock)
    root = make_record()
    await store.put(root)
    clock.now += 90
    child = make_record(root)
    await store.put(child)
    clock.now += 90
    assert await store.get_history(child.id) == history([root, child])
    clock.now += 11
    assert await store.get(root.id) is None
    assert await store.get(child.id) is None


async def test_a_branch_extends_the_segments_it_branches_from() -> None:
    clock = FakeClock()
    store = MemoryStore(max_responses=100, ttl_seconds=100, clock=clock)
    chain = await put_chain(store, 10)
    clock.now += 90
    mid = make_record(chain[4])
    deeper = make_record(mid)
    await store.put(mid)
    await store.put(deeper)
    clock.now += 90
    assert await store.get_history(deeper.id) == history([*chain[:5], mid, deeper])
    assert await store.get_history(chain[-1].id) == history(chain)


async def test_expired_records_are_dropped_on_the_next_put() -> None:
    clock = FakeClock()
    store = MemoryStore(max_responses=100, ttl_seconds=10, clock=clock)
    await put_chain(store, 5)
    clock.now += 11
    await store.put(make_record())
    assert len(store) == 1


async def test_idempotent_put_keeps_one_entry() -> None:
    store = MemoryStore(max_responses=100, ttl_seconds=10)
    record = make_record()
    await store.put(record)
    await store.put(record)
    assert len(store) == 1


async def test_a_linear_chain_is_one_segment() -> None:
    """The read walks one segment per branch point: a linear chain of any depth is one."""
    store = MemoryStore(max_responses=10_000, ttl_seconds=3600)
    chain = await put_chain(store, 1000)
    assert len(store._segments) == 1
    await put_chain(store, 3, parent=chain[500])  # a branch from the middle: one more segment
    await put_chain(store, 3, parent=chain[-1])  # more turns at the tip: no new segment
    assert len(store._segments) == 2


def test_max_responses_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_responses"):
        MemoryStore(max_responses=0, ttl_seconds=10)


def _size(record: StoredResponse) -> int:
    return len(record.response) + len(record.input_items) + len(record.chat)


async def test_max_bytes_evicts_the_oldest_by_stored_bytes() -> None:
    records = [make_record(text=str(i) * 2000) for i in range(10)]
    size = _size(records[0])
    store = MemoryStore(max_responses=1000, ttl_seconds=3600, max_bytes=int(size * 3.5))
    for record in records:
        await store.put(record)
    assert len(store) == 3  # the count bound is far away: the bytes bound decides
    assert store.stored_bytes == sum(_size(r) for r in records[-3:]) <= size * 3.5
    for record in records[:-3]:
        assert await store.get(record.id) is None
    for record in records[-3:]:
        assert await store.get(record.id) == record


async def test_max_bytes_counts_deletes_replacements_and_evictions() -> None:
    store = MemoryStore(max_responses=1000, ttl_seconds=3600, max_bytes=10**9)
    chain = await put_chain(store, 3)
    assert store.stored_bytes == sum(map(_size, chain))
    assert await store.delete(chain[1].id)  # a tombstone keeps no bytes
    assert store.stored_bytes == _size(chain[0]) + _size(chain[2])
    await store.put(chain[1])  # a retried put brings it back
    await store.put(chain[2])  # and replaces without counting twice
    assert store.stored_bytes == sum(map(_size, chain))
    store.evict(chain[0].id)
    assert store.stored_bytes == _size(chain[1]) + _size(chain[2])
    await store.aclose()
    assert store.stored_bytes == 0


async def test_a_chain_in_use_outlives_idle_ones_under_max_bytes() -> None:
    first = make_record(text="a" * 1000)
    second = make_record(first, text="b")
    big = make_record(text="c" * 2000)
    # room for exactly the active chain and `big`: the idle chain has to go, nothing else
    store = MemoryStore(
        max_responses=1000, ttl_seconds=3600, max_bytes=_size(first) + _size(second) + _size(big)
    )
    await store.put(first)
    idle = await put_chain(store, 2)
    await store.put(second)  # extends the active chain: the idle one is now the oldest
    await store.put(big)
    assert [await store.get(r.id) for r in idle] == [None, None]
    assert await store.get_history(second.id) == history([first, second])
    assert await store.get(big.id) == big
    assert store.stored_bytes == _size(first) + _size(second) + _size(big)


async def test_a_record_larger_than_max_bytes_is_not_kept(caplog: pytest.LogCaptureFixture) -> None:
    small = make_record()
    store = MemoryStore(max_responses=1000, ttl_seconds=3600, max_bytes=_size(small) * 2)
    huge = make_record(text="z" * 10_000)
    await store.put(huge)
    assert await store.get(huge.id) is None
    assert len(store) == 0 and store.stored_bytes == 0
    assert "larger than response_api.memory.max_bytes" in caplog.text
    await store.put(small)  # the store goes on
    assert await store.get(small.id) == small


async def test_open_store_passes_memory_max_bytes() -> None:
    settings = ResponseAPISettings(store_backend="memory", memory=MemorySettings(max_bytes=12345))
    store = await open_store(settings)
    assert isinstance(store, MemoryStore)
    records = [make_record(text="q" * 1000) for _ in range(5)]
    for record in records:
        await store.put(record)
    assert 0 < store.stored_bytes <= 12345


async def test_expired_conversations_are_dropped_by_later_writes() -> None:
    from responses_gateway.ids import new_conversation_id
    from responses_gateway.stores.conversations import StoredConversation

    now = [0.0]
    store = MemoryStore(max_responses=10, ttl_seconds=60, conversation_ttl_seconds=10, clock=lambda: now[0])
    old = [StoredConversation(new_conversation_id(), "a", 0, b"{}") for _ in range(3)]
    for conv in old:
        await store.conversations.create(conv, [])
    now[0] = 5.0
    await store.conversations.append(old[0].id, [], owner="a")  # extended to 15
    now[0] = 11.0
    await store.conversations.create(StoredConversation(new_conversation_id(), "a", 0, b"{}"), [])
    assert len(store.conversations) == 2  # old[1], old[2] are gone, never read again
    assert await store.conversations.get(old[0].id, owner="a") == old[0]
