"""Group commit for the SQLite store: one thread runs every write, many per transaction and fsync.

A put is acknowledged (its future resolved) only after the COMMIT of the transaction holding it.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["Writer"]

T = TypeVar("T")
Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]


@dataclass(slots=True)
class _Job:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


class Writer:
    """Owns the writing connection. Each batch is every job waiting in the queue (up to `max_batch`):
    BEGIN IMMEDIATE, each job in its own SAVEPOINT (a job that fails is rolled back alone and fails
    alone), one COMMIT (one fsync with synchronous=FULL), then every job of the batch is settled. If
    the BEGIN or the COMMIT fails, the whole batch is rolled back and every job in it fails."""

    def __init__(self, conn: sqlite3.Connection, *, max_batch: int = 512) -> None:
        self._conn = conn
        self._max_batch = max_batch
        self.commits = 0  # transactions committed (with `jobs`: how well puts are grouped)
        self.jobs = 0
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="sqlite-writer", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Queue `fn(conn, *args)`; the future settles after the transaction that ran it committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Job(fn, args, future, loop))
        return future

    async def close(self) -> None:
        """Finish the jobs already queued, then close the connection and end the thread."""
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)

    # Below: runs on the writer thread only.

    def _loop(self) -> None:
        try:
            stopping = False
            while not stopping:
                first = self._queue.get()
                if first is None:
                    break
                batch = [first]
                while len(batch) < self._max_batch:
                    try:
                        job = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if job is None:
                        stopping = True
                        break
                    batch.append(job)
                self._settle(self._run_batch(batch))
        finally:
            self._conn.close()

    def _run_batch(self, batch: list[_Job]) -> list[tuple[_Job, Any, BaseException | None]]:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            return [(job, None, exc) for job in batch]
        done: list[tuple[_Job, Any, BaseException | None]] = []
        try:
            for job in batch:
                conn.execute("SAVEPOINT job")
                try:
                    value = job.fn(conn, *job.args)
                except Exception as exc:  # the job's own failure, handed to its caller
                    conn.execute("ROLLBACK TO job")
                    done.append((job, None, exc))
                else:
                    done.append((job, value, None))
                conn.execute("RELEASE job")
            conn.execute("COMMIT")
            self.commits += 1
            self.jobs += len(batch)
        except sqlite3.Error as exc:  # the transaction itself failed: nothing in it is acknowledged
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            return [(job, None, exc) for job in batch]
        return done

    @staticmethod
    def _settle(outcomes: list[tuple[_Job, Any, BaseException | None]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
        for job, value, exc in outcomes:
            by_loop.setdefault(job.loop, []).append((job.future, value, exc))
        for loop, items in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
                loop.call_soon_threadsafe(_resolve, items)


def _resolve(items: list[Outcome]) -> None:
    for future, value, exc in items:
        if future.done():  # the caller was cancelled; its write committed all the same
            continue
        if exc is None:
            future.set_result(value)
        else:
            future.set_exception(exc)
