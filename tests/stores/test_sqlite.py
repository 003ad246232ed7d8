"""SQLite-only behaviour: persistence, WAL, durability settings, purging, error mapping."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from responses_gateway.config import SQLiteSettings
from responses_gateway.errors import StoreUnavailable
from responses_gateway.stores.base import ChainIncomplete, encode_record
from responses_gateway.stores.sqlite import SQLiteStore
from tests.stores.records import FakeClock, light, make_record, put_chain

OpenStore = Callable[..., Awaitable[SQLiteStore]]


@pytest.fixture
async def open_store(tmp_path: Path) -> AsyncIterator[OpenStore]:
    opened: list[SQLiteStore] = []

    async def open_(
        path: Path = tmp_path / "a" / "b" / "responses.db",
        *,
        ttl_seconds: int = 3600,
        purge_interval_seconds: float = 3600,
        clock: Callable[[], float] | None = None,
    ) -> SQLiteStore:
        settings = SQLiteSettings(path=str(path), purge_interval_seconds=purge_interval_seconds)
        if clock is None:
            store = await SQLiteStore.open(settings, ttl_seconds=ttl_seconds)
        else:
            store = await SQLiteStore.open(settings, ttl_seconds=ttl_seconds, clock=clock)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        await store.aclose()


def _rows(path: Path, sql: str = "SELECT count(*) FROM responses") -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


async def test_persists_across_close_and_reopen(open_store: OpenStore, tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "responses.db"
    store = await open_store(path)
    chain = await put_chain(store, 3)
    await store.delete(chain[1].id)
    await store.aclose()
    assert path.is_file()

    reopened = await open_store(path)
    assert await reopened.get(chain[2].id) == chain[2]
    assert await reopened.get(chain[1].id) is None
    assert await reopened.get_chain(chain[2].id) == light([chain[0], chain[2]])


async def test_wal_mode_and_full_sync(open_store: OpenStore, tmp_path: Path) -> None:
    store = await open_store()
    assert await store._run(lambda: store._conn.execute("PRAGMA journal_mode").fetchone()[0]) == "wal"
    assert await store._run(lambda: store._conn.execute("PRAGMA synchronous").fetchone()[0]) == 2  # FULL
    assert _rows(tmp_path / "a" / "b" / "responses.db", "PRAGMA journal_mode") == [("wal",)]


async def test_idempotent_put_keeps_one_row(open_store: OpenStore, tmp_path: Path) -> None:
    store = await open_store()
    record = make_record()
    await store.put(record)
    await store.put(record)
    assert _rows(tmp_path / "a" / "b" / "responses.db") == [(1,)]


async def test_purge_removes_expired_rows(open_store: OpenStore, tmp_path: Path) -> None:
    clock = FakeClock()
    store = await open_store(ttl_seconds=100, clock=clock)
    await put_chain(store, 3)
    clock.now += 50
    fresh = make_record()
    await store.put(fresh)
    clock.now += 60  # `old` expired (100 s + slack), `fresh` has 40 s left
    assert await store.purge_expired() == 3
    assert _rows(tmp_path / "a" / "b" / "responses.db") == [(1,)]
    assert await store.get(fresh.id) == fresh
    assert await store.purge_expired() == 0


async def test_purge_runs_in_the_background(open_store: OpenStore, tmp_path: Path) -> None:
    store = await open_store(ttl_seconds=1, purge_interval_seconds=0.2)
    await put_chain(store, 2)
    assert _rows(tmp_path / "a" / "b" / "responses.db") == [(2,)]
    await asyncio.sleep(1.8)
    assert _rows(tmp_path / "a" / "b" / "responses.db") == [(0,)]


async def test_put_extends_every_ancestor_of_a_deep_chain(open_store: OpenStore) -> None:
    clock = FakeClock()
    store = await open_store(ttl_seconds=100, clock=clock)
    chain = await put_chain(store, 50)
    clock.now += 90
    child = make_record(chain[-1])
    await store.put(child)
    clock.now += 95  # 185 s after the root was written, 95 s after the child
    assert await store.get_chain(child.id) == light([*chain, child])
    clock.now += 30  # the child expired; its ancestors live at most the slack (10 s) longer
    assert await store.get_chain(child.id) is None
    assert await store.get(chain[0].id) is None


async def test_missing_ancestor_raises_chain_incomplete(open_store: OpenStore, tmp_path: Path) -> None:
    store = await open_store()
    chain = await put_chain(store, 4)
    with sqlite3.connect(tmp_path / "a" / "b" / "responses.db") as conn:
        conn.execute("DELETE FROM responses WHERE id = ?", (chain[1].id,))
    with pytest.raises(ChainIncomplete) as info:
        await store.get_chain(chain[3].id)
    assert info.value.missing_id == chain[1].id
    assert info.value.response_id == chain[3].id


async def test_expired_ancestor_raises_chain_incomplete(open_store: OpenStore, tmp_path: Path) -> None:
    store = await open_store()
    chain = await put_chain(store, 3)
    with sqlite3.connect(tmp_path / "a" / "b" / "responses.db") as conn:
        conn.execute("UPDATE responses SET expires_at = 0 WHERE id = ?", (chain[0].id,))
    with pytest.raises(ChainIncomplete):
        await store.get_chain(chain[2].id)


async def test_a_cycle_is_reported_not_looped(open_store: OpenStore, tmp_path: Path) -> None:
    store = await open_store()
    chain = await put_chain(store, 3)
    with sqlite3.connect(tmp_path / "a" / "b" / "responses.db") as conn:
        conn.execute("UPDATE responses SET parent = ? WHERE id = ?", (chain[2].id, chain[0].id))
    with pytest.raises(ChainIncomplete):
        await store.get_chain(chain[2].id)
    await store.put(make_record(chain[2]))  # the ancestor walk stops on the cycle too


async def test_open_failure_is_store_unavailable(open_store: OpenStore, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(StoreUnavailable) as info:
        await open_store(tmp_path / "file" / "responses.db")
    assert info.value.__cause__ is not None


async def test_corrupt_file_is_store_unavailable(open_store: OpenStore, tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreUnavailable) as info:
        await open_store(path)
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)


async def test_calls_after_close_are_store_unavailable(open_store: OpenStore) -> None:
    store = await open_store()
    await store.aclose()
    with pytest.raises(StoreUnavailable):
        await store.get(make_record().id)
    with pytest.raises(StoreUnavailable):
        await store.ping()
    await store.aclose()  # closing twice is harmless


async def test_a_version_1_file_keeps_working(open_store: OpenStore, tmp_path: Path) -> None:
    """Files written before records were split in two (no `history` column) are read as they are."""
    path = tmp_path / "v1.db"
    root = make_record(text="old root")
    child = make_record(root, text="old child")
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE responses (id TEXT PRIMARY KEY, thread TEXT, parent TEXT, owner TEXT NOT NULL,"
            " expires_at REAL NOT NULL, deleted INTEGER NOT NULL DEFAULT 0, data BLOB NOT NULL)"
        )
        for r in (root, child):
            conn.execute(
                "INSERT INTO responses VALUES (?, ?, ?, ?, ?, 0, ?)",
                (r.id, r.id[5:21], r.previous_response_id, "", 4e9, encode_record(r)),
            )
    store = await open_store(path)
    assert await store.get(child.id) == child
    newer = make_record(child, text="new")
    await store.put(newer)
    assert await store.get_chain(newer.id) == [root, child, *light([newer])]
    assert _rows(path, "PRAGMA user_version") == [(2,)]


async def test_extended_ancestors_never_outlive_the_one_the_walk_stopped_at(open_store: OpenStore) -> None:
    """ttl 100 s, slack 10 s: a later put must not leave an ancestor expiring before its descendants."""
    clock = FakeClock(1000.0)
    store = await open_store(ttl_seconds=100, clock=clock)
    root = make_record(text="R")
    a = make_record(root, text="A")
    await store.put(root)
    await store.put(a)
    clock.now = 1005.0
    b = make_record(a, text="B")
    await store.put(b)
    clock.now = 1010.0
    c = make_record(b, text="C")
    await store.put(c)
    # R and A were extended to 1115 (1105 + slack) at 1005; at 1010 the walk from C stops at A, so B
    # gets min(1110 + 10, 1115) = 1115: never later than its ancestor (it was 1120 before the fix)
    for now in (1108.0, 1112.0, 1116.0, 1117.0):
        clock.now = now
        for record, chain in ((c, [root, a, b, c]), (b, [root, a, b]), (a, [root, a])):
            if await store.get(record.id) is not None:  # every live record has its whole history
                assert await store.get_chain(record.id) == light(chain), (now, record.id)
    clock.now = 1112.0
    assert await store.get(c.id) is None and await store.get_chain(b.id) == light([root, a, b])
    clock.now = 1116.0
    assert await store.get(b.id) is None and await store.get(a.id) is None
