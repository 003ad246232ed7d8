"""Open RedisStore instances on the test servers (shared by the contract suite and test_redis.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from responses_gateway.config import RedisSettings
from responses_gateway.stores.redis import RedisStore


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
