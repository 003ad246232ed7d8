"""The per-process rate limiter with a fake clock: GCRA requests per minute, concurrent streams,
per-tenant overrides, the 429 it raises, and the slot released however a stream ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from responses_gateway.config import LimitSettings
from responses_gateway.errors import RateLimited, TenantRateLimited
from responses_gateway.ratelimit import LocalRateLimiter, TenantLimit, build_rate_limiter, holding
from responses_gateway.ratelimit._limits import gcra


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(clock: Clock, **limits: Any) -> LocalRateLimiter:
    return LocalRateLimiter(LimitSettings(**limits), clock=clock)


def admit(lim: LocalRateLimiter, tenant: str = "", stream: bool = False) -> Any:
    return asyncio.run(lim.admit(tenant, stream=stream))


def denied(lim: LocalRateLimiter, tenant: str = "", stream: bool = False) -> TenantRateLimited:
    with pytest.raises(TenantRateLimited) as info:
        lim.admit_now(tenant, stream=stream)
    return info.value


def test_n_requests_at_once_then_429_with_exact_retry_after() -> None:
    clock = Clock()
    lim = limiter(clock, requests_per_minute=3)
    for _ in range(3):
        assert admit(lim) is None
    err = denied(lim)
    assert err.status_code == 429 and isinstance(err, RateLimited)
    assert err.retry_after_ms == 20_000  # one request every 60/3 s
    assert err.headers == {"Retry-After": "20", "retry-after-ms": "20000"}
    body = err.to_dict()["error"]
    assert body["type"] == "requests" and body["code"] == "rate_limit_exceeded" and body["param"] is None
    assert body["message"].startswith("Rate limit reached for requests per min (RPM): Limit 3, Used 3,")
    assert "Please try again in 20s" in body["message"] and "(limits.requests_per_minute)" in body["message"]


def test_refills_one_request_per_interval_and_denials_are_not_counted() -> None:
    clock = Clock()
    lim = limiter(clock, requests_per_minute=60)  # one per second after a burst of 60
    for _ in range(60):
        lim.admit_now("", stream=False)
    for _ in range(5):  # hammering while limited does not push the next slot further away
        assert denied(lim).retry_after_ms == 1000
    clock.now += 0.4
    assert denied(lim).retry_after_ms == 600
    assert "Please try again in 0.6s" in denied(lim).message
    clock.now += 0.6
    lim.admit_now("", stream=False)  # exactly one more after 1 s
    assert denied(lim).retry_after_ms == 1000
    clock.now += 60
    for _ in range(60):  # a minute later the whole burst is back
        lim.admit_now("", stream=False)
    denied(lim)


def test_gcra_counts_used_requests() -> None:
    tat, used, wait = gcra(0.0, 100.0, 4)
    assert (tat, used, wait) == (115.0, 0, 0.0)
    tat, used, wait = gcra(tat, 100.0, 4)
    assert (tat, used, wait) == (130.0, 1, 0.0)
    tat, used, _ = gcra(tat, 107.5, 4)
    assert used == 2  # half an interval has passed: 1.5 left in the window, rounded up
    assert gcra(175.0, 100.0, 4) == (175.0, 5, 30.0)  # denied: TAT unchanged


def test_zero_is_unlimited() -> None:
    clock = Clock()
    lim = limiter(clock)
    slots = [lim.admit_now("", stream=True) for _ in range(10_000)]
    assert slots == [None] * 10_000


def test_tenants_are_independent_and_overrides_apply() -> None:
    clock = Clock()
    lim = limiter(
        clock,
        requests_per_minute=2,
        concurrent_streams=1,
        tenants={"team-a": {"requests_per_minute": 5}, "team-b": {"concurrent_streams": 0}},
    )
    for _ in range(2):
        lim.admit_now("", stream=False)
    denied(lim, "")
    for _ in range(5):
        lim.admit_now("team-a", stream=False)
    err = denied(lim, "team-a")
    assert "of tenant 'team-a': Limit 5, Used 5" in err.message
    assert "(limits.tenants.team-a.requests_per_minute)" in err.message
    assert lim.admit_now("team-b", stream=True) is None  # streams unlimited for team-b
    lim.admit_now("team-c", stream=False)  # no override: the defaults, its own count
    lim.admit_now("team-c", stream=False)
    denied(lim, "team-c")


def test_concurrent_streams_slot_taken_and_given_back() -> None:
    clock = Clock()
    lim = limiter(clock, concurrent_streams=2)
    a = lim.admit_now("t", stream=True)
    b = lim.admit_now("t", stream=True)
    assert a is not None and b is not None
    err = denied(lim, "t", stream=True)
    assert err.headers["Retry-After"] == "1"
    assert "concurrent streams of tenant 't': Limit 2, Used 2, Requested 1" in err.message
    assert "(limits.concurrent_streams)" in err.message
    assert lim.admit_now("t", stream=False) is None  # a non-stream request needs no slot
    assert lim.admit_now("u", stream=True) is not None  # another tenant has its own slots
    a.release()
    a.release()  # idempotent: the second release gives back nothing more
    assert lim.streams["t"] == 1
    assert lim.admit_now("t", stream=True) is not None
    denied(lim, "t", stream=True)


def test_a_stream_denied_for_slots_does_not_use_a_request() -> None:
    clock = Clock()
    lim = limiter(clock, requests_per_minute=2, concurrent_streams=1)
    slot = lim.admit_now("", stream=True)
    assert slot is not None
    for _ in range(3):
        denied(lim, stream=True)
    lim.admit_now("", stream=False)  # the second request of the minute
    assert "requests per min" in denied(lim).message


def test_invalid_tenant_names_never_reach_a_limiter() -> None:
    lim = limiter(Clock(), requests_per_minute=1)
    for bad in ("a b", "-x", "a{b}", "x" * 65, "é"):
        with pytest.raises(ValueError):
            lim.admit_now(bad, stream=False)
    assert TenantLimit(LimitSettings(), "A.b_c-9").tenant == "A.b_c-9"


def test_build_rate_limiter_is_local_without_redis() -> None:
    assert isinstance(build_rate_limiter(None, LimitSettings()), LocalRateLimiter)


async def _events(n: int, fail_at: int | None = None) -> AsyncGenerator[int, None]:
    for i in range(n):
        if i == fail_at:
            raise RuntimeError("backend broke")
        yield i


def test_holding_releases_on_end_error_and_close() -> None:
    async def run() -> None:
        lim = LocalRateLimiter(LimitSettings(concurrent_streams=5))

        async def slot() -> Any:
            s = await lim.admit("t", stream=True)
            assert s is not None
            return s

        assert [i async for i in holding(await slot(), _events(3))] == [0, 1, 2]
        assert lim.streams["t"] == 0
        with pytest.raises(RuntimeError):
            async for _ in holding(await slot(), _events(3, fail_at=1)):
                pass
        assert lim.streams["t"] == 0
        gen = holding(await slot(), _events(100))
        assert await anext(gen) == 0
        assert lim.streams["t"] == 1
        await gen.aclose()  # the client left
        assert lim.streams["t"] == 0

    asyncio.run(run())
