"""The store contract: one Protocol every backend meets, the record it keeps, and its errors.

Semantics every backend shares (the contract suite in tests/stores checks them):
- `put` is one atomic write. The new record lives `ttl_seconds`; every ancestor (reached through
  `previous_response_id`) is extended to live at least as long, so a live chain is never partly expired.
- `get` / `get_chain` / `get_item` return None for anything unknown, expired, deleted or owned by
  another owner: callers cannot tell these apart, by design.
- `delete` leaves a tombstone: the record's own input and output are gone, its parent link stays,
  so descendants keep the rest of their history (the deleted turn simply drops out of it).
- `get_chain` costs a constant number of queries whatever the depth, and returns the live records
  oldest first, ending with the one asked for; tombstones are walked through and left out.
  An ancestor that is missing (not a tombstone) raises ChainIncomplete: never a silently shorter history.
- Failures of the backend itself raise StoreUnavailable (503); no driver exception escapes a store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from responses_gateway.errors import StoreUnavailable

__all__ = [
    "ChainIncomplete",
    "ResponseStore",
    "StoreUnavailable",
    "StoredResponse",
    "decode_history",
    "decode_parts",
    "decode_record",
    "encode_parts",
    "encode_record",
    "find_item",
]

Item = dict[str, Any]


class ChainIncomplete(Exception):
    """An ancestor of the requested response is missing (expired or evicted), not merely deleted."""

    def __init__(self, response_id: str, missing_id: str) -> None:
        super().__init__(f"history of {response_id} is incomplete: {missing_id} is gone")
        self.response_id = response_id
        self.missing_id = missing_id


@dataclass(slots=True)
class StoredResponse:
    """One stored turn: its own input items and the full Response object (whose `output` it holds)."""

    id: str
    previous_response_id: str | None
    input_items: list[Item]
    response: dict[str, Any]
    owner: str = ""
    created_at: int = 0
    deleted: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def output_items(self) -> list[Item]:
        out: list[Item] = self.response.get("output") or []
        return out


def encode_record(record: StoredResponse) -> bytes:
    """The one serialisation every backend stores (so a record moves between backends unchanged)."""
    return orjson.dumps(
        {
            "v": 1,
            "id": record.id,
            "prev": record.previous_response_id,
            "owner": record.owner,
            "created_at": record.created_at,
            "deleted": record.deleted,
            "input": record.input_items,
            "response": record.response,
            "extra": record.extra,
        }
    )


def decode_record(blob: bytes | str) -> StoredResponse:
    d = orjson.loads(blob)
    return StoredResponse(
        id=d["id"],
        previous_response_id=d.get("prev"),
        input_items=d.get("input") or [],
        response=d.get("response") or {},
        owner=d.get("owner", ""),
        created_at=d.get("created_at", 0),
        deleted=d.get("deleted", False),
        extra=d.get("extra") or {},
    )


def encode_parts(record: StoredResponse) -> tuple[bytes, bytes]:
    """The record as (meta, history): a chain read then decodes only the small history part
    (this turn's input and output items), never the Response envelope of every ancestor."""
    response = {k: v for k, v in record.response.items() if k != "output"}
    meta = orjson.dumps(
        {
            "v": 2,
            "id": record.id,
            "prev": record.previous_response_id,
            "owner": record.owner,
            "created_at": record.created_at,
            "deleted": record.deleted,
            "response": response,
            "extra": record.extra,
        }
    )
    history = orjson.dumps(
        {
            "id": record.id,
            "prev": record.previous_response_id,
            "input": record.input_items,
            "output": record.output_items,
        }
    )
    return meta, history


def decode_parts(meta: bytes | str, history: bytes | str) -> StoredResponse:
    """The whole record back from `encode_parts`."""
    m = orjson.loads(meta)
    h = orjson.loads(history)
    response = m.get("response") or {}
    if response or h.get("output"):
        response["output"] = h.get("output") or []
    return StoredResponse(
        id=m["id"],
        previous_response_id=m.get("prev"),
        input_items=h.get("input") or [],
        response=response,
        owner=m.get("owner", ""),
        created_at=m.get("created_at", 0),
        deleted=m.get("deleted", False),
        extra=m.get("extra") or {},
    )


def decode_history(history: bytes | str, owner: str = "") -> StoredResponse:
    """A light record for chain reads: its id, parent, input and output items only
    (`response` holds just `output`)."""
    h = orjson.loads(history)
    return StoredResponse(
        id=h["id"],
        previous_response_id=h.get("prev"),
        input_items=h.get("input") or [],
        response={"output": h.get("output") or []},
        owner=owner,
    )


def tombstone(record: StoredResponse) -> StoredResponse:
    """What a deleted record becomes: its links and owner, none of its content."""
    return StoredResponse(
        id=record.id,
        previous_response_id=record.previous_response_id,
        input_items=[],
        response={},
        owner=record.owner,
        created_at=record.created_at,
        deleted=True,
    )


def find_item(record: StoredResponse, item_id: str) -> Item | None:
    """The input or output item of `record` with this id."""
    for item in record.output_items:
        if item.get("id") == item_id:
            return item
    for item in record.input_items:
        if item.get("id") == item_id:
            return item
    return None


class ResponseStore(Protocol):
    """What the service needs from a store; every method may raise StoreUnavailable."""

    backend_name: str

    async def put(self, record: StoredResponse) -> None: ...

    async def get(self, response_id: str, *, owner: str = "") -> StoredResponse | None: ...

    async def get_chain(self, response_id: str, *, owner: str = "") -> list[StoredResponse] | None: ...

    async def delete(self, response_id: str, *, owner: str = "") -> bool: ...

    async def get_item(self, item_id: str, *, owner: str = "") -> Item | None: ...

    async def ping(self) -> None: ...

    async def aclose(self) -> None: ...
