"""Conversations in process memory (the memory store's): nothing awaits, so every call is atomic.

Bounded by bytes (`max_bytes`: the item JSON and metadata of every conversation kept): beyond it, whole
conversations are evicted, least recently written first (a write: create, metadata update, append, item
delete), never a part of one. A write that would take one conversation over the bound on its own is
refused with ConversationTooLarge (nothing changes, nothing is evicted).
"""

from __future__ import annotations

import bisect
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from responses_gateway.stores.conversations import (
    ConversationItem,
    ConversationTooLarge,
    ItemsPage,
    Order,
    StoredConversation,
)

__all__ = ["MAX_BYTES_SETTING", "MemoryConversations"]

MAX_BYTES_SETTING = "response_api.memory.max_conversation_bytes"


@dataclass(slots=True)
class _Conversation:
    record: StoredConversation
    expires_at: float | None
    size: int = 0  # the bytes it holds: its metadata and the JSON of its live items
    next_seq: int = 0
    seqs: list[int] = field(default_factory=list)  # ascending positions of the live items
    items: dict[int, ConversationItem] = field(default_factory=dict)  # position -> item
    positions: dict[str, int] = field(default_factory=dict)  # item id -> position


class MemoryConversations:
    def __init__(
        self,
        ttl_seconds: int | None,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_bytes: int | None = None,
    ) -> None:
        if max_bytes is not None and max_bytes < 1:
            raise ValueError("max_conversation_bytes must be at least 1")
        self._ttl = ttl_seconds
        self._clock = clock
        self._max_bytes = max_bytes
        self._bytes = 0  # the sum of every kept conversation's size
        # least recently written first: the eviction order, and with one TTL for all, the expiry order
        self._conversations: OrderedDict[str, _Conversation] = OrderedDict()

    def __len__(self) -> int:
        """Conversations kept (expired ones included until a write or a read drops them)."""
        return len(self._conversations)

    @property
    def stored_bytes(self) -> int:
        """The bytes of every conversation kept (what `max_bytes` bounds)."""
        return self._bytes

    def clear(self) -> None:
        self._conversations.clear()
        self._bytes = 0

    def _remove(self, conversation_id: str) -> None:
        conv = self._conversations.pop(conversation_id, None)
        if conv is not None:
            self._bytes -= conv.size

    def _check(self, conversation_id: str, size: int) -> None:
        """Refuse a write that would leave one conversation over the bound (before changing anything)."""
        if self._max_bytes is not None and size > self._max_bytes:
            raise ConversationTooLarge(conversation_id, size, self._max_bytes, MAX_BYTES_SETTING)

    def _live(self, conversation_id: str, owner: str) -> _Conversation | None:
        conv = self._conversations.get(conversation_id)
        if conv is None:
            return None
        if conv.expires_at is not None and conv.expires_at < self._clock():
            self._remove(conversation_id)
            return None
        return conv if conv.record.owner == owner else None

    def _touch(self, conv: _Conversation) -> None:
        """After a write: `conv` becomes the most recent; expired ones go, then the least recently
        written until the bound holds (never `conv` itself: _check kept it within the bound)."""
        self._conversations.move_to_end(conv.record.id)
        if self._ttl is not None:
            now = self._clock()
            conv.expires_at = now + self._ttl
            while self._conversations:  # drop the expired ones, oldest first (each write does a little)
                oldest = next(iter(self._conversations.values()))
                if oldest.expires_at is None or oldest.expires_at >= now:
                    break
                self._remove(oldest.record.id)
        if self._max_bytes is not None:
            while self._bytes > self._max_bytes:
                oldest = next(iter(self._conversations.values()))
                if oldest is conv:
                    break
                self._remove(oldest.record.id)

    @staticmethod
    def _size_of(items: Sequence[ConversationItem]) -> int:
        return sum(len(item) for _, item in items)

    def _add(self, conv: _Conversation, items: Sequence[ConversationItem]) -> None:
        added = self._size_of(items)
        conv.size += added
        self._bytes += added
        for item in items:
            seq = conv.next_seq
            conv.next_seq += 1
            conv.seqs.append(seq)
            conv.items[seq] = item
            conv.positions[item[0]] = seq

    async def create(self, conversation: StoredConversation, items: Sequence[ConversationItem]) -> None:
        size = len(conversation.metadata) + self._size_of(items)
        self._check(conversation.id, size)
        self._remove(conversation.id)
        conv = _Conversation(conversation, None, size=len(conversation.metadata))
        self._bytes += conv.size
        self._conversations[conversation.id] = conv
        self._add(conv, items)
        self._touch(conv)

    async def get(self, conversation_id: str, *, owner: str) -> StoredConversation | None:
        conv = self._live(conversation_id, owner)
        return conv.record if conv else None

    async def update(self, conversation_id: str, metadata: bytes, *, owner: str) -> StoredConversation | None:
        conv = self._live(conversation_id, owner)
        if conv is None:
            return None
        r = conv.record
        change = len(metadata) - len(r.metadata)
        self._check(conversation_id, conv.size + change)
        conv.record = StoredConversation(r.id, r.owner, r.created_at, metadata)
        conv.size += change
        self._bytes += change
        self._touch(conv)
        return conv.record

    async def delete(self, conversation_id: str, *, owner: str) -> bool:
        if self._live(conversation_id, owner) is None:
            return False
        self._remove(conversation_id)
        return True

    async def append(self, conversation_id: str, items: Sequence[ConversationItem], *, owner: str) -> bool:
        conv = self._live(conversation_id, owner)
        if conv is None:
            return False
        self._check(conversation_id, conv.size + self._size_of(items))
        self._add(conv, items)
        self._touch(conv)
        return True

    async def list_items(
        self,
        conversation_id: str,
        *,
        owner: str,
        limit: int | None,
        order: Order = "asc",
        after: str | None = None,
    ) -> ItemsPage | None:
        conv = self._live(conversation_id, owner)
        if conv is None:
            return None
        seqs = conv.seqs
        if order == "asc":
            start = 0
            if after is not None:
                if after not in conv.positions:
                    return ItemsPage(after_missing=True)
                start = bisect.bisect_right(seqs, conv.positions[after])
            end = len(seqs) if limit is None else min(len(seqs), start + limit)
            chosen = seqs[start:end]
            has_more = end < len(seqs)
        else:
            stop = len(seqs)
            if after is not None:
                if after not in conv.positions:
                    return ItemsPage(after_missing=True)
                stop = bisect.bisect_left(seqs, conv.positions[after])
            begin = 0 if limit is None else max(0, stop - limit)
            chosen = seqs[begin:stop][::-1]
            has_more = begin > 0
        return ItemsPage([conv.items[s] for s in chosen], has_more)

    async def get_item(self, conversation_id: str, item_id: str, *, owner: str) -> bytes | None:
        conv = self._live(conversation_id, owner)
        if conv is None or item_id not in conv.positions:
            return None
        return conv.items[conv.positions[item_id]][1]

    async def delete_item(self, conversation_id: str, item_id: str, *, owner: str) -> bool:
        conv = self._live(conversation_id, owner)
        if conv is None or item_id not in conv.positions:
            return False
        seq = conv.positions.pop(item_id)
        removed = len(conv.items.pop(seq)[1])
        conv.size -= removed
        self._bytes -= removed
        del conv.seqs[bisect.bisect_left(conv.seqs, seq)]
        self._touch(conv)
        return True
