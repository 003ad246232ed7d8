"""Small pure helpers of the Redis store: Go-style durations, addresses, error mapping, retries."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from redis import exceptions as rex

from responses_gateway.errors import StoreUnavailable

T = TypeVar("T")
log = logging.getLogger("responses_gateway.stores.redis")

_UNITS = ((3600, "h"), (60, "m"))


def format_go_duration(seconds: float) -> str:
    """Format a duration the way Go's time.Duration.String() does: 86400 → "24h0m0s", 90 → "1m30s"."""
    ns = round(seconds * 1_000_000_000)
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < 1_000_000_000:  # below one second Go switches to ns / µs / ms with a fraction
        for scale, unit in ((1, "ns"), (1_000, "µs"), (1_000_000, "ms")):
            if u < scale * 1_000:
                return sign + _frac(u, scale) + unit
    whole, rest = divmod(u, 1_000_000_000)
    secs = _frac(whole % 60 * 1_000_000_000 + rest, 1_000_000_000) + "s"
    minutes, hours = whole // 60 % 60, whole // 3600
    if whole < 60:
        return sign + secs
    if hours == 0:
        return f"{sign}{minutes}m{secs}"
    return f"{sign}{hours}h{minutes}m{secs}"


def _frac(value: int, scale: int) -> str:
    """`value / scale` printed with the shortest exact decimal fraction (Go's fmtFrac)."""
    whole, rest = divmod(value, scale)
    if rest == 0:
        return str(whole)
    digits = len(str(scale)) - 1
    return f"{whole}.{str(rest).rjust(digits, '0').rstrip('0')}"


def parse_address(address: str, default_port: int = 6379) -> tuple[str, int]:
    """`host:port`, `[v6]:port` or a bare host → (host, port)."""
    addr = address.strip()
    for scheme in ("redis://", "rediss://"):
        addr = addr.removeprefix(scheme)
    if addr.startswith("["):
        host, _, rest = addr[1:].partition("]")
        return host, int(rest.removeprefix(":") or default_port)
    if addr.count(":") == 1:
        host, port = addr.split(":")
        return host or "127.0.0.1", int(port)
    return addr, default_port


class WaitNotConfirmed(rex.RedisError):
    """WAIT saw fewer replicas than configured (or refused to run): the write is not durable yet."""


# Errors worth another attempt: the next one may reach a new master or a reconnected socket. All our
# operations are idempotent (fixed ids, fixed content), so repeating an applied write is harmless.
RETRYABLE: tuple[type[BaseException], ...] = (
    rex.ConnectionError,
    rex.TimeoutError,
    rex.ClusterDownError,
    rex.TryAgainError,
    rex.SlotNotCoveredError,
    rex.ClusterError,
    rex.ReadOnlyError,
    WaitNotConfirmed,
    OSError,
)
NOT_RETRYABLE: tuple[type[BaseException], ...] = (rex.AuthenticationError, rex.AuthorizationError)


@contextlib.contextmanager
def map_errors(operation: str) -> Iterator[None]:
    """Turn every driver / socket failure into StoreUnavailable(retry_after=1), chained `from exc`."""
    try:
        yield
    except StoreUnavailable:
        raise
    # RedisClusterException is not a RedisError; OSError covers asyncio's TimeoutError too.
    except (rex.RedisError, rex.RedisClusterException, OSError) as exc:
        raise StoreUnavailable(
            f"redis store unavailable during {operation}: {type(exc).__name__}: {exc}", retry_after=1
        ) from exc


@contextlib.contextmanager
def connection_races() -> Iterator[None]:
    """Around driver calls only. In a failover, redis-py 8.1 can lose a pooled connection's stream
    to a concurrent disconnect and then fails from deep inside with AttributeError ('NoneType' object
    has no attribute 'writelines') or, under uvloop, RuntimeError ('unable to perform operation on
    <TCPTransport closed=True>'): a dead socket, so a ConnectionError (retried, then 503). Both were
    seen as 500s in tests/reliability under load."""
    try:
        yield
    except (AttributeError, RuntimeError) as exc:
        raise rex.ConnectionError(
            f"connection closed under the driver ({type(exc).__name__}: {exc})"
        ) from exc


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`retries` more attempts after the first, exponential backoff with jitter, capped well below
    one second, and never past `budget` seconds in total (a frozen node must fail fast: 503)."""

    retries: int = 3
    base: float = 0.025
    cap: float = 0.25
    budget: float = 3.0

    def delay(self, attempt: int) -> float:
        d: float = min(self.cap, self.base * (2**attempt))
        return d / 2 + random.random() * d / 2

    async def run(
        self,
        operation: str,
        fn: Callable[[], Awaitable[T]],
        before_retry: Callable[[BaseException], Awaitable[None]] | None = None,
    ) -> T:
        start = time.monotonic()
        attempt = 0
        while True:
            try:
                return await fn()
            except NOT_RETRYABLE:
                raise
            except RETRYABLE as exc:
                delay = self.delay(attempt)
                if attempt >= self.retries or time.monotonic() - start + delay > self.budget:
                    raise
                attempt += 1
                log.debug(
                    "redis %s failed (%s: %s); retry %d in %.3fs",
                    operation,
                    type(exc).__name__,
                    exc,
                    attempt,
                    delay,
                )
                if before_retry is not None:
                    await before_retry(exc)
                await asyncio.sleep(delay)
