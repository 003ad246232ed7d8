"""Per-tenant rate limits end to end: the 429 the openai SDK raises, limits shared by two gateway
processes on one Redis (standalone and cluster), stream slots given back after a disconnect and after
a killed process's lease expires, tenants counted apart, and Redis down during a check."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
from redis.crc import key_slot

from responses_gateway.config import LimitSettings, RedisSettings, settings_from_dict
from responses_gateway.errors import TenantRateLimited
from responses_gateway.ratelimit.redis_limiter import RedisRateLimiter
from responses_gateway.stores.redis import RedisStore
from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway, run_gateway
from tests.support.gateway_process import ROOT, GatewayProcess, write_config
from tests.support.processes import free_port
from tests.support.redis_stores import address_of, cluster_settings, standalone_settings

REDIS_KINDS = [
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("redis_cluster", marks=pytest.mark.redis_cluster),
]
ALL_KINDS = [pytest.param("memory"), *REDIS_KINDS]
STALL = "one two three four [stall-mid-stream]"  # the backend stops after two words, until we leave


def _store(kind: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    prefix = f"rl{time.monotonic_ns()}:"
    if kind == "memory":
        return {"store_backend": "memory"}
    if kind == "redis":
        url: str = request.getfixturevalue("redis_standalone_url")
        return {"store_backend": "redis", "redis": {"address": address_of(url), "key_prefix": prefix}}
    nodes: list[str] = request.getfixturevalue("redis_cluster_clean")
    return {
        "store_backend": "redis",
        "redis": {"cluster_mode": True, "cluster_addresses": nodes, "key_prefix": prefix},
    }


def _redis_settings(kind: str, request: pytest.FixtureRequest) -> RedisSettings:
    prefix = f"rl{time.monotonic_ns()}:"
    if kind == "redis":
        return standalone_settings(request.getfixturevalue("redis_standalone_url"), key_prefix=prefix)
    return cluster_settings(request.getfixturevalue("redis_cluster_clean"), key_prefix=prefix)


@contextmanager
def _gateway(echo: EchoBackend, store: dict[str, Any], limits: dict[str, Any]) -> Iterator[Gateway]:
    settings = settings_from_dict(
        {
            "backends": [{"name": "echo", "base_url": echo.base_url, "models": ["*"], "timeout_seconds": 10}],
            "response_api": store,
            "limits": limits,
        }
    )
    with run_gateway(settings) as gw:
        yield gw


def _stream_status(base_url: str, text: str = "hi") -> int:
    body = {"model": "m", "input": text, "stream": True}
    with httpx.stream("POST", f"{base_url}/responses", json=body, timeout=10) as r:
        r.read()
        return r.status_code


@contextmanager
def _open_stream(base_url: str, path: str = "/responses") -> Iterator[None]:
    """A stream that stays open (the backend stalls) until the block ends, then the client leaves."""
    if path == "/responses":
        body: dict[str, Any] = {"model": "m", "input": STALL, "stream": True}
    else:
        body = {"model": "m", "messages": [{"role": "user", "content": STALL}], "stream": True}
    with httpx.Client(timeout=10) as client, client.stream("POST", base_url + path, json=body) as r:
        assert r.status_code == 200, r.read()
        lines = r.iter_lines()  # kept: an abandoned iterator closes the connection
        while not any(mark in next(lines) for mark in ("echo:", '"delta"')):
            pass  # until the backend has started: the slot is taken
        yield


def _wait_until(check: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_requests_per_minute_is_a_429_the_sdk_raises(
    kind: str, request: pytest.FixtureRequest, echo: EchoBackend
) -> None:
    with _gateway(echo, _store(kind, request), {"requests_per_minute": 3}) as gw:
        client = openai.OpenAI(base_url=gw.base_url, api_key="unused", max_retries=0)
        first = client.responses.create(model="m", input="one")
        client.responses.create(model="m", input="two", previous_response_id=first.id)
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "three"}])
        with pytest.raises(openai.RateLimitError) as info:
            client.responses.create(model="m", input="four")
        err = info.value
        assert err.status_code == 429
        assert 18 <= int(err.response.headers["retry-after"]) <= 20  # one request every 20 s
        assert 17_000 < int(err.response.headers["retry-after-ms"]) <= 20_000
        assert err.body == {
            "message": err.body["message"],  # type: ignore[index]
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
        assert err.code == "rate_limit_exceeded"
        assert "Limit 3, Used 3, Requested 1" in err.message and "limits.requests_per_minute" in err.message
        with pytest.raises(openai.RateLimitError):
            client.responses.create(model="m", input="five", stream=True)
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "six"}])
        assert len(echo.chat_requests()) == 3  # nothing denied reached the backend
        assert client.models.list().data  # other routes are not limited


@pytest.mark.parametrize("kind", REDIS_KINDS)
def test_requests_per_minute_hold_across_two_gateway_processes(
    kind: str, request: pytest.FixtureRequest, echo: EchoBackend, tmp_path: Path
) -> None:
    cfg = write_config(
        tmp_path / "gw.yaml", echo.base_url, _store(kind, request), limits={"requests_per_minute": 4}
    )
    with GatewayProcess(cfg, tmp_path / "a.log") as a, GatewayProcess(cfg, tmp_path / "b.log") as b:
        clients = [openai.OpenAI(base_url=gw.base_url, api_key="unused", max_retries=0) for gw in (a, b)]
        for i in range(4):
            clients[i % 2].responses.create(model="m", input=f"turn {i}")
        for client in clients:
            with pytest.raises(openai.RateLimitError) as info:
                client.responses.create(model="m", input="one too many")
            assert int(info.value.response.headers["retry-after"]) in range(14, 16)  # 60/4 s


@pytest.mark.parametrize("kind", REDIS_KINDS)
def test_concurrent_streams_across_processes_and_released_on_disconnect(
    kind: str, request: pytest.FixtureRequest, echo: EchoBackend, tmp_path: Path
) -> None:
    cfg = write_config(
        tmp_path / "gw.yaml", echo.base_url, _store(kind, request), limits={"concurrent_streams": 1}
    )
    with GatewayProcess(cfg, tmp_path / "a.log") as a, GatewayProcess(cfg, tmp_path / "b.log") as b:
        with _open_stream(a.base_url):
            assert _stream_status(b.base_url) == 429
            assert _stream_status(a.base_url) == 429
            chat = {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True}
            assert httpx.post(f"{b.base_url}/chat/completions", json=chat, timeout=10).status_code == 429
            plain = httpx.post(f"{b.base_url}/responses", json={"model": "m", "input": "x"}, timeout=10)
            assert plain.status_code == 200  # a request that does not stream needs no slot
        # the client left: A gives its slot back, and B may stream again
        _wait_until(lambda: _stream_status(b.base_url) == 200)
        # a stream that ended normally gave its slot back too
        assert _stream_status(a.base_url) == 200
        with _open_stream(b.base_url, "/chat/completions"):
            assert _stream_status(a.base_url) == 429
        _wait_until(lambda: _stream_status(a.base_url) == 200)


def test_stream_slots_released_however_the_stream_ends_memory(echo: EchoBackend) -> None:
    with _gateway(echo, {"store_backend": "memory"}, {"concurrent_streams": 1}) as gw:
        for path in ("/responses", "/chat/completions"):
            with _open_stream(gw.base_url, path):
                assert _stream_status(gw.base_url) == 429
            _wait_until(lambda: _stream_status(gw.base_url) == 200)
        assert _stream_status(gw.base_url, "cut [die-mid-stream]") == 200  # the backend died mid-stream
        assert _stream_status(gw.base_url, "fails [fail:500]") == 502  # failed before the first event
        assert _stream_status(gw.base_url) == 200


_HOLDER = """
import asyncio, json, sys
from responses_gateway.config import LimitSettings, RedisSettings
from responses_gateway.ratelimit.redis_limiter import RedisRateLimiter
from responses_gateway.stores.redis import RedisStore

async def main():
    store = await RedisStore.open(RedisSettings(**json.loads(sys.argv[1])), ttl_seconds=60)
    limiter = RedisRateLimiter(store, LimitSettings(concurrent_streams=1), lease_seconds=float(sys.argv[2]))
    slot = await limiter.admit("team-a", stream=True)
    assert slot is not None
    print("held", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


@pytest.mark.parametrize("kind", REDIS_KINDS)
async def test_a_killed_replicas_stream_slot_expires_with_its_lease(
    kind: str, request: pytest.FixtureRequest
) -> None:
    settings = _redis_settings(kind, request)
    lease = 1.5
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _HOLDER,
        settings.model_dump_json(),
        str(lease),
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    store = await RedisStore.open(settings, ttl_seconds=60)
    limiter = RedisRateLimiter(store, LimitSettings(concurrent_streams=1), lease_seconds=lease)
    try:
        assert holder.stdout is not None
        assert await asyncio.wait_for(holder.stdout.readline(), 20) == b"held\n"
        deadline = time.monotonic() + 3 * lease  # the live holder renews its lease
        while time.monotonic() < deadline:
            with pytest.raises(TenantRateLimited):
                await limiter.admit("team-a", stream=True)
            await asyncio.sleep(0.25)
        holder.send_signal(signal.SIGKILL)  # dies without giving the slot back
        await asyncio.wait_for(holder.wait(), 5)
        killed_at = time.monotonic()
        with pytest.raises(TenantRateLimited):
            await limiter.admit("team-a", stream=True)
        while True:
            try:
                slot = await limiter.admit("team-a", stream=True)
                break
            except TenantRateLimited:
                assert time.monotonic() - killed_at < lease + 2, "the dead replica's slot never expired"
                await asyncio.sleep(0.1)
        assert slot is not None
        slot.release()
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()
        await limiter.aclose()
        await store.aclose()


@pytest.mark.parametrize("kind", REDIS_KINDS)
async def test_tenants_are_counted_apart_in_their_own_slot(kind: str, request: pytest.FixtureRequest) -> None:
    settings = _redis_settings(kind, request)
    limits = LimitSettings(
        requests_per_minute=2, concurrent_streams=1, tenants={"team-b": {"requests_per_minute": 3}}
    )
    stores = [await RedisStore.open(settings, ttl_seconds=60) for _ in range(2)]
    a, b = (RedisRateLimiter(s, limits) for s in stores)  # two replicas
    try:
        await a.admit("team-a", stream=False)
        await b.admit("team-a", stream=False)
        with pytest.raises(TenantRateLimited) as info:
            await a.admit("team-a", stream=False)
        assert "of tenant 'team-a': Limit 2, Used 2" in info.value.message
        for limiter in (a, b, a):
            await limiter.admit("team-b", stream=False)
        with pytest.raises(TenantRateLimited) as info:
            await b.admit("team-b", stream=False)
        assert "limits.tenants.team-b.requests_per_minute" in info.value.message
        await a.admit("", stream=False)  # the anonymous tenant (auth off) has its own count
        await a.admit("", stream=False)
        with pytest.raises(TenantRateLimited):
            await b.admit("", stream=False)
        slot = await a.admit("team-c", stream=True)
        assert slot is not None
        with pytest.raises(TenantRateLimited):
            await b.admit("team-c", stream=True)
        slot.release()
        await a.aclose()  # waits for the release
        assert await b.admit("team-c", stream=True) is not None
        with pytest.raises(ValueError):
            await a.admit("x}{y", stream=False)  # never becomes part of a key
        # a tenant's keys are named after it, all in one slot
        prefix = settings.key_prefix
        for key in (f"{prefix}rl:{{team-a}}:rpm", f"{prefix}rl:{{team-c}}:streams", f"{prefix}rl:{{_}}:rpm"):
            assert await stores[0].connection.call(key, "EXISTS", key) == 1, key
        assert key_slot(f"{prefix}rl:{{team-c}}:rpm".encode()) == key_slot(
            f"{prefix}rl:{{team-c}}:streams".encode()
        )
    finally:
        await b.aclose()
        for s in stores:
            await s.aclose()


async def test_redis_down_during_a_check_falls_back_to_per_process_limits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = RedisSettings(
        address=f"127.0.0.1:{free_port()}", key_prefix="down:", max_retries=0, dial_timeout=0.5
    )
    store = await RedisStore.open(settings, ttl_seconds=60)
    limiter = RedisRateLimiter(store, LimitSettings(requests_per_minute=2, concurrent_streams=1))
    try:
        with caplog.at_level(logging.WARNING, logger="responses_gateway.ratelimit"):
            assert await limiter.admit("", stream=False) is None
            slot = await limiter.admit("", stream=True)
            with pytest.raises(TenantRateLimited) as info:
                await limiter.admit("", stream=False)
        assert "Limit 2, Used 2" in info.value.message
        warnings = [r for r in caplog.records if "Redis unavailable" in r.getMessage()]
        assert len(warnings) == 1  # once, not per request
        assert slot is not None
        slot.release()
    finally:
        await limiter.aclose()
        await store.aclose()


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_each_tenants_key_has_its_own_limits_over_http(
    kind: str, request: pytest.FixtureRequest, echo: EchoBackend
) -> None:
    """With auth on, the limit is the key's tenant's: team-a's own override (`limits.tenants`), the
    default for team-b; one tenant at its limit leaves the other untouched."""
    keys = {"team-a": "rgw-a-" + "a" * 20, "team-b": "rgw-b-" + "b" * 20}
    settings = settings_from_dict(
        {
            "backends": [{"name": "echo", "base_url": echo.base_url, "models": ["*"], "timeout_seconds": 10}],
            "response_api": _store(kind, request),
            "auth": {"api_keys": [{"tenant": t, "key": k} for t, k in keys.items()]},
            "limits": {"requests_per_minute": 3, "tenants": {"team-a": {"requests_per_minute": 1}}},
        }
    )
    with run_gateway(settings) as gw:
        a = openai.OpenAI(base_url=gw.base_url, api_key=keys["team-a"], max_retries=0)
        b = openai.OpenAI(base_url=gw.base_url, api_key=keys["team-b"], max_retries=0)
        a.responses.create(model="m", input="a1")
        with pytest.raises(openai.RateLimitError) as info:
            a.responses.create(model="m", input="a2")
        assert (
            "team-a" in info.value.message
            and "limits.tenants.team-a.requests_per_minute" in info.value.message
        )
        assert keys["team-a"] not in info.value.message
        for i in range(3):  # team-b has the default 3, untouched by team-a's use
            b.responses.create(model="m", input=f"b{i}")
        with pytest.raises(openai.RateLimitError) as info:
            b.responses.create(model="m", input="b3")
        assert "limits.requests_per_minute" in info.value.message


def test_background_streams_and_replays_hold_the_tenants_stream_slots(echo: EchoBackend) -> None:
    """A `background: true` stream and a replay of one are streams of their tenant's like any other:
    each holds one of `limits.concurrent_streams` while its client reads, and gives it back when the
    client leaves (the background work itself runs on)."""
    with _gateway(echo, {"store_backend": "memory"}, {"concurrent_streams": 1}) as gw:
        client = openai.OpenAI(base_url=gw.base_url, api_key="unused", max_retries=0)
        body = {"model": "m", "input": STALL, "stream": True, "background": True}
        with (
            httpx.Client(timeout=10) as http,
            http.stream("POST", f"{gw.base_url}/responses", json=body) as r,
        ):
            assert r.status_code == 200, r.read()
            lines = r.iter_lines()
            first = next(line for line in lines if line.startswith("data: "))
            response_id = orjson.loads(first[6:])["response"]["id"]
            while "echo:" not in next(lines):
                pass  # the backend has started
            with pytest.raises(openai.RateLimitError):
                client.responses.create(model="m", input="x", stream=True)
        _wait_until(lambda: _stream_status(gw.base_url) == 200)  # the slot came back
        replay_url = f"{gw.base_url}/responses/{response_id}?stream=true"
        with httpx.Client(timeout=10) as http, http.stream("GET", replay_url) as r:
            assert r.status_code == 200, r.read()
            lines = r.iter_lines()
            assert next(line for line in lines if line.startswith("data: "))
            with pytest.raises(openai.RateLimitError):
                client.responses.create(model="m", input="x", stream=True)
        _wait_until(lambda: _stream_status(gw.base_url) == 200)
        assert client.responses.cancel(response_id).status == "cancelled"
