"""Per-tenant rate limits: requests per minute and concurrent streams (`limits.*`).

One interface, `RateLimiter`, and two implementations: `LocalRateLimiter` (per process: the memory
and SQLite stores) and `RedisRateLimiter` (across replicas: the Redis store, standalone or cluster,
one atomic Lua script per check). `build_rate_limiter` picks the one that fits the store.

Requests per minute are a GCRA (generic cell rate algorithm): a tenant may send `N` requests at once,
then one every `60/N` seconds; its whole state is one number (the theoretical arrival time), so on
Redis it is one key and one round trip, and `Retry-After` is exact. A denied request is not counted.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Protocol, TypeVar

from responses_gateway.config import LimitSettings
from responses_gateway.ratelimit._limits import Slot, TenantLimit
from responses_gateway.ratelimit.local import LocalRateLimiter

if TYPE_CHECKING:
    from responses_gateway.stores.base import ResponseStore

__all__ = [
    "LocalRateLimiter",
    "RateLimiter",
    "Slot",
    "TenantLimit",
    "build_rate_limiter",
    "holding",
]

T = TypeVar("T")


class RateLimiter(Protocol):
    async def admit(self, tenant: str, *, stream: bool) -> Slot | None:
        """Count one request of `tenant`; for a stream also take one of its concurrent-stream slots
        (returned: release it when the stream ends, however it ends). Nothing is counted or taken
        when a limit is reached: TenantRateLimited (429) is raised."""

    async def aclose(self) -> None:
        """Stop background work and give back what this process still holds."""


async def holding(slot: Slot, events: AsyncGenerator[T, None]) -> AsyncGenerator[T, None]:
    """`events`, with `slot` released when they end: normally, by an error, or closed (a client that
    left). Releasing never awaits, so it also runs inside a cancelled task."""
    try:
        async for item in events:
            yield item
    finally:
        slot.release()
        await events.aclose()


def build_rate_limiter(store: ResponseStore | None, limits: LimitSettings) -> RateLimiter:
    """The Redis limiter on the Redis store (shared by every replica), else the per-process one."""
    if store is not None and store.backend_name == "redis":
        from responses_gateway.ratelimit.redis_limiter import RedisRateLimiter
        from responses_gateway.stores.redis import RedisStore

        assert isinstance(store, RedisStore)
        return RedisRateLimiter(store, limits)
    return LocalRateLimiter(limits)
