"""A WebSocket's own `store: false` responses, so that a later turn on the same socket can continue
one by `previous_response_id` (WebSocket mode, `api/websocket.py`).

Each kept response holds only what its turn adds to the history (its Chat messages, as a store's
`chat`) and a link to its parent, so a chain of N turns costs its N increments, not N histories. A
parent that is not kept here is a stored response (looked up in the store). Bounded by count and by
bytes; beyond either the least recently used responses go first (a chain being continued is the most
recently used). Lives and dies with its socket: nothing here is shared between sockets or replicas.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from responses_gateway.stores.base import ChainIncomplete

ENTRY_OVERHEAD = 160  # bytes counted per kept response besides its messages (the id, the entry)


@dataclass(frozen=True, slots=True)
class _Kept:
    parent: str | None  # previous_response_id
    parent_kept: bool  # the parent was kept here (else it is a stored response, or none)
    chat: bytes
    size: int


class SocketCache:
    """The `LocalHistory` of one socket (`service.prepare`)."""

    __slots__ = ("_kept", "bytes", "max_bytes", "max_responses")

    def __init__(self, max_responses: int, max_bytes: int) -> None:
        self.max_responses = max_responses
        self.max_bytes = max_bytes
        self.bytes = 0
        self._kept: OrderedDict[str, _Kept] = OrderedDict()

    def __contains__(self, response_id: object) -> bool:
        return response_id in self._kept

    def __len__(self) -> int:
        return len(self._kept)

    def put(self, response_id: str, parent: str | None, chat: bytes) -> None:
        """Keep a settled turn; one larger than the whole budget is not kept."""
        size = len(chat) + ENTRY_OVERHEAD
        if self.max_responses == 0 or size > self.max_bytes:
            return
        self.evict(response_id)
        self._kept[response_id] = _Kept(parent, parent is not None and parent in self._kept, chat, size)
        self.bytes += size
        while len(self._kept) > self.max_responses or self.bytes > self.max_bytes:
            _, oldest = self._kept.popitem(last=False)
            self.bytes -= oldest.size

    def evict(self, response_id: str) -> None:
        kept = self._kept.pop(response_id, None)
        if kept is not None:
            self.bytes -= kept.size

    def chain(self, response_id: str) -> tuple[str | None, list[bytes]] | None:
        """See `service.LocalHistory.chain`; the chain's turns become the most recently used."""
        kept = self._kept.get(response_id)
        if kept is None:
            return None
        ids, chats = [response_id], [kept.chat]
        while kept.parent is not None and kept.parent_kept:
            parent = self._kept.get(kept.parent)
            if parent is None:  # evicted (by count or bytes): never a shorter history
                raise ChainIncomplete(response_id, kept.parent)
            ids.append(kept.parent)
            chats.append(parent.chat)
            kept = parent
        for i in reversed(ids):
            self._kept.move_to_end(i)
        chats.reverse()
        return kept.parent, chats
