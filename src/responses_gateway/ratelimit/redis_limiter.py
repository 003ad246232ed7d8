"""The limiter shared by every replica on one Redis (standalone or cluster).

Each admission is ONE script (`RL_ADMIT`) on the master of the tenant's slot: it checks and counts
atomically, so replicas never race (no read-then-write). A stream's slot is a member of the tenant's
sorted set, scored by its lease expiry; this process renews the leases of the streams it runs every
`lease/3` seconds, gives a slot back when its stream ends, and a replica that dies without giving
them back loses them when their leases expire (any later script of the tenant removes them).

Redis unreachable during a check: the request is admitted under this process's own count of the same
limits (`LocalRateLimiter`), and a warning is logged (at most every 30 s). Failing closed would turn a
Redis outage into a 429 for every request, including those that need no store at all
(`/v1/chat/completions`, `store: false`); failing open without any limit would let one tenant take
every backend while Redis is away. The per-process fallback keeps each replica bounded.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any

from responses_gateway.config import LimitSettings
from responses_gateway.errors import StoreUnavailable
from responses_gateway.ratelimit._limits import Slot, TenantLimit, rpm_exceeded, streams_exceeded
from responses_gateway.ratelimit.local import LocalRateLimiter
from responses_gateway.stores._redis_conn import Arg
from responses_gateway.stores._redis_scripts import RL_ADMIT_SCRIPT, RL_RELEASE_SCRIPT, RL_RENEW_SCRIPT
from responses_gateway.stores.redis import RedisStore

log = logging.getLogger("responses_gateway.ratelimit")

DEFAULT_LEASE_SECONDS = 30.0
_WARN_EVERY = 30.0
ANONYMOUS_TAG = "_"  # the tenant "" (auth off): `{}` is no hash tag, so it gets a tag of its own


class _Keys:
    __slots__ = ("rpm", "streams")

    def __init__(self, prefix: str, tenant: str) -> None:
        base = f"{prefix}rl:{{{tenant or ANONYMOUS_TAG}}}:"
        self.rpm = base + "rpm"
        self.streams = base + "streams"


class RedisSlot:
    __slots__ = ("_limiter", "key", "member")

    def __init__(self, limiter: RedisRateLimiter, key: str, member: str) -> None:
        self._limiter: RedisRateLimiter | None = limiter
        self.key = key
        self.member = member

    def release(self) -> None:
        limiter, self._limiter = self._limiter, None
        if limiter is not None:
            limiter.give_back(self)


class RedisRateLimiter:
    def __init__(
        self, store: RedisStore, limits: LimitSettings, *, lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> None:
        self._store = store
        self._prefix = store.keys.prefix
        self._lease_ms = max(1, round(lease_seconds * 1000))
        self._fallback = LocalRateLimiter(limits)
        self._keys: dict[str, _Keys] = {}
        self._held: dict[str, set[str]] = {}  # streams key -> ids of the streams this process runs
        self._tasks: set[asyncio.Task[Any]] = set()
        self._renewer: asyncio.Task[None] | None = None
        self._warned_at = -_WARN_EVERY

    def _keys_of(self, tenant: str) -> _Keys:
        keys = self._keys.get(tenant)
        if keys is None:
            self._fallback.limit_of(tenant)  # validates the name before it goes into a key
            keys = self._keys[tenant] = _Keys(self._prefix, tenant)
        return keys

    async def admit(self, tenant: str, *, stream: bool) -> Slot | None:
        limit = self._fallback.limit_of(tenant)
        slots = limit.streams if stream else 0
        if limit.rpm == 0 and slots == 0:
            return None
        keys = self._keys_of(tenant)
        member = secrets.token_hex(8) if slots else ""
        args: list[Arg] = [limit.rpm, slots, member, self._lease_ms, keys.streams]
        try:
            reply = await self._store.eval_script("rate_limit", RL_ADMIT_SCRIPT, keys.rpm, args)
        except StoreUnavailable as exc:
            self._warn(exc)
            return self._fallback.admit_now(tenant, stream=stream)
        self._check(limit, reply)
        if not slots:
            return None
        self._held.setdefault(keys.streams, set()).add(member)
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew_forever())
        return RedisSlot(self, keys.streams, member)

    @staticmethod
    def _check(limit: TenantLimit, reply: list[int]) -> None:
        status = int(reply[0])
        if status == 1:
            raise rpm_exceeded(limit, int(reply[1]), int(reply[2]))
        if status == 2:
            raise streams_exceeded(limit, int(reply[1]), int(reply[2]))

    def give_back(self, slot: RedisSlot) -> None:
        """Forget the slot here at once (no more renewals), and remove it from Redis in a task: a
        failure there is logged, and the lease expires by itself."""
        held = self._held.get(slot.key)
        if held is not None:
            held.discard(slot.member)
            if not held:
                del self._held[slot.key]
        task = asyncio.get_running_loop().create_task(self._release(slot.key, slot.member))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _release(self, key: str, member: str) -> None:
        try:
            await self._store.eval_script("rate_limit_release", RL_RELEASE_SCRIPT, key, [member])
        except StoreUnavailable as exc:
            log.warning("rate limiter: a stream slot was not given back (%s); its lease expires", exc)

    async def renew(self) -> None:
        """Renew the leases of every stream this process runs (one script per tenant)."""
        calls = [
            self._store.eval_script("rate_limit_renew", RL_RENEW_SCRIPT, key, [self._lease_ms, *members])
            for key, members in list(self._held.items())
        ]
        for result in await asyncio.gather(*calls, return_exceptions=True):
            if isinstance(result, StoreUnavailable):
                self._warn(result)
            elif isinstance(result, BaseException):
                raise result

    async def _renew_forever(self) -> None:
        while self._held:
            await asyncio.sleep(self._lease_ms / 3000)
            try:
                await self.renew()
            except Exception:  # a bug must not stop the renewals of every later stream
                log.exception("rate limiter: renewing stream leases failed")

    def _warn(self, exc: StoreUnavailable) -> None:
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY:
            self._warned_at = now
            log.warning(
                "rate limiter: Redis unavailable (%s); limits are counted per process until it is back",
                exc.message,
            )

    async def aclose(self) -> None:
        """Stop renewing; give back the slots still held (a stream cut by shutdown)."""
        if self._renewer is not None:
            self._renewer.cancel()
        for key, members in list(self._held.items()):
            for member in list(members):
                task = asyncio.get_running_loop().create_task(self._release(key, member))
                self._tasks.add(task)
        self._held.clear()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
