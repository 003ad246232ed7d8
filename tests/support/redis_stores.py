"""Open RedisStore instances on the test servers (shared by the contract suite and test_redis.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from responses_gateway.config import RedisSettings
from responses_gateway.stores.redis import RedisStore
from tests.support import redis_servers


def address_of(url: str) -> str:
    """`redis://127.0.0.1:17000/0` (or a bare `host:port`) → `127.0.0.1:17000`."""
    if "://" not in url:
        return url
    parsed = urlparse(url)
    return f"{parsed.hostname}:{parsed.port or 6379}"


def standalone_settings(url: str, **overrides: Any) -> RedisSettings:
    values: dict[str, Any] = {"address": address_of(url), "key_prefix": "sr:", "max_retries": 2}
    values.update(overrides)
    return RedisSettings(**values)


def cluster_settings(nodes: list[str], **overrides: Any) -> RedisSettings:
    values: dict[str, Any] = {
        "cluster_mode": True,
        "cluster_addresses": nodes,
        "key_prefix": "sr:",
        "pool_size": 20,
        "max_retries": 5,
        "dial_timeout": 10,
        "read_timeout": 1.5,
        "write_timeout": 1.5,
    }
    values.update(overrides)
    return RedisSettings(**values)


async def open_standalone_store(url: str, ttl_seconds: int = 3600, **overrides: Any) -> RedisStore:
    return await RedisStore.open(standalone_settings(url, **overrides), ttl_seconds=ttl_seconds)


async def open_cluster_store(nodes: list[str], ttl_seconds: int = 3600, **overrides: Any) -> RedisStore:
    return await RedisStore.open(cluster_settings(nodes, **overrides), ttl_seconds=ttl_seconds)


# --- measuring what Redis does (tests/stores/test_redis.py and benchmarks/redis_depth.py) -----------

# Commands that are not the store's work: our own probes and the servers' housekeeping.
NOT_STORE_WORK = frozenset({"info", "replconf", "ping", "cluster", "command", "client", "hello", "memory"})


def commandstats(ports: list[int]) -> dict[str, tuple[int, int]]:
    """`INFO commandstats` summed over these servers: command -> (calls, usec); commands run inside
    Lua scripts are counted too. The probes and housekeeping in NOT_STORE_WORK are left out."""
    total: dict[str, tuple[int, int]] = {}
    for port in ports:
        for key, value in redis_servers.info(port, "commandstats").items():
            name = key.removeprefix("cmdstat_")
            if name.split("|")[0] in NOT_STORE_WORK:
                continue
            fields = dict(part.split("=") for part in value.split(","))
            calls, usec = total.get(name, (0, 0))
            total[name] = (calls + int(fields["calls"]), usec + int(fields["usec"]))
    return total


def work_between(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> tuple[int, int]:
    """(commands, usec) executed between two `commandstats` snapshots."""
    calls = sum(c for c, _ in after.values()) - sum(c for c, _ in before.values())
    usec = sum(u for _, u in after.values()) - sum(u for _, u in before.values())
    return calls, usec


def thread_bytes(ports: list[int], tag: str) -> int:
    """`MEMORY USAGE` (every element sampled) summed over all keys of one thread, on these masters."""
    total = 0
    for port in ports:
        for key in redis_servers.command(port, "KEYS", f"*{{{tag}}}*"):
            total += int(redis_servers.command(port, "MEMORY", "USAGE", key, "SAMPLES", "0") or 0)
    return total
