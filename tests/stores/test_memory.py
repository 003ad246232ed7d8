"""MemoryStore-only behaviour: the bound and its eviction order, TTL with a fake clock, segments."""

from __future__ import annotations

import pytest

from responses_gateway.config import MemorySettings, ResponseAPISettings
from responses_gateway.conversations import ConversationsService
from responses_gateway.errors import InvalidRequest
from responses_gateway.ids import new_conversation_id, new_conversation_item_id
from responses_gateway.protocol.conversations import CreateConversation
from responses_gateway.protocol.items import Message
from responses_gateway.stores import open_store
from responses_gateway.stores.base import StoredResponse
from responses_gateway.stores.conversations import ConversationTooLarge, StoredConversation
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


# -- conversations: the byte bound (response_api.memory.max_conversation_bytes) ----------------------


def _conv(owner: str = "a", metadata: bytes = b"{}") -> StoredConversation:
    return StoredConversation(new_conversation_id(), owner, 0, metadata)


def _items(n: int, size: int = 100) -> list[tuple[str, bytes]]:
    """`n` items of exactly `size` JSON bytes each."""
    out = []
    for _ in range(n):
        item_id = new_conversation_item_id("msg")
        head = b'{"id":"' + item_id.encode() + b'","text":"'
        out.append((item_id, head + b"x" * (size - len(head) - 2) + b'"}'))
    assert all(len(body) == size for _, body in out)
    return out


def _held(store: MemoryStore) -> int:
    """The bytes the kept conversations hold, counted from what the store answers."""
    return store.conversations.stored_bytes


async def test_conversation_bytes_are_counted_across_every_write_and_delete() -> None:
    store = MemoryStore(max_responses=10, ttl_seconds=60, max_conversation_bytes=10**6)
    one, two = _conv(metadata=b'{"k":"v"}'), _conv()
    first = _items(3)
    await store.conversations.create(one, first)
    assert _held(store) == 9 + 300
    await store.conversations.create(two, _items(1, 80))
    assert _held(store) == 9 + 300 + 2 + 80
    assert await store.conversations.append(one.id, _items(2, 75), owner="a")
    assert _held(store) == 9 + 450 + 82
    assert await store.conversations.update(one.id, b'{"key":"value"}', owner="a") is not None
    assert _held(store) == 15 + 450 + 82
    assert await store.conversations.delete_item(one.id, first[1][0], owner="a")
    assert _held(store) == 15 + 350 + 82
    assert not await store.conversations.delete_item(one.id, first[1][0], owner="a")  # already gone
    assert not await store.conversations.append(one.id, _items(1), owner="b")  # another owner's: no change
    assert _held(store) == 15 + 350 + 82
    assert await store.conversations.delete(two.id, owner="a")
    assert _held(store) == 15 + 350
    assert await store.conversations.delete(one.id, owner="a")
    assert _held(store) == 0 and len(store.conversations) == 0


async def test_conversations_are_evicted_whole_least_recently_written_first() -> None:
    # four conversations of 2 + 300 bytes fit in 1300; a fifth evicts the least recently written
    store = MemoryStore(max_responses=10, ttl_seconds=60, max_conversation_bytes=1300)
    convs = [_conv() for _ in range(4)]
    items = {}
    for conv in convs:
        items[conv.id] = _items(3)
        await store.conversations.create(conv, items[conv.id])
    assert _held(store) == 4 * 302
    # writes of every kind make a conversation the most recent: append, item delete, metadata update
    assert await store.conversations.append(convs[0].id, _items(1, 80), owner="a")
    assert await store.conversations.delete_item(convs[1].id, items[convs[1].id][0][0], owner="a")
    assert await store.conversations.update(convs[2].id, b"{}", owner="a") is not None
    # reads are not writes: convs[3] stays the least recently written
    assert await store.conversations.get(convs[3].id, owner="a") is not None
    assert await store.conversations.list_items(convs[3].id, owner="a", limit=None) is not None
    newest = _conv()
    await store.conversations.create(newest, _items(2))
    assert await store.conversations.get(convs[3].id, owner="a") is None
    assert await store.conversations.list_items(convs[3].id, owner="a", limit=None) is None
    assert len(store.conversations) == 4
    assert _held(store) == (302 + 80) + (302 - 100) + 302 + 202 <= 1300
    # the next to go is convs[0], whole: none of its items is left behind
    await store.conversations.create(_conv(), _items(3))
    assert await store.conversations.get(convs[0].id, owner="a") is None
    assert await store.conversations.get_item(convs[0].id, items[convs[0].id][2][0], owner="a") is None
    assert await store.conversations.get(convs[1].id, owner="a") is not None
    page = await store.conversations.list_items(convs[1].id, owner="a", limit=None)
    assert page is not None and page.items == items[convs[1].id][1:]  # intact, never cut
    assert _held(store) == 202 + 302 + 202 + 302


async def test_a_write_one_conversation_cannot_hold_is_refused_and_changes_nothing() -> None:
    store = MemoryStore(max_responses=10, ttl_seconds=60, max_conversation_bytes=1000)
    other, conv = _conv(), _conv()
    await store.conversations.create(other, _items(4))
    kept = _items(4)
    await store.conversations.create(conv, kept)
    before = _held(store)
    assert before == 2 * 402
    with pytest.raises(ConversationTooLarge) as exc:
        await store.conversations.append(conv.id, _items(6), owner="a")  # 402 + 600 > 1000
    assert (exc.value.size, exc.value.limit) == (1002, 1000)
    assert exc.value.setting == "response_api.memory.max_conversation_bytes"
    assert exc.value.setting in str(exc.value)
    with pytest.raises(ConversationTooLarge):
        await store.conversations.update(conv.id, b'{"k":"' + b"v" * 600 + b'"}', owner="a")
    with pytest.raises(ConversationTooLarge):
        await store.conversations.create(_conv(), _items(10, 101))
    # nothing changed, nothing evicted: not the conversation, not the other one
    assert _held(store) == before and len(store.conversations) == 2
    page = await store.conversations.list_items(conv.id, owner="a", limit=None)
    assert page is not None and page.items == kept
    assert (await store.conversations.get(conv.id, owner="a")) == conv
    assert await store.conversations.get(other.id, owner="a") is not None
    # exactly the bound is allowed (and evicts the other conversation to make room)
    assert await store.conversations.append(conv.id, _items(1, 598), owner="a")
    assert _held(store) == 1000 and await store.conversations.get(other.id, owner="a") is None


async def test_expired_conversations_leave_the_byte_count() -> None:
    now = [0.0]
    store = MemoryStore(
        max_responses=10,
        ttl_seconds=60,
        conversation_ttl_seconds=10,
        max_conversation_bytes=10**6,
        clock=lambda: now[0],
    )
    a, b, c = _conv(), _conv(), _conv()
    for conv in (a, b, c):
        await store.conversations.create(conv, _items(2))
    assert _held(store) == 3 * 202
    now[0] = 5.0
    assert await store.conversations.append(c.id, _items(1), owner="a")  # c lives to 15
    now[0] = 11.0
    assert await store.conversations.get(a.id, owner="a") is None  # expired: dropped by the read
    assert _held(store) == 202 + 302
    await store.conversations.create(_conv(), [])  # a later write drops b
    assert len(store.conversations) == 2 and _held(store) == 302 + 2
    now[0] = 30.0
    assert await store.conversations.list_items(c.id, owner="a", limit=None) is None
    await store.conversations.create(_conv(), [])
    assert len(store.conversations) == 1 and _held(store) == 2


async def test_max_conversation_bytes_default_and_from_config() -> None:
    assert MemorySettings().max_conversation_bytes == 64 * 1024 * 1024
    with pytest.raises(ValueError, match="max_conversation_bytes"):
        MemorySettings(max_conversation_bytes=0)
    settings = ResponseAPISettings(store_backend="memory", memory=MemorySettings(max_conversation_bytes=500))
    store = await open_store(settings)
    assert isinstance(store, MemoryStore)
    with pytest.raises(ConversationTooLarge):
        await store.conversations.create(_conv(), _items(5))
    await store.aclose()


async def test_the_conversations_service_answers_a_refused_write_with_a_400() -> None:
    store = MemoryStore(max_responses=10, ttl_seconds=60, max_conversation_bytes=2000)
    service = ConversationsService(store)
    conv = await service.create(CreateConversation(items=None, metadata=None), "a")
    big = [Message(role="user", content="x" * 3000)]
    with pytest.raises(InvalidRequest) as exc:
        await service.add_items(conv.id, big, "a")
    err = exc.value.to_dict()["error"]
    assert exc.value.status_code == 400 and err["param"] == "items"
    assert err["code"] == "conversation_too_large"
    assert "response_api.memory.max_conversation_bytes" in err["message"] and "2000" in err["message"]
    with pytest.raises(InvalidRequest, match="max_conversation_bytes"):
        await service.create(CreateConversation(items=big, metadata=None), "a")
    page = await service.list_items(conv.id, "a", limit=10, order="asc", after=None)
    assert page.data == []
