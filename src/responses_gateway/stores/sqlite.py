"""The embedded, persistent store: one SQLite file in WAL mode; writes group-committed on one thread,
reads on a second, read-only connection so they never wait behind a write batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from sqlite3 import Connection
from sqlite3 import Error as SQLiteError
from typing import Any, TypeVar

from responses_gateway.config import SQLiteSettings
from responses_gateway.errors import StoreUnavailable
from responses_gateway.ids import response_id_of_item
from responses_gateway.stores import _sqlite_background, _sqlite_conv
from responses_gateway.stores import _sqlite_sql as sql
from responses_gateway.stores._sqlite_writer import Writer
from responses_gateway.stores.base import StoredResponse, find_item

__all__ = ["SQLiteStore"]

T = TypeVar("T")

# How much longer than needed an extended ancestor segment lives: a tenth of the TTL, at most an hour.
_SLACK_FRACTION = 0.1
_MAX_SLACK_SECONDS = 3600.0
_PURGE_BATCH = 500


@contextlib.contextmanager
def _map_errors() -> Iterator[None]:
    """The one place sqlite3 errors (and file-system ones, when creating the file) become StoreUnavailable."""
    try:
        yield
    except (SQLiteError, OSError) as exc:
        raise StoreUnavailable(f"sqlite store failed: {exc}") from exc


class SQLiteStore:
    """ResponseStore over one SQLite file: `await SQLiteStore.open(settings, ttl_seconds=...)`.

    Every write (put, delete, purge) is a job for the writer thread, which commits all the jobs waiting
    in its queue in one transaction: one fsync for many puts, each acknowledged after that commit.
    """

    backend_name = "sqlite"

    def __init__(
        self,
        path: str,
        writer: Writer,
        reader: Connection | None,
        reads: ThreadPoolExecutor,
        *,
        ttl_seconds: int,
        clock: Callable[[], float],
        conversation_ttl_seconds: int | None = None,
    ) -> None:
        self.path = path
        self._writer = writer
        self._reader = reader  # None for ":memory:" (nothing to share): reads go to the writer then
        self._reads = reads
        self._ttl = ttl_seconds
        self._slack = min(ttl_seconds * _SLACK_FRACTION, _MAX_SLACK_SECONDS)
        self._clock = clock
        self._closed = False
        self._purger: asyncio.Task[None] | None = None
        self.conversations = _sqlite_conv.SQLiteConversations(self, conversation_ttl_seconds)

    @classmethod
    async def open(
        cls,
        settings: SQLiteSettings,
        *,
        ttl_seconds: int,
        clock: Callable[[], float] = time.time,
        max_batch: int = 512,
        conversation_ttl_seconds: int | None = None,
    ) -> SQLiteStore:
        """Create the file (and its directories) if needed, and start the periodic purge of expired rows."""
        reads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-reader")
        path = settings.path
        conn: Connection | None = None
        try:
            with _map_errors():
                conn = await asyncio.to_thread(sql.connect, path)
                reader = (
                    None if path == ":memory:" else await asyncio.to_thread(sql.connect, path, reader=True)
                )
        except BaseException:
            if conn is not None:
                conn.close()
            reads.shutdown(wait=False)
            raise
        writer = Writer(conn, max_batch=max_batch)
        store = cls(
            path,
            writer,
            reader,
            reads,
            ttl_seconds=ttl_seconds,
            clock=clock,
            conversation_ttl_seconds=conversation_ttl_seconds,
        )
        store._purger = asyncio.create_task(store._purge_forever(settings.purge_interval_seconds))
        return store

    async def put(self, record: StoredResponse) -> None:
        await self._write(sql.put, record, self._clock(), self._ttl, self._slack)

    async def get(self, response_id: str, *, owner: str = "") -> StoredResponse | None:
        return await self._read(sql.get, response_id, owner, self._clock())

    async def get_history(self, response_id: str, *, owner: str = "") -> list[bytes] | None:
        return await self._read(sql.history, response_id, owner, self._clock())

    async def delete(self, response_id: str, *, owner: str = "") -> bool:
        return await self._write(sql.delete, response_id, owner, self._clock())

    async def get_item(self, item_id: str, *, owner: str = "") -> bytes | None:
        response_id = response_id_of_item(item_id)
        record = await self.get(response_id, owner=owner) if response_id else None
        return find_item(record, item_id) if record else None

    async def ping(self) -> None:
        await self._read(lambda conn: conn.execute("SELECT 1").fetchone())

    async def purge_expired(self) -> int:
        """Delete expired turns in small batches (so other writes interleave); return how many went."""
        total = 0
        while True:
            turns, segments = await self._write(sql.purge, self._clock(), _PURGE_BATCH)
            total += turns
            if turns < _PURGE_BATCH and segments < _PURGE_BATCH:
                break
        while True:
            # expired conversations go too (not counted: the count is of turns)
            conversations = await self._write(_sqlite_conv.purge, self._clock(), _PURGE_BATCH)
            if conversations < _PURGE_BATCH:
                break
        while True:
            # and background event logs and control rows that are over (not counted either)
            if await self._write(_sqlite_background.purge, self._clock(), _PURGE_BATCH) < _PURGE_BATCH:
                return total

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._purger is not None:
            self._purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purger
        try:
            with _map_errors():
                await self._writer.close()  # finishes the writes already queued
                if self._reader is not None:
                    await asyncio.get_running_loop().run_in_executor(self._reads, self._reader.close)
        finally:
            self._reads.shutdown(wait=False)

    def now(self) -> float:
        """The store's clock (the conversations' too)."""
        return self._clock()

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(conn, *args)` as a job of the writer (one transaction); errors are StoreUnavailable."""
        return await self._write(fn, *args)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(conn, *args)` on the reading connection; errors are StoreUnavailable."""
        return await self._read(fn, *args)

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise StoreUnavailable("sqlite store is closed")
        with _map_errors():
            return await self._writer.submit(fn, *args)

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        if self._reader is None:
            return await self._write(fn, *args)
        if self._closed:
            raise StoreUnavailable("sqlite store is closed")
        with _map_errors():
            return await asyncio.get_running_loop().run_in_executor(self._reads, fn, self._reader, *args)

    async def _purge_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            # A failing purge must not kill the loop; the next round retries.
            with contextlib.suppress(StoreUnavailable):
                await self.purge_expired()
