"""SQLite-only behaviour: persistence, WAL, durability settings, group commit, purging, error mapping."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from responses_gateway.config import SQLiteSettings
from responses_gateway.errors import StoreUnavailable
from responses_gateway.stores import _sqlite_sql
from responses_gateway.stores.base import ChainIncomplete
from responses_gateway.stores.sqlite import SQLiteStore
from tests.stores.records import FakeClock, history, make_record, put_chain

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
        rows = conn.execute(sql).fetchall()
    conn.close()
    return rows


async def test_persists_across_close_and_reopen(open_store: OpenStore, tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "responses.db"
    store = await open_store(path)
    chain = await put_chain(store, 3)
    branch = await put_chain(store, 2, parent=chain[0])
    await store.delete(chain[1].id)
    await store.aclose()
    assert path.is_file()

    reopened = await open_store(path)
    assert await reopened.get(chain[2].id) == chain[2]
    assert await reopened.get(chain[1].id) is None
    assert await reopened.get_history(chain[2].id) == history([chain[0], chain[2]])
    assert await reopened.get_history(branch[-1].id) == history([chain[0], *branch])
    child = make_record(chain[2])
    await reopened.put(child)
    assert await reopened.get_history(child.id) == history([chain[0], chain[2], child])


async def test_wal_mode_and_full_sync(open_store: OpenStore, tmp_path: Path) -> None:
    store = await open_store()
    assert await store._write(lambda conn: conn.execute("PRAGMA journal_mode").fetchone()[0]) == "wal"
    assert await store._write(lambda conn: conn.execute("PRAGMA synchronous").fetchone()[0]) == 2  # FULL
    assert _rows(tmp_path / "a" / "b" / "responses.db", "PRAGMA journal_mode") == [("wal",)]


async def test_concurrent_puts_share_commits(open_store: OpenStore) -> None:
    store = await open_store()
    records = [make_record(text=str(i)) for i in range(200)]
    await asyncio.gather(*(store.put(r) for r in records))
    assert store._writer.jobs == 200
    assert store._writer.commits < 100  # grouped: far fewer fsyncs than puts
    for record in records:
        assert await store.get(record.id) == record


async def test_a_failing_job_fails_alone(open_store: OpenStore) -> None:
    store = await open_store()

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO segments (parent) VALUES (1)")  # violates NOT NULL
        raise AssertionError("not reached")

    records = [make_record(text=str(i)) for i in range(20)]
    results = await asyncio.gather(
        *(store.put(r) for r in records[:10]),
        store._write(broken),
        *(store.put(r) for r in records[10:]),
        return_exceptions=True,
    )
    assert isinstance(results[10], StoreUnavailable)
    assert [r for i, r in enumerate(results) if i != 10] == [None] * 20
    for record in records:
        assert await store.get(record.id) == record


class _FailingCommit:
    """Wraps the writer's connection: COMMIT fails (as on a full disk), everything else passes."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, *args: Any) -> Any:
        if sql == "COMMIT":
            raise sqlite3.OperationalError("database or disk is full")
        return self.conn.execute(sql, *args)


async def test_a_failed_commit_fails_every_put_in_it(open_store: OpenStore) -> None:
    store = await open_store()
    conn = store._writer._conn
    store._writer._conn = _FailingCommit(conn)  # type: ignore[assignment]
    records = [make_record(text=str(i)) for i in range(10)]
    results = await asyncio.gather(*(store.put(r) for r in records), return_exceptions=True)
    assert all(isinstance(r, StoreUnavailable) for r in results)
    store._writer._conn = conn
    for record in records:  # nothing of the failed batch was acknowledged, nor kept
        assert await store.get(record.id) is None
    await store.put(records[0])
    assert await store.get(records[0].id) == records[0]


async def test_reads_do_not_wait_behind_a_write_batch(open_store: OpenStore) -> None:
    store = await open_store()
    record = make_record()
    await store.put(record)

    def slow(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE segments SET size = size")
        time.sleep(0.5)

    started = time.perf_counter()
    job = asyncio.ensure_future(store._write(slow))
    await asyncio.sleep(0.05)
    assert await store.get(record.id) == record
    assert await store.get_history(record.id) == history([record])
    assert time.perf_counter() - started < 0.3
    await job


async def test_idempotent_put_keeps_one_row(open_store: OpenStore, tmp_path: Path) -> None:
    store = await open_store()
    record = make_record()
    await store.put(record)
    await store.put(record)
    assert _rows(tmp_path / "a" / "b" / "responses.db") == [(1,)]


async def test_a_linear_chain_is_one_segment(open_store: OpenStore, tmp_path: Path) -> None:
    store = await open_store()
    chain = await put_chain(store, 100)
    await put_chain(store, 3, parent=chain[50])
    await put_chain(store, 3, parent=chain[-1])
    assert _rows(tmp_path / "a" / "b" / "responses.db", "SELECT count(*) FROM segments") == [(2,)]


async def test_purge_removes_expired_rows(open_store: OpenStore, tmp_path: Path) -> None:
    clock = FakeClock()
    store = await open_store(ttl_seconds=100, clock=clock)
    await put_chain(store, 3)
    clock.now += 50
    fresh = make_record()
    await store.put(fresh)
    clock.now += 60  # the chain expired, `fresh` has 40 s left
    assert await store.purge_expired() == 3
    assert _rows(tmp_path / "a" / "b" / "responses.db") == [(1,)]
    assert _rows(tmp_path / "a" / "b" / "responses.db", "SELECT count(*) FROM segments") == [(1,)]
    assert await store.get(fresh.id) == fresh
    assert await store.purge_expired() == 0


async def test_purge_runs_in_the_background(open_store: OpenStore, tmp_path: Path) -> None:
    store = await open_store(ttl_seconds=1, purge_interval_seconds=0.2)
    await put_chain(store, 2)
    assert _rows(tmp_path / "a" / "b" / "responses.db") == [(2,)]
    await asyncio.sleep(1.8)
    assert _rows(tmp_path / "a" / "b" / "responses.db") == [(0,)]


async def test_put_extends_every_ancestor_of_a_branchy_chain(open_store: OpenStore) -> None:
    """Each turn a branch (a regenerated answer at every step): one segment per turn on the path."""
    clock = FakeClock()
    store = await open_store(ttl_seconds=100, clock=clock)
    path = []
    parent = None
    for i in range(30):
        await put_chain(store, 1, parent=parent)  # the sibling makes the next turn start a segment
        turn = (await put_chain(store, 1, parent=parent))[0] if parent else make_record(text=str(i))
        if parent is None:
            await store.put(turn)
        path.append(turn)
        parent = turn
    clock.now += 90
    child = make_record(path[-1])
    await store.put(child)
    clock.now += 95  # 185 s after the root was written, 95 s after the child
    assert await store.get_history(child.id) == history([*path, child])
    clock.now += 30  # the child expired; its ancestors live at most the slack (10 s) longer
    assert await store.get_history(child.id) is None
    assert await store.get(path[0].id) is None


async def test_extended_ancestors_never_outlive_the_one_the_walk_stopped_at(open_store: OpenStore) -> None:
    """ttl 100 s, slack 10 s: a later put must not leave an ancestor expiring before its descendants."""
    clock = FakeClock(1000.0)
    store = await open_store(ttl_seconds=100, clock=clock)
    root = make_record(text="R")
    a = make_record(root, text="A")
    for record in (root, make_record(root, text="R'"), a, make_record(a, text="A'")):
        await store.put(record)  # R, A: each a branch point, so each turn below is a segment
    clock.now = 1005.0
    b = make_record(a, text="B")
    await store.put(b)
    await store.put(make_record(b, text="B'"))
    clock.now = 1010.0
    c = make_record(b, text="C")
    await store.put(c)
    for now in (1108.0, 1112.0, 1116.0, 1117.0, 1125.0):
        clock.now = now
        for record, chain in ((c, [root, a, b, c]), (b, [root, a, b]), (a, [root, a])):
            if await store.get(record.id) is not None:  # every live record has its whole history
                assert await store.get_history(record.id) == history(chain), (now, record.id)


async def test_a_cycle_is_reported_not_looped(open_store: OpenStore, tmp_path: Path) -> None:
    store = await open_store()
    chain = await put_chain(store, 3)
    branch = await put_chain(store, 2, parent=chain[0])
    with sqlite3.connect(tmp_path / "a" / "b" / "responses.db") as conn:  # corrupted: its own parent
        conn.execute("UPDATE segments SET parent = id WHERE parent IS NOT NULL")
    conn.close()
    with pytest.raises(ChainIncomplete):
        await store.get_history(branch[-1].id)
    await store.put(make_record(branch[-1]))  # the ancestor walk stops on the cycle too
    await store.put(make_record(branch[0]))


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


async def test_a_development_schema_file_is_refused(open_store: OpenStore, tmp_path: Path) -> None:
    """Files of the unreleased schemas 1 and 2 (one row per turn) are not migrated: refused, named."""
    path = tmp_path / "v2.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE responses (id TEXT PRIMARY KEY, thread TEXT, parent TEXT, owner TEXT NOT NULL,"
            " expires_at REAL NOT NULL, deleted INTEGER NOT NULL DEFAULT 0, data BLOB NOT NULL, history BLOB)"
        )
        conn.execute("PRAGMA user_version = 2")
    conn.close()
    with pytest.raises(StoreUnavailable, match="earlier development version") as info:
        await open_store(path)
    assert str(path) in str(info.value)
    assert _rows(path, "PRAGMA user_version") == [(2,)]  # left as it was


async def test_calls_after_close_are_store_unavailable(open_store: OpenStore) -> None:
    store = await open_store()
    await store.aclose()
    with pytest.raises(StoreUnavailable):
        await store.get(make_record().id)
    with pytest.raises(StoreUnavailable):
        await store.put(make_record())
    with pytest.raises(StoreUnavailable):
        await store.ping()
    await store.aclose()  # closing twice is harmless


async def test_writes_queued_before_close_are_committed(open_store: OpenStore, tmp_path: Path) -> None:
    path = tmp_path / "close.db"
    store = await open_store(path)
    records = [make_record(text=str(i)) for i in range(50)]
    puts = [asyncio.ensure_future(store.put(r)) for r in records]
    await asyncio.sleep(0)
    await store.aclose()
    await asyncio.gather(*puts)
    assert _rows(path) == [(50,)]


def test_processes_opening_a_new_file_at_once_all_succeed(tmp_path: Path) -> None:
    """`serve --workers N` on a file that does not exist yet: every worker opens it at the same moment;
    none may see the schema half made (it used to refuse the file as "schema 0")."""
    for attempt in range(5):
        path = str(tmp_path / f"fresh-{attempt}.db")
        start = threading.Barrier(8)
        errors: list[BaseException] = []

        def open_it(
            path: str = path, start: threading.Barrier = start, errors: list[BaseException] = errors
        ) -> None:
            start.wait()
            try:
                _sqlite_sql.connect(path).close()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
