"""What background mode needs of every store: a response updated in place (queued -> in_progress
-> settled, by re-putting the same id), the control state of a run (stores/control.py) and the event
log (stores/events.py); for the stores shared by processes (SQLite, Redis), across two store
instances on the same data, as two workers or replicas have them."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from responses_gateway.config import SQLiteSettings
from responses_gateway.stores import open_store
from responses_gateway.stores._sqlite_background import SQLiteControl, SQLiteEventLog
from responses_gateway.stores.base import ResponseStore, StoredResponse
from responses_gateway.stores.control import ControlState, InProcessControl, RedisControl, control_for
from responses_gateway.stores.events import InProcessEventLog, LoggedEvent, event_log_for
from responses_gateway.stores.sqlite import SQLiteStore
from tests.stores.conftest import BACKENDS, DEFAULT_TTL, Backend
from tests.stores.records import history, make_record, put_chain


def _updated(record: StoredResponse, status: str, answer: str) -> StoredResponse:
    response = orjson.loads(record.response)
    response["status"] = status
    response["output"][0]["content"][0]["text"] = answer
    chat = orjson.loads(record.chat)
    chat[-1]["content"] = answer
    return StoredResponse(
        id=record.id,
        previous_response_id=record.previous_response_id,
        response=orjson.dumps(response),
        input_items=record.input_items,
        chat=orjson.dumps(chat),
        owner=record.owner,
        created_at=record.created_at,
    )


async def test_a_re_put_replaces_the_record_in_its_place(store: ResponseStore) -> None:
    chain = await put_chain(store, 3)
    for i in (0, 1, 2):  # a root, a middle turn, the tip
        for status in ("in_progress", "completed"):
            chain[i] = _updated(chain[i], status, f"answer {i} {status}")
            await store.put(chain[i])
            assert await store.get(chain[i].id) == chain[i]
            assert await store.get_history(chain[2].id) == history(chain)
    child = make_record(chain[2])  # the chain goes on from the replaced tip
    await store.put(child)
    assert await store.get_history(child.id) == history([*chain, child])
    branch = make_record(chain[0])  # and branches from a replaced root
    await store.put(branch)
    assert await store.get_history(branch.id) == history([chain[0], branch])


async def test_a_re_put_of_another_owner_does_not_reveal_it(store: ResponseStore) -> None:
    mine = make_record(owner="a")
    await store.put(mine)
    replaced = _updated(mine, "completed", "new")
    await store.put(replaced)
    assert await store.get(mine.id, owner="b") is None
    assert await store.get(mine.id, owner="a") == replaced


async def test_background_control(store: ResponseStore) -> None:
    control = control_for(store)
    rid = make_record().id
    other = make_record().id
    assert await control.heartbeat(rid, 5) is False  # takes the lease; no cancel asked
    state = await control.state(rid)
    assert state.cancel is False
    await control.request_cancel(rid, 60)
    assert await control.heartbeat(rid, 5) is True
    assert (await control.state(rid)).cancel is True
    assert (await control.state(other)).cancel is False  # one response's flag only
    if isinstance(control, RedisControl | SQLiteControl):
        assert state.leased is True
        assert (await control.state(other)).leased is False
        await control.release(rid)
        assert (await control.state(rid)).leased is False
        await control.heartbeat(other, 0.2)  # a lease not renewed expires
        await asyncio.sleep(0.4)
        assert (await control.state(other)).leased is False
    else:
        assert isinstance(control, InProcessControl)
        assert state.leased is None  # this process cannot tell whether another one's runner lives


def _events(*seqs: int) -> list[LoggedEvent]:
    return [LoggedEvent(s, "response.output_text.delta", b'{"sequence_number":%d}' % s) for s in seqs]


async def test_event_log(store: ResponseStore) -> None:
    log = event_log_for(store)
    rid, other = make_record().id, make_record().id
    assert await log.read(rid, -1, 100) == (False, [])
    await log.append(rid, _events(0, 1, 2), 60)
    await log.append(rid, _events(2, 3), 60)  # a retried batch: the kept event is skipped
    await log.append(rid, _events(4), 60)
    assert await log.read(rid, -1, 100) == (True, _events(0, 1, 2, 3, 4))
    assert await log.read(rid, 1, 100) == (True, _events(2, 3, 4))
    assert await log.read(rid, 1, 2) == (True, _events(2, 3))
    assert await log.read(rid, 4, 100) == (True, [])
    assert await log.read(other, -1, 100) == (False, [])
    await log.append(other, _events(0), 0.2)  # kept this long after its last event
    assert (await log.read(other, -1, 10))[0] is True
    await asyncio.sleep(0.4)
    assert await log.read(other, -1, 10) == (False, [])
    assert await log.read(rid, 3, 10) == (True, _events(4))


# the stores more than one process can share (memory is one process's: no other worker to share it)
SHARED = [param for param in BACKENDS if param.id != "memory"]


@pytest.fixture
async def two_workers(
    request: pytest.FixtureRequest, backend: Backend
) -> AsyncIterator[tuple[ResponseStore, ResponseStore]]:
    """Two stores on the same data (two workers on one SQLite file, two replicas on one Redis)."""
    settings = backend.configure(request, DEFAULT_TTL)
    a = await open_store(settings)
    b = await open_store(settings)
    yield a, b
    await a.aclose()
    await b.aclose()


def test_which_control_and_log_each_store_has(store: ResponseStore) -> None:
    inner = getattr(store, "inner", store)
    control, log = control_for(store), event_log_for(store)
    if isinstance(inner, SQLiteStore):
        assert isinstance(control, SQLiteControl) and isinstance(log, SQLiteEventLog)
    elif inner.backend_name == "memory":
        assert isinstance(control, InProcessControl) and isinstance(log, InProcessEventLog)
    else:
        assert isinstance(control, RedisControl)


@pytest.mark.parametrize("backend", SHARED, indirect=True)
async def test_control_across_workers(two_workers: tuple[ResponseStore, ResponseStore]) -> None:
    runner, other = (control_for(s) for s in two_workers)
    rid = make_record().id
    assert await runner.heartbeat(rid, 5) is False
    assert await other.state(rid) == ControlState(True, False)  # the other worker sees the lease
    await other.request_cancel(rid, 60)  # a cancel from the other worker
    assert await runner.heartbeat(rid, 5) is True  # reaches the runner at its next heartbeat
    assert await other.state(rid) == ControlState(True, True)
    await runner.release(rid)
    assert await other.state(rid) == ControlState(False, True)
    dead = make_record().id
    await runner.heartbeat(dead, 0.3)  # the runner dies: its lease is not renewed
    assert (await other.state(dead)).leased is True
    await asyncio.sleep(0.5)
    assert await other.state(dead) == ControlState(False, False)
    flagged = make_record().id
    await other.request_cancel(flagged, 0.3)  # a cancel flag expires too
    await asyncio.sleep(0.5)
    assert await runner.heartbeat(flagged, 5) is False


@pytest.mark.parametrize("backend", SHARED, indirect=True)
async def test_event_log_across_workers(two_workers: tuple[ResponseStore, ResponseStore]) -> None:
    writer, reader = (event_log_for(s) for s in two_workers)
    rid = make_record().id
    assert await reader.read(rid, -1, 10) == (False, [])
    await writer.append(rid, _events(0, 1), 60)
    assert await reader.read(rid, -1, 10) == (True, _events(0, 1))
    await writer.append(rid, _events(2), 60)
    assert await reader.read(rid, 0, 10) == (True, _events(1, 2))


async def test_sqlite_purge_drops_what_is_over(tmp_path: Path) -> None:
    store = await SQLiteStore.open(SQLiteSettings(path=str(tmp_path / "r.db")), ttl_seconds=DEFAULT_TTL)
    try:
        control, log = SQLiteControl(store), SQLiteEventLog(store)
        kept, over = make_record().id, make_record().id
        await control.heartbeat(kept, 60)
        await control.heartbeat(over, 0.1)
        await log.append(kept, _events(0, 1), 60)
        await log.append(over, _events(0, 1), 0.1)
        await asyncio.sleep(0.3)
        await store.purge_expired()

        def rows(conn: sqlite3.Connection) -> list[tuple[str, int]]:
            return [
                *conn.execute("SELECT response_id, 0 FROM bg_control"),
                *conn.execute("SELECT response_id, seq FROM bg_events ORDER BY seq"),
            ]

        assert await store.read(rows) == [(kept, 0), (kept, 0), (kept, 1)]
        assert await log.read(kept, -1, 10) == (True, _events(0, 1))
    finally:
        await store.aclose()


async def test_a_sqlite_file_without_the_background_tables_gains_them(tmp_path: Path) -> None:
    """A file of the same schema version written before background mode (no bg_* tables) opens, and
    the tables are created."""
    settings = SQLiteSettings(path=str(tmp_path / "r.db"))
    store = await SQLiteStore.open(settings, ttl_seconds=DEFAULT_TTL)
    record = make_record()
    await store.put(record)
    await store.aclose()
    with sqlite3.connect(settings.path) as conn:
        for table in ("bg_control", "bg_event_logs", "bg_events"):
            conn.execute(f"DROP TABLE {table}")
    conn.close()
    store = await SQLiteStore.open(settings, ttl_seconds=DEFAULT_TTL)
    try:
        assert await store.get(record.id) == record
        assert await SQLiteControl(store).heartbeat(record.id, 5) is False
        await SQLiteEventLog(store).append(record.id, _events(0), 60)
        assert await SQLiteEventLog(store).read(record.id, -1, 10) == (True, _events(0))
    finally:
        await store.aclose()
