"""The in-process store: bounded, TTL-aware, for one event loop; histories kept as per-branch segments.

Nothing here awaits, so every method runs to completion without interleaving on the event loop.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count
from typing import cast

from responses_gateway.ids import response_id_of_item
from responses_gateway.stores._memory_conv import MemoryConversations
from responses_gateway.stores.base import ChainIncomplete, StoredResponse, find_item

__all__ = ["MemoryStore"]

log = logging.getLogger("responses_gateway.stores")

_DELETED = b""  # the chat of a tombstone: left out of every history (a real chat is at least `[]`)


@dataclass(slots=True, eq=False)
class _Segment:
    """An append-only run of turns of one owner, each the child of the one before.

    A child of the tip appends; a child of an earlier turn starts a new segment at (parent, offset):
    its history is the parent's first `offset` turns, then its own. Expiry is per segment (every turn
    of a segment lives as long as the newest turn of it or of a descendant segment).
    """

    key: int
    owner: str
    parent: _Segment | None
    offset: int  # how many of the parent segment's turns precede this one's
    missing: str | None  # the parent's id when it was already gone at the first put
    expires_at: float
    ids: list[str] = field(default_factory=list)
    # None: a turn that was lost (evicted or purged); _DELETED: a tombstone's.
    chats: list[bytes | None] = field(default_factory=list)
    deleted: int = 0  # how many chats are _DELETED (only then does a read filter)
    lost: int = 0  # how many are None (only then does a read search for one)
    evict_next: int = 0  # eviction takes turns in the order they were appended


@dataclass(slots=True)
class _Entry:
    # Bytes only: a caller cannot change what the store keeps through what it got back.
    segment: _Segment
    index: int
    parent: str | None
    response: bytes
    input_items: bytes
    created_at: int


def _size(entry: _Entry) -> int:
    """The stored bytes of a record: its response, input items and chat."""
    chat = entry.segment.chats[entry.index]
    return len(entry.response) + len(entry.input_items) + (len(chat) if chat else 0)


class MemoryStore:
    """Keeps at most `max_responses` records and `max_bytes` stored bytes (response + input items +
    chat of every record); beyond either, drops the least recently written-or-extended.
    A record larger than `max_bytes` on its own is not kept (a warning says so).

    A put moves its segment and every ancestor segment to the most-recent end (it extends their expiry),
    so a conversation in use outlives idle ones, and the front is also the next to expire. Evicting a
    turn makes every history through it ChainIncomplete, never shorter.
    """

    backend_name = "memory"

    def __init__(
        self,
        max_responses: int,
        ttl_seconds: int,
        *,
        max_bytes: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        conversation_ttl_seconds: int | None = None,
        max_conversation_bytes: int | None = None,
    ) -> None:
        if max_responses < 1:
            raise ValueError("max_responses must be at least 1")
        if max_bytes is not None and max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        self._max = max_responses
        self._max_bytes = max_bytes
        self._bytes = 0  # the stored bytes of every record kept
        self._ttl = ttl_seconds
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._segments: OrderedDict[int, _Segment] = OrderedDict()  # least recently extended first
        self._keys = count()
        # conversations have their own byte bound (max_conversation_bytes), apart from the responses'
        self.conversations = MemoryConversations(
            conversation_ttl_seconds, clock, max_bytes=max_conversation_bytes
        )

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def stored_bytes(self) -> int:
        """The stored bytes of every record kept (what `max_bytes` bounds)."""
        return self._bytes

    async def put(self, record: StoredResponse) -> None:
        now = self._clock()
        self._purge_front(now)
        old = self._entries.get(record.id)
        if old is not None and old.segment.expires_at >= now:
            self._replace(old, record)
            segment = old.segment
        else:
            if old is not None:
                self._drop(record.id)
            segment = self._append(record, now)
        self._extend(segment, now)
        while len(self._entries) > self._max:
            self._evict_one()
        if self._max_bytes is not None and self._bytes > self._max_bytes:
            self._evict_bytes(record, self._max_bytes)

    def _evict_bytes(self, record: StoredResponse, max_bytes: int) -> None:
        while self._bytes > max_bytes and self._entries:
            self._evict_one()
        if record.id not in self._entries:
            size = len(record.response) + len(record.input_items) + len(record.chat)
            log.warning(
                "memory store: response %s (%d bytes) is larger than response_api.memory.max_bytes "
                "(%d): not kept",
                record.id,
                size,
                max_bytes,
            )

    async def get(self, response_id: str, *, owner: str = "") -> StoredResponse | None:
        entry = self._live(response_id, owner)
        if entry is None:
            return None
        chat = entry.segment.chats[entry.index]
        if not chat:
            return None
        return StoredResponse(
            id=response_id,
            previous_response_id=entry.parent,
            response=entry.response,
            input_items=entry.input_items,
            chat=chat,
            owner=owner,
            created_at=entry.created_at,
        )

    async def get_history(self, response_id: str, *, owner: str = "") -> list[bytes] | None:
        head = self._live(response_id, owner)
        if head is None or not head.segment.chats[head.index]:
            return None
        now = self._clock()
        parts: list[list[bytes | None]] = []
        segment: _Segment | None = head.segment
        length = head.index + 1
        while segment is not None:  # one step per branch point, never per turn
            if segment.lost or segment.expires_at < now:
                self._raise_lost(response_id, segment, length, now)
            if segment.owner != owner:
                return None  # never hand out another owner's turns, even as history
            chats = segment.chats[:length]
            parts.append([c for c in chats if c] if segment.deleted else chats)
            if segment.missing is not None:
                raise ChainIncomplete(response_id, segment.missing)
            length = segment.offset
            segment = segment.parent
        history: list[bytes] = []
        for part in reversed(parts):
            history.extend(cast("list[bytes]", part))  # lost (None) chats were ruled out above
        return history

    async def delete(self, response_id: str, *, owner: str = "") -> bool:
        entry = self._live(response_id, owner)
        if entry is None or not entry.segment.chats[entry.index]:
            return False
        self._bytes -= _size(entry)
        entry.segment.chats[entry.index] = _DELETED
        entry.segment.deleted += 1
        entry.response = entry.input_items = b""
        return True

    async def get_item(self, item_id: str, *, owner: str = "") -> bytes | None:
        response_id = response_id_of_item(item_id)
        record = await self.get(response_id, owner=owner) if response_id else None
        return find_item(record, item_id) if record else None

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        self._entries.clear()
        self._segments.clear()
        self._bytes = 0
        self.conversations.clear()

    def evict(self, response_id: str) -> None:
        """Drop one record as the bound does (its descendants' histories become ChainIncomplete)."""
        self._drop(response_id)

    def _live(self, response_id: str, owner: str) -> _Entry | None:
        entry = self._entries.get(response_id)
        if entry is None or entry.segment.owner != owner or entry.segment.expires_at < self._clock():
            return None
        return entry

    def _replace(self, entry: _Entry, record: StoredResponse) -> None:
        # A retried put: same place in the chain, content replaced (a tombstone comes back).
        segment = entry.segment
        self._bytes -= _size(entry)
        if not segment.chats[entry.index]:
            segment.deleted -= 1
        segment.chats[entry.index] = record.chat
        entry.response, entry.input_items = record.response, record.input_items
        entry.created_at = record.created_at
        self._bytes += _size(entry)

    def _append(self, record: StoredResponse, now: float) -> _Segment:
        parent_id = record.previous_response_id
        parent = self._entries.get(parent_id) if parent_id is not None else None
        if parent is not None and parent.segment.expires_at < now:
            parent = None
        if parent is None:
            segment = self._new_segment(record.owner, None, 0, parent_id, now)
        else:
            tip = parent.segment
            if parent.index == len(tip.ids) - 1 and tip.owner == record.owner:
                segment = tip
            else:
                segment = self._new_segment(record.owner, tip, parent.index + 1, None, now)
        segment.ids.append(record.id)
        segment.chats.append(record.chat)
        entry = _Entry(
            segment=segment,
            index=len(segment.ids) - 1,
            parent=parent_id,
            response=record.response,
            input_items=record.input_items,
            created_at=record.created_at,
        )
        self._entries[record.id] = entry
        self._bytes += _size(entry)
        return segment

    def _new_segment(
        self, owner: str, parent: _Segment | None, offset: int, missing: str | None, now: float
    ) -> _Segment:
        segment = _Segment(
            key=next(self._keys),
            owner=owner,
            parent=parent,
            offset=offset,
            missing=missing,
            expires_at=now + self._ttl,
        )
        self._segments[segment.key] = segment
        return segment

    def _extend(self, segment: _Segment, now: float) -> None:
        # One step per segment on the path, live ones only (an expired one stays gone: its chain is
        # already incomplete). The path moves to the most-recent end, the written segment last.
        path: list[_Segment] = []
        node: _Segment | None = segment
        while node is not None and node.key in self._segments and node.expires_at >= now:
            node.expires_at = max(node.expires_at, now + self._ttl)
            path.append(node)
            node = node.parent
        for node in reversed(path):
            self._segments.move_to_end(node.key)

    def _evict_one(self) -> None:
        segment = next(iter(self._segments.values()))
        while segment.evict_next < len(segment.ids):
            response_id = segment.ids[segment.evict_next]
            segment.evict_next += 1
            entry = self._entries.get(response_id)
            if entry is not None and entry.segment is segment:
                self._drop(response_id)
                return
        self._segments.pop(segment.key, None)  # nothing left to evict in it

    def _drop(self, response_id: str) -> None:
        entry = self._entries.pop(response_id, None)
        if entry is None:
            return
        self._bytes -= _size(entry)
        segment = entry.segment
        if segment.chats[entry.index] == _DELETED:
            segment.deleted -= 1
        segment.chats[entry.index] = None
        segment.lost += 1
        if segment.lost == len(segment.ids):
            self._segments.pop(segment.key, None)

    def _purge_front(self, now: float) -> None:
        # One TTL per store: order of write-or-extend is order of expiry, so expired segments are in front.
        while self._segments:
            segment = next(iter(self._segments.values()))
            if segment.expires_at >= now:
                break
            for response_id in segment.ids:
                entry = self._entries.get(response_id)
                if entry is not None and entry.segment is segment:
                    self._drop(response_id)
            self._segments.pop(segment.key, None)

    @staticmethod
    def _raise_lost(response_id: str, segment: _Segment, length: int, now: float) -> None:
        """Raise ChainIncomplete for the turn nearest the head that is gone from `segment[:length]`."""
        if segment.expires_at < now:
            raise ChainIncomplete(response_id, segment.ids[length - 1])
        for index in range(length - 1, -1, -1):
            if segment.chats[index] is None:
                raise ChainIncomplete(response_id, segment.ids[index])
