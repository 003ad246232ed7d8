"""The per-process limiter (memory and SQLite stores): the same rules as on Redis, in one process."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from responses_gateway.config import LimitSettings
from responses_gateway.ratelimit._limits import Slot, TenantLimit, gcra, rpm_exceeded, streams_exceeded

STREAM_RETRY_MS = 1000  # Retry-After of a full stream limit: a stream may end at any moment


class LocalSlot:
    __slots__ = ("_limiter", "_tenant")

    def __init__(self, limiter: LocalRateLimiter, tenant: str) -> None:
        self._limiter: LocalRateLimiter | None = limiter
        self._tenant = tenant

    def release(self) -> None:
        limiter, self._limiter = self._limiter, None
        if limiter is not None:
            limiter.streams[self._tenant] -= 1


class LocalRateLimiter:
    """Requests per minute (GCRA) and concurrent streams of each tenant, counted in this process."""

    def __init__(self, limits: LimitSettings, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._limits = limits
        self._clock = clock
        self._tenants: dict[str, TenantLimit] = {}
        self._tat: dict[str, float] = {}
        self.streams: dict[str, int] = {}  # open streams per tenant

    def limit_of(self, tenant: str) -> TenantLimit:
        limit = self._tenants.get(tenant)
        if limit is None:
            limit = self._tenants[tenant] = TenantLimit(self._limits, tenant)
        return limit

    async def admit(self, tenant: str, *, stream: bool) -> Slot | None:
        return self.admit_now(tenant, stream=stream)

    def admit_now(self, tenant: str, *, stream: bool) -> Slot | None:
        """`admit`, synchronously (it never waits)."""
        limit = self.limit_of(tenant)
        take = stream and limit.streams > 0
        if take and self.streams.get(tenant, 0) >= limit.streams:
            raise streams_exceeded(limit, self.streams[tenant], STREAM_RETRY_MS)
        if limit.rpm > 0:
            tat, used, wait = gcra(self._tat.get(tenant, 0.0), self._clock(), limit.rpm)
            if wait > 0:
                raise rpm_exceeded(limit, used, math.ceil(round(wait * 1000, 6)))
            self._tat[tenant] = tat
        if not take:
            return None
        self.streams[tenant] = self.streams.get(tenant, 0) + 1
        return LocalSlot(self, tenant)

    async def aclose(self) -> None:
        return None
