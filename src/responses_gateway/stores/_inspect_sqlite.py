"""The SQLite store's inspector: queries on the reading connection of a running store, or on a
read-only connection of its own (`responses-gateway inspect`, which must not write to the file)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from responses_gateway import ids
from responses_gateway.errors import StoreUnavailable
from responses_gateway.stores._sqlite_sql import SCHEMA_VERSION
from responses_gateway.stores.inspect import RECENT_WINDOW, Health, Thread, Turn

T = TypeVar("T")
Read = Callable[..., Awaitable[Any]]  # read(fn, *args) runs fn(conn, *args) on a reading connection
MAX_THREAD_TURNS = 10_000  # a thread larger than this is shown in part (`complete` false)

_COLUMNS = "r.id, r.parent, r.created_at, r.deleted, r.response, r.input_items, r.rowid"
# A thread's ids share their prefix `resp_<tag>`: a range of the primary key, read through its index.
_THREAD = f"""
SELECT {_COLUMNS} FROM responses AS r JOIN segments AS s ON s.id = r.segment
WHERE r.id >= :low AND r.id < :high AND r.owner = :owner AND s.expires_at >= :now
LIMIT :limit
"""
_ASKED = """
SELECT 1 FROM responses AS r JOIN segments AS s ON s.id = r.segment
WHERE r.id = ? AND r.owner = ? AND s.expires_at >= ?
"""
# Rowids grow with every insert: the newest turns are the highest, scanned from the top down, no
# index needed (nothing added to the write path); only the newest RECENT_WINDOW turns are looked at.
_RECENT = f"""
SELECT {_COLUMNS} FROM responses AS r JOIN segments AS s ON s.id = r.segment
WHERE r.rowid > (SELECT COALESCE(MAX(rowid), 0) FROM responses) - :window
    AND r.owner = :owner AND r.deleted = 0 AND s.expires_at >= :now
ORDER BY r.rowid DESC LIMIT :limit
"""


def _turn(row: tuple[Any, ...]) -> Turn:
    rid, parent, created_at, deleted, response, input_items, rowid = row
    return Turn(rid, parent, created_at, bool(deleted), bytes(response), bytes(input_items), rowid)


def _thread(conn: sqlite3.Connection, response_id: str, owner: str, now: float) -> list[Turn] | None:
    if conn.execute(_ASKED, (response_id, owner, now)).fetchone() is None:
        return None
    tag = ids.thread_tag(response_id)
    low = f"resp_{tag}" if tag else response_id
    high = f"{low}g" if tag else f"{response_id}\x00"  # hex digits sort below "g"
    params = {"low": low, "high": high, "owner": owner, "now": now, "limit": MAX_THREAD_TURNS}
    return [_turn(row) for row in conn.execute(_THREAD, params)]


def _recent(conn: sqlite3.Connection, owner: str, limit: int, now: float) -> list[Turn]:
    params = {"window": RECENT_WINDOW, "owner": owner, "now": now, "limit": limit}
    return [_turn(row) for row in conn.execute(_RECENT, params)]


def _counts(conn: sqlite3.Connection, now: float) -> dict[str, int]:
    def one(sql: str, *args: object) -> int:
        return int(conn.execute(sql, args).fetchone()[0] or 0)

    return {
        "responses": one("SELECT COUNT(*) FROM responses"),
        "deleted": one("SELECT COUNT(*) FROM responses WHERE deleted = 1"),
        "segments": one("SELECT COUNT(*) FROM segments"),
        "expired_segments": one("SELECT COUNT(*) FROM segments WHERE expires_at < ?", now),
        "conversations": one("SELECT COUNT(*) FROM conversations"),
        "page_size": one("PRAGMA page_size"),
        "page_count": one("PRAGMA page_count"),
        "freelist_count": one("PRAGMA freelist_count"),
    }


def _file_sizes(path: str) -> dict[str, int]:
    sizes = {}
    for suffix in ("", "-wal", "-shm"):
        try:
            sizes[f"file_bytes{suffix.replace('-', '_')}"] = os.path.getsize(path + suffix)
        except OSError:
            sizes[f"file_bytes{suffix.replace('-', '_')}"] = 0
    return sizes


class SQLiteInspector:
    """Inspects the SQLite file at `path` through `read` (a running store's reading connection, or
    `open_read_only(path)`'s)."""

    backend = "sqlite"

    def __init__(self, path: str, read: Read) -> None:
        self.path = path
        self._read = read

    async def health(self) -> Health:
        counts: dict[str, int] = await self._read(_counts, time.time())
        files = await asyncio.to_thread(_file_sizes, self.path)
        return {"backend": self.backend, "ok": True, "path": self.path, **files, **counts}

    async def thread(self, response_id: str, owner: str) -> Thread | None:
        turns: list[Turn] | None = await self._read(_thread, response_id, owner, time.time())
        if turns is None:
            return None
        complete = len(turns) < MAX_THREAD_TURNS
        return Thread(
            turns, complete, "one range read of the responses' primary key (the thread's id prefix)"
        )

    async def recent(self, owner: str, limit: int) -> list[Turn]:
        turns: list[Turn] = await self._read(_recent, owner, limit, time.time())
        return turns


class ReadOnlyFile:
    """A read-only connection to an existing SQLite store file, for `responses-gateway inspect`."""

    def __init__(self, path: str) -> None:
        if path == ":memory:":
            raise StoreUnavailable(
                "sqlite store: path ':memory:' lives inside the gateway process and cannot be inspected "
                "from another; use /ui (ui.enabled: true) on the gateway"
            )
        if not os.path.isfile(path):
            raise StoreUnavailable(f"sqlite store: no database file at {path}")
        try:
            self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            self.conn.execute("PRAGMA busy_timeout = 5000")
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"sqlite store: cannot read {path}: {exc}") from exc
        if version != SCHEMA_VERSION:
            self.conn.close()
            raise StoreUnavailable(
                f"sqlite store: {path} has schema {version}, this version reads {SCHEMA_VERSION}"
            )
        self._lock = asyncio.Lock()

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        async with self._lock:  # one connection: one query at a time
            try:
                return await asyncio.to_thread(fn, self.conn, *args)
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"sqlite store failed: {exc}") from exc

    def close(self) -> None:
        self.conn.close()
