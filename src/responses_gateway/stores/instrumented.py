"""InstrumentedStore: times every store call and counts its failures (one wrapper, not repeated lines)."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import TypeVar

from prometheus_client import Counter, Histogram

from responses_gateway.errors import StoreUnavailable
from responses_gateway.stores.base import ResponseStore, StoredResponse
from responses_gateway.telemetry import CURRENT

T = TypeVar("T")
_OPS = ("put", "get", "get_history", "delete", "get_item", "ping")


class InstrumentedStore:
    """A ResponseStore that records `gateway_store_seconds{op}`, `gateway_store_errors_total{op}` and
    the depth of the histories it reads (`depth`). A store that counts its own network round trips
    (`counts_round_trips`, Redis) adds them to the request's record; for the others each call counts
    as one."""

    def __init__(
        self, inner: ResponseStore, seconds: Histogram, errors: Counter, depth: Histogram | None = None
    ) -> None:
        self.inner = inner
        self.backend_name = inner.backend_name
        self.conversations = inner.conversations
        # the labelled children, bound once per operation (a `.labels()` lookup per call costs)
        self._children = {op: (seconds.labels(op), errors.labels(op)) for op in _OPS}
        self._depth = depth
        self._count_calls = not getattr(inner, "counts_round_trips", False)

    async def _timed(self, op: str, call: Awaitable[T]) -> T:
        observe, errors = self._children[op]
        if self._count_calls and (record := CURRENT.get()) is not None:
            record.store_round_trips += 1
        start = time.perf_counter()
        try:
            return await call
        except StoreUnavailable:
            errors.inc()
            raise
        finally:
            observe.observe(time.perf_counter() - start)

    async def put(self, record: StoredResponse) -> None:
        await self._timed("put", self.inner.put(record))

    async def get(self, response_id: str, *, owner: str = "") -> StoredResponse | None:
        return await self._timed("get", self.inner.get(response_id, owner=owner))

    async def get_history(self, response_id: str, *, owner: str = "") -> list[bytes] | None:
        history = await self._timed("get_history", self.inner.get_history(response_id, owner=owner))
        if history is not None and self._depth is not None:
            self._depth.observe(len(history))
        return history

    async def delete(self, response_id: str, *, owner: str = "") -> bool:
        return await self._timed("delete", self.inner.delete(response_id, owner=owner))

    async def get_item(self, item_id: str, *, owner: str = "") -> bytes | None:
        return await self._timed("get_item", self.inner.get_item(item_id, owner=owner))

    async def ping(self) -> None:
        await self._timed("ping", self.inner.ping())

    async def aclose(self) -> None:
        await self.inner.aclose()
