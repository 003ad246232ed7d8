"""The store contract: one Protocol every backend meets, the record it keeps, and its errors.

A store deals in bytes: the service encodes a turn once (the Response object, its input items, and
the Chat messages the turn adds to its descendants' history) and a store keeps and returns those
bytes unchanged. Stores never parse the Responses protocol, so they import nothing from it.

Semantics every backend shares (the contract suite in tests/stores is the only place that checks them):
- `put` is one atomic write, idempotent (a retried put of the same record changes nothing more).
  The new record lives `ttl_seconds`; every ancestor (reached through `previous_response_id`) and
  the history it contributes live at least as long, so a live chain is never partly expired.
- `get` / `get_history` / `get_item` return None for anything unknown, expired, deleted or owned by
  another owner: callers cannot tell these apart, by design.
- `delete` leaves a tombstone: the record's own content is gone, its place in the chain stays, so
  descendants keep the rest of their history (the deleted turn simply drops out of it).
- `get_history` returns the `chat` blobs of the chain, oldest first, ending with the asked response's,
  deleted turns left out. Its cost does not grow with the depth of a linear chain: a constant number
  of store commands (one read per branch point on the path, never one per ancestor). An ancestor
  that is missing (expired or evicted, not deleted) raises ChainIncomplete: never a shorter history.
- Branching: any stored response may have many children; each child's history is its own path.
- Failures of the backend itself raise StoreUnavailable (503); no driver exception escapes a store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import orjson

from responses_gateway.errors import StoreUnavailable
from responses_gateway.stores.conversations import ConversationStore

__all__ = [
    "ChainIncomplete",
    "ResponseStore",
    "StoreUnavailable",
    "StoredResponse",
    "find_item",
]


class ChainIncomplete(Exception):
    """An ancestor of the requested response is missing (expired or evicted), not merely deleted."""

    def __init__(self, response_id: str, missing_id: str) -> None:
        super().__init__(f"history of {response_id} is incomplete: {missing_id} is gone")
        self.response_id = response_id
        self.missing_id = missing_id


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """One stored turn, as encoded bytes.

    - `response`: the Response object as JSON (with its `output`), what GET returns byte for byte.
    - `input_items`: this turn's own input items as a JSON array (what input_items lists).
    - `chat`: the Chat Completions messages this turn adds to the history of its descendants, as a
      JSON array (`[{"role":"user",...},{"role":"assistant",...}]`); descendants' requests join
      these arrays without decoding them.
    """

    id: str
    previous_response_id: str | None
    response: bytes
    input_items: bytes
    chat: bytes
    owner: str = ""
    created_at: int = 0


def find_item(record: StoredResponse, item_id: str) -> bytes | None:
    """The JSON of the input or output item of `record` with this id."""
    response = orjson.loads(record.response)
    candidates = response.get("output") or [] if isinstance(response, dict) else []
    for item in (*candidates, *orjson.loads(record.input_items)):
        if isinstance(item, dict) and item.get("id") == item_id:
            return orjson.dumps(item)
    return None


class ResponseStore(Protocol):
    """What the service needs from a store; every method may raise StoreUnavailable."""

    backend_name: str

    @property
    def conversations(self) -> ConversationStore:
        """The same backend's conversations (stores/conversations.py)."""

    async def put(self, record: StoredResponse) -> None: ...

    async def get(self, response_id: str, *, owner: str = "") -> StoredResponse | None: ...

    async def get_history(self, response_id: str, *, owner: str = "") -> list[bytes] | None: ...

    async def delete(self, response_id: str, *, owner: str = "") -> bool: ...

    async def get_item(self, item_id: str, *, owner: str = "") -> bytes | None: ...

    async def ping(self) -> None: ...

    async def aclose(self) -> None: ...
