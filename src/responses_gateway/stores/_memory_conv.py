"""Conversations in process memory (the memory store's): nothing awaits, so every call is atomic."""

from __future__ import annotations

import bisect
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from responses_gateway.stores.conversations import (
    ConversationItem,
    ItemsPage,
    Order,
    StoredConversation,
)

__all__ = ["MemoryConversations"]


@dataclass(slots=True)
class _Conversation:
    record: StoredConversation
    expires_at: float | None
    next_seq: int = 0
    seqs: list[int] = field(default_factory=list)  # ascending positions of the live items
    items: dict[int, ConversationItem] = field(default_factory=dict)  # position -> item
    positions: dict[str, int] = field(default_factory=dict)  # item id -> position


class MemoryConversations:
    def __init__(self, ttl_seconds: int | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        # least recently written first: with one TTL for all, also the order in which they expire
        self._conversations: OrderedDict[str, _Conversation] = OrderedDict()

    def __len__(self) -> int:
        """Conversations kept (expired ones included until a write or a read drops them)."""
        return len(self._conversations)

    def clear(self) -> None:
        self._conversations.clear()

    def _live(self, conversation_id: str, owner: str) -> _Conversation | None:
        conv = self._conversations.get(conversation_id)
        if conv is None:
            return None
        if conv.expires_at is not None and conv.expires_at < self._clock():
            del self._conversations[conversation_id]
            return None
        return conv if conv.record.owner == owner else None

    def _touch(self, conv: _Conversation) -> None:
        if self._ttl is None:
            return
        now = self._clock()
        conv.expires_at = now + self._ttl
        self._conversations.move_to_end(conv.record.id)
        while self._conversations:  # drop the expired ones, oldest first (each write does a little)
            oldest = next(iter(self._conversations.values()))
            if oldest.expires_at is None or oldest.expires_at >= now:
                break
            del self._conversations[oldest.record.id]

    @staticmethod
    def _add(conv: _Conversation, items: Sequence[ConversationItem]) -> None:
        for item in items:
            seq = conv.next_seq
            conv.next_seq += 1
            conv.seqs.append(seq)
            conv.items[seq] = item
            conv.positions[item[0]] = seq

    async def create(self, conversation: StoredConversation, items: Sequence[ConversationItem]) -> None:
        conv = _Conversation(conversation, None)
        self._add(conv, items)
        self._conversations[conversation.id] = conv
        self._touch(conv)

    async def get(self, conversation_id: str, *, owner: str) -> StoredConversation | None:
        conv = self._live(conversation_id, owner)
        return conv.record if conv else None

    async def update(self, conversation_id: str, metadata: bytes, *, owner: str) -> StoredConversation | None:
        conv = self._live(conversation_id, owner)
        if conv is None:
            return None
        r = conv.record
        conv.record = StoredConversation(r.id, r.owner, r.created_at, metadata)
        self._touch(conv)
        return conv.record

    async def delete(self, conversation_id: str, *, owner: str) -> bool:
        if self._live(conversation_id, owner) is None:
            return False
        del self._conversations[conversation_id]
        return True

    async def append(self, conversation_id: str, items: Sequence[ConversationItem], *, owner: str) -> bool:
        conv = self._live(conversation_id, owner)
        if conv is None:
            return False
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
        del conv.items[seq]
        del conv.seqs[bisect.bisect_left(conv.seqs, seq)]
        self._touch(conv)
        return True
