"""Background control (lease, cancel flag) and the event log in the SQLite file, so that every process
on the file (`serve --workers N`, or gateways sharing it) sees them: a cancel from any worker reaches
the runner, a dead runner's lease expires for all, and any worker replays a response's events.

Times are the store's clock (wall time: shared by the processes). Writes are jobs of the store's
writer (group-committed with the puts); reads go to its reading connection.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING

from responses_gateway.stores.control import ControlState
from responses_gateway.stores.events import LoggedEvent

if TYPE_CHECKING:
    from responses_gateway.stores.sqlite import SQLiteStore

__all__ = ["SCHEMA", "SQLiteControl", "SQLiteEventLog", "purge"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS bg_control (
    response_id TEXT PRIMARY KEY,
    lease_until REAL,              -- NULL: released
    cancel_until REAL              -- NULL: no cancel asked for
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bg_event_logs (
    response_id TEXT PRIMARY KEY,
    expires_at REAL NOT NULL       -- the log lives this long after its last append
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS bg_event_logs_expires_at ON bg_event_logs (expires_at);
CREATE TABLE IF NOT EXISTS bg_events (
    response_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (response_id, seq)
) WITHOUT ROWID;
"""

_HEARTBEAT = """
INSERT INTO bg_control (response_id, lease_until) VALUES (?, ?)
ON CONFLICT (response_id) DO UPDATE SET lease_until = excluded.lease_until
RETURNING cancel_until
"""
_CANCEL = """
INSERT INTO bg_control (response_id, cancel_until) VALUES (?, ?)
ON CONFLICT (response_id) DO UPDATE SET cancel_until = excluded.cancel_until
"""


def _heartbeat(conn: sqlite3.Connection, response_id: str, now: float, lease_until: float) -> bool:
    # fetchall: the statement runs to its end before the writer releases the job's savepoint
    ((cancel_until,),) = conn.execute(_HEARTBEAT, (response_id, lease_until)).fetchall()
    return cancel_until is not None and cancel_until >= now


def _cancel(conn: sqlite3.Connection, response_id: str, cancel_until: float) -> None:
    conn.execute(_CANCEL, (response_id, cancel_until))


def _release(conn: sqlite3.Connection, response_id: str) -> None:
    conn.execute("UPDATE bg_control SET lease_until = NULL WHERE response_id = ?", (response_id,))


def _state(conn: sqlite3.Connection, response_id: str, now: float) -> ControlState:
    row = conn.execute(
        "SELECT lease_until, cancel_until FROM bg_control WHERE response_id = ?", (response_id,)
    ).fetchone()
    lease, cancel = row if row is not None else (None, None)
    return ControlState(lease is not None and lease >= now, cancel is not None and cancel >= now)


class SQLiteControl:
    """`BackgroundControl` over the `bg_control` table: a heartbeat is one upsert that renews the
    lease and returns the cancel flag."""

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store

    async def heartbeat(self, response_id: str, lease_seconds: float) -> bool:
        now = self._store.now()
        return await self._store.write(_heartbeat, response_id, now, now + lease_seconds)

    async def request_cancel(self, response_id: str, keep_seconds: float) -> None:
        await self._store.write(_cancel, response_id, self._store.now() + keep_seconds)

    async def state(self, response_id: str) -> ControlState:
        return await self._store.read(_state, response_id, self._store.now())

    async def release(self, response_id: str) -> None:
        await self._store.write(_release, response_id)


def _append(
    conn: sqlite3.Connection, response_id: str, events: Sequence[LoggedEvent], now: float, expires_at: float
) -> None:
    row = conn.execute(
        "SELECT expires_at FROM bg_event_logs WHERE response_id = ?", (response_id,)
    ).fetchone()
    if row is not None and row[0] < now:  # expired, not purged yet: a new log
        conn.execute("DELETE FROM bg_events WHERE response_id = ?", (response_id,))
        row = None
    if row is None and not events:
        return
    conn.execute(
        "INSERT INTO bg_event_logs (response_id, expires_at) VALUES (?, ?)"
        " ON CONFLICT (response_id) DO UPDATE SET expires_at = excluded.expires_at",
        (response_id, expires_at),
    )
    (last,) = conn.execute(
        "SELECT COALESCE(MAX(seq), -1) FROM bg_events WHERE response_id = ?", (response_id,)
    ).fetchone()
    conn.executemany(  # an event already kept (a retried batch) is skipped
        "INSERT INTO bg_events (response_id, seq, type, data) VALUES (?, ?, ?, ?)",
        [(response_id, e.sequence_number, e.type, e.data) for e in events if e.sequence_number > last],
    )


def _read(
    conn: sqlite3.Connection, response_id: str, after: int, limit: int, now: float
) -> tuple[bool, list[LoggedEvent]]:
    # one statement: one read snapshot for the log's life and its events
    rows = conn.execute(
        "SELECT e.seq, e.type, e.data FROM bg_event_logs AS l"
        " LEFT JOIN bg_events AS e ON e.response_id = l.response_id AND e.seq > ?"
        " WHERE l.response_id = ? AND l.expires_at >= ? ORDER BY e.seq LIMIT ?",
        (after, response_id, now, max(1, limit)),
    ).fetchall()
    if not rows:
        return False, []
    events = [LoggedEvent(seq, type_, bytes(data)) for seq, type_, data in rows[:limit] if seq is not None]
    return True, events


class SQLiteEventLog:
    """`EventLog` over `bg_events` (one row per event, keyed by (response, sequence number)) and
    `bg_event_logs` (each log's expiry): an append is one writer job per batch, a read one range read."""

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store

    async def append(self, response_id: str, events: Sequence[LoggedEvent], keep_seconds: float) -> None:
        now = self._store.now()
        await self._store.write(_append, response_id, list(events), now, now + keep_seconds)

    async def read(self, response_id: str, after: int, limit: int) -> tuple[bool, list[LoggedEvent]]:
        return await self._store.read(_read, response_id, after, limit, self._store.now())


_PURGE_LOGS = "SELECT response_id FROM bg_event_logs WHERE expires_at < ? LIMIT ?"
_PURGE_CONTROL = """
DELETE FROM bg_control WHERE response_id IN (
    SELECT response_id FROM bg_control
    WHERE COALESCE(lease_until, 0) < :now AND COALESCE(cancel_until, 0) < :now LIMIT :batch
)
"""


def purge(conn: sqlite3.Connection, now: float, batch: int) -> int:
    """Delete up to `batch` expired event logs (with their events) and control rows whose lease and
    cancel flag are both over; how many logs and rows went."""
    gone = [row[0] for row in conn.execute(_PURGE_LOGS, (now, batch))]
    conn.executemany("DELETE FROM bg_events WHERE response_id = ?", [(rid,) for rid in gone])
    conn.executemany("DELETE FROM bg_event_logs WHERE response_id = ?", [(rid,) for rid in gone])
    controls: int = conn.execute(_PURGE_CONTROL, {"now": now, "batch": batch}).rowcount
    return len(gone) + controls
