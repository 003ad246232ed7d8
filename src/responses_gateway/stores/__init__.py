"""Store backends, chosen by `response_api.store_backend` through the explicit BACKENDS table.

BACKENDS is the one list of backends: config validates `store_backend` against its names (so this
module imports config only for type checking: config imports it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from responses_gateway.stores.base import ChainIncomplete, ResponseStore, StoredResponse

if TYPE_CHECKING:
    from responses_gateway.config import ResponseAPISettings

__all__ = ["BACKENDS", "IN_PROCESS", "ChainIncomplete", "ResponseStore", "StoredResponse", "open_store"]

Loader = Callable[["ResponseAPISettings"], Awaitable[ResponseStore]]


async def _memory(settings: ResponseAPISettings) -> ResponseStore:
    from responses_gateway.stores.memory import MemoryStore

    return MemoryStore(
        max_responses=settings.memory_max_responses,
        ttl_seconds=settings.ttl_seconds,
        max_bytes=settings.memory.max_bytes,
        conversation_ttl_seconds=settings.conversation_ttl_seconds,
        max_conversation_bytes=settings.memory.max_conversation_bytes,
    )


async def _sqlite(settings: ResponseAPISettings) -> ResponseStore:
    from responses_gateway.stores.sqlite import SQLiteStore

    return await SQLiteStore.open(
        settings.sqlite,
        ttl_seconds=settings.ttl_seconds,
        conversation_ttl_seconds=settings.conversation_ttl_seconds,
    )


async def _redis(settings: ResponseAPISettings) -> ResponseStore:
    from responses_gateway.stores.redis import RedisStore

    assert settings.redis is not None  # checked by ResponseAPISettings
    return await RedisStore.open(
        settings.redis,
        ttl_seconds=settings.ttl_seconds,
        conversation_ttl_seconds=settings.conversation_ttl_seconds,
    )


BACKENDS: dict[str, Loader] = {"memory": _memory, "sqlite": _sqlite, "redis": _redis}
# Backends whose data lives inside the gateway process: lost on restart, never shared between workers.
IN_PROCESS = frozenset({"memory"})


async def open_store(settings: ResponseAPISettings) -> ResponseStore:
    """Open the configured backend. A Redis that is down does not fail this: the store reports
    not-ready and answers StoreUnavailable until it is back."""
    return await BACKENDS[settings.store_backend](settings)
