"""Read-only views of a store for the inspector (`responses-gateway inspect` and `/ui`): its health and
size, the turns of one thread, and an owner's recent responses, each as cheap as the layout allows.

Every view answers for one owner: another owner's turns are left out, and a thread asked for by
another owner's response id is None, exactly as an unknown id (docs/INSPECT.md lists the costs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from responses_gateway.stores.base import ResponseStore

__all__ = ["RECENT_WINDOW", "Health", "StoreInspector", "Thread", "Turn", "inspector_for"]

Health = dict[str, object]  # JSON-ready: str, int, float, bool, None, lists and dicts of them
RECENT_WINDOW = 100_000  # SQLite and memory look for recent responses among the newest this many turns


@dataclass(frozen=True, slots=True)
class Turn:
    """One stored turn as the inspector shows it; a tombstone has `deleted` and empty blobs."""

    id: str
    parent: str | None
    created_at: int
    deleted: bool
    response: bytes
    input_items: bytes
    seq: int = 0  # orders turns of the same second where the store knows (SQLite: insertion order)


@dataclass(frozen=True, slots=True)
class Thread:
    """The owner's turns of one conversation thread (any order), and how they were found.

    `complete` is False when the search stopped at a bound (`method` says which): turns may be missing.
    """

    turns: list[Turn]
    complete: bool
    method: str


class StoreInspector(Protocol):
    """What the inspector asks of a backend; every method may raise StoreUnavailable."""

    backend: str

    async def health(self) -> Health: ...

    async def thread(self, response_id: str, owner: str) -> Thread | None:
        """Every turn of the owner's thread holding `response_id` (itself included, even deleted), or
        None when the id is unknown, expired or another owner's."""

    async def recent(self, owner: str, limit: int) -> list[Turn]:
        """Up to `limit` of the owner's live (not deleted) responses, newest first."""


def inspector_for(store: ResponseStore) -> StoreInspector:
    """The inspector of an open store (wrappers such as InstrumentedStore are looked through)."""
    inner: object = store
    while hasattr(inner, "inner"):
        inner = inner.inner
    from responses_gateway.stores.memory import MemoryStore
    from responses_gateway.stores.sqlite import SQLiteStore

    if isinstance(inner, MemoryStore):
        from responses_gateway.stores._inspect_memory import MemoryInspector

        return MemoryInspector(inner)
    if isinstance(inner, SQLiteStore):
        from responses_gateway.stores._inspect_sqlite import SQLiteInspector

        return SQLiteInspector(inner.path, inner.read)
    from responses_gateway.stores.redis import RedisStore

    if isinstance(inner, RedisStore):
        from responses_gateway.stores._inspect_redis import RedisInspector

        return RedisInspector(inner)
    raise TypeError(f"no inspector for {type(inner).__name__}")
