"""The memory store's inspector: it reads the store's own structures (one process, no awaits)."""

from __future__ import annotations

from itertools import islice

from responses_gateway import ids
from responses_gateway.stores.inspect import RECENT_WINDOW, Health, Thread, Turn
from responses_gateway.stores.memory import MemoryStore, _Entry


class MemoryInspector:
    """Reads a MemoryStore of this process (a store of another process cannot be reached)."""

    backend = "memory"

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def health(self) -> Health:
        store = self._store
        return {
            "backend": self.backend,
            "ok": True,
            "responses": len(store),
            "bytes": store.stored_bytes,
            "max_responses": store._max,
            "max_bytes": store._max_bytes,
        }

    async def thread(self, response_id: str, owner: str) -> Thread | None:
        store = self._store
        if store._live(response_id, owner) is None:
            return None
        tag = ids.thread_tag(response_id)
        prefix = f"resp_{tag}" if tag else response_id
        # every entry is looked at: O(responses kept), in-process
        turns = [
            self._turn(rid, entry, seq)
            for seq, (rid, entry) in enumerate(list(store._entries.items()))
            if rid.startswith(prefix) and store._live(rid, owner) is entry
        ]
        return Thread(turns, True, "all responses kept in memory (scanned in-process)")

    async def recent(self, owner: str, limit: int) -> list[Turn]:
        store = self._store
        found: list[Turn] = []
        for rid in islice(reversed(list(store._entries)), RECENT_WINDOW):
            entry = store._live(rid, owner)
            if entry is not None and entry.segment.chats[entry.index]:
                found.append(self._turn(rid, entry))
                if len(found) >= limit:
                    break
        return found

    @staticmethod
    def _turn(response_id: str, entry: _Entry, seq: int = 0) -> Turn:
        return Turn(
            id=response_id,
            parent=entry.parent,
            created_at=entry.created_at,
            deleted=not entry.segment.chats[entry.index],
            response=entry.response,
            input_items=entry.input_items,
            seq=seq,
        )
