"""The in-process store: a bounded, TTL-aware OrderedDict of encoded records, for one event loop.

Nothing here awaits, so every method runs to completion without interleaving on the event loop.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from responses_gateway.ids import response_id_of_item
from responses_gateway.stores.base import (
    ChainIncomplete,
    Item,
    StoredResponse,
    decode_history,
    decode_parts,
    encode_parts,
    find_item,
    tombstone,
)

__all__ = ["MemoryStore"]


@dataclass(slots=True)
class _Entry:
    # The record is kept encoded: a caller mutating what it got back cannot change the store.
    meta: bytes
    history: bytes
    parent: str | None
    owner: str
    deleted: bool
    expires_at: float


class MemoryStore:
    """Keeps at most `max_responses` records; when full, drops the least recently written-or-extended.

    A put moves the new record and all its ancestors to the most-recent end (it extends their expiry),
    so a conversation in use outlives idle ones, and the front of the dict is also the next to expire.
    """

    backend_name = "memory"

    def __init__(
        self, max_responses: int, ttl_seconds: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_responses < 1:
            raise ValueError("max_responses must be at least 1")
        self._max = max_responses
        self._ttl = ttl_seconds
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def put(self, record: StoredResponse) -> None:
        now = self._clock()
        expires_at = now + self._ttl
        self._purge_front(now)
        old = self._entries.get(record.id)
        meta, history = encode_parts(record)
        self._entries[record.id] = _Entry(
            meta=meta,
            history=history,
            parent=record.previous_response_id,
            owner=record.owner,
            deleted=record.deleted,
            expires_at=max(expires_at, old.expires_at) if old else expires_at,
        )
        self._entries.move_to_end(record.id)
        self._extend_ancestors(record, now, expires_at)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    async def get(self, response_id: str, *, owner: str = "") -> StoredResponse | None:
        entry = self._live(response_id, owner)
        return decode_parts(entry.meta, entry.history) if entry and not entry.deleted else None

    async def get_chain(self, response_id: str, *, owner: str = "") -> list[StoredResponse] | None:
        head = self._live(response_id, owner)
        if head is None or head.deleted:
            return None
        now = self._clock()
        chain = [head]
        seen = {response_id}
        parent = head.parent
        while parent is not None:
            entry = self._entries.get(parent)
            if entry is None or entry.expires_at < now or parent in seen:
                raise ChainIncomplete(response_id, parent)
            if entry.owner != owner:
                return None  # never hand out another owner's turns, even as history
            seen.add(parent)
            chain.append(entry)
            parent = entry.parent
        return [decode_history(e.history, e.owner) for e in reversed(chain) if not e.deleted]

    async def delete(self, response_id: str, *, owner: str = "") -> bool:
        entry = self._live(response_id, owner)
        if entry is None or entry.deleted:
            return False
        entry.meta, entry.history = encode_parts(tombstone(decode_parts(entry.meta, entry.history)))
        entry.deleted = True
        return True

    async def get_item(self, item_id: str, *, owner: str = "") -> Item | None:
        response_id = response_id_of_item(item_id)
        record = await self.get(response_id, owner=owner) if response_id else None
        return find_item(record, item_id) if record else None

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        self._entries.clear()

    def _live(self, response_id: str, owner: str) -> _Entry | None:
        entry = self._entries.get(response_id)
        if entry is None or entry.owner != owner or entry.expires_at < self._clock():
            return None
        return entry

    def _extend_ancestors(self, record: StoredResponse, now: float, expires_at: float) -> None:
        # Live ancestors only: an expired one stays gone (its chain is already incomplete).
        seen = {record.id}
        parent = record.previous_response_id
        while parent is not None and parent not in seen:
            entry = self._entries.get(parent)
            if entry is None or entry.expires_at < now:
                break
            seen.add(parent)
            entry.expires_at = max(entry.expires_at, expires_at)
            self._entries.move_to_end(parent)
            parent = entry.parent
        # Keep the new record the most recent one, after the ancestors just moved.
        self._entries.move_to_end(record.id)

    def _purge_front(self, now: float) -> None:
        # With one TTL per store, order of write-or-extend is order of expiry: expired entries are in front.
        while self._entries:
            entry = next(iter(self._entries.values()))
            if entry.expires_at >= now:
                break
            self._entries.popitem(last=False)
