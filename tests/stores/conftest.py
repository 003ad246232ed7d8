"""The `store` fixture: every contract test runs once per backend in BACKENDS, opened by open_store.

To add a backend: a `Backend` line in BACKENDS (with its marker): how to configure it, and how to make
it lose a conversation's history as eviction or expiry would (the ChainIncomplete tests need that).
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from responses_gateway.config import MemorySettings, ResponseAPISettings, SQLiteSettings
from responses_gateway.ids import thread_tag
from responses_gateway.stores import open_store
from responses_gateway.stores.base import ResponseStore, StoredResponse

DEFAULT_TTL = 3600

MakeStore = Callable[..., Awaitable[ResponseStore]]
# (request, ttl_seconds) -> the settings open_store opens the backend with. Fixtures it pulls from
# `request` must be synchronous (or already set up): it runs inside the event loop.
Configure = Callable[[pytest.FixtureRequest, int], ResponseAPISettings]
# (request, store, chain): the store loses what it keeps of chain[:-1] (the history of chain[-1]), as
# eviction or expiry would, so that get_history(chain[-1].id) must raise ChainIncomplete. It keeps
# chain[-1]'s own record. A backend whose unit of loss holds several turns may lose more of the
# conversation (never chain[-1]'s own record).
Lose = Callable[[pytest.FixtureRequest, ResponseStore, list[StoredResponse]], Awaitable[None]]


@dataclass(frozen=True)
class Backend:
    configure: Configure
    lose: Lose


def _memory(request: pytest.FixtureRequest, ttl_seconds: int) -> ResponseAPISettings:
    return ResponseAPISettings(
        store_backend="memory", ttl_seconds=ttl_seconds, memory=MemorySettings(max_responses=100_000)
    )


async def _memory_lose(
    request: pytest.FixtureRequest, store: ResponseStore, chain: list[StoredResponse]
) -> None:
    from responses_gateway.stores.memory import MemoryStore

    assert isinstance(store, MemoryStore)
    for record in chain[:-1]:
        store.evict(record.id)  # what the bound does to the least recently used


def _sqlite(request: pytest.FixtureRequest, ttl_seconds: int) -> ResponseAPISettings:
    tmp_path: Path = request.getfixturevalue("tmp_path")
    # A fresh file per store; the purge task must not interfere with TTL tests, so it runs rarely.
    path = Path(tempfile.mkdtemp(dir=tmp_path)) / "nested" / "responses.db"
    sqlite = SQLiteSettings(path=str(path), purge_interval_seconds=3600)
    return ResponseAPISettings(store_backend="sqlite", ttl_seconds=ttl_seconds, sqlite=sqlite)


async def _sqlite_lose(
    request: pytest.FixtureRequest, store: ResponseStore, chain: list[StoredResponse]
) -> None:
    from responses_gateway.stores.sqlite import SQLiteStore

    assert isinstance(store, SQLiteStore)
    with sqlite3.connect(store.path) as conn:  # another process purging rows, as far as the store sees
        conn.executemany("DELETE FROM responses WHERE id = ?", [(r.id,) for r in chain[:-1]])
    conn.close()


def _redis(request: pytest.FixtureRequest, ttl_seconds: int) -> ResponseAPISettings:
    from tests.support.redis_stores import standalone_settings

    redis = standalone_settings(request.getfixturevalue("redis_standalone_url"))
    return ResponseAPISettings(store_backend="redis", ttl_seconds=ttl_seconds, redis=redis)


def _redis_cluster(request: pytest.FixtureRequest, ttl_seconds: int) -> ResponseAPISettings:
    from tests.support.redis_stores import cluster_settings

    redis = cluster_settings(request.getfixturevalue("redis_cluster_nodes"))
    return ResponseAPISettings(store_backend="redis", ttl_seconds=ttl_seconds, redis=redis)


async def _redis_lose(
    request: pytest.FixtureRequest, store: ResponseStore, chain: list[StoredResponse]
) -> None:
    import redis.asyncio as aioredis

    url: str = request.getfixturevalue("redis_standalone_url")
    await _drop_keys(aioredis.Redis.from_url(url), chain[-1])


async def _redis_cluster_lose(
    request: pytest.FixtureRequest, store: ResponseStore, chain: list[StoredResponse]
) -> None:
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    from tests.support.redis_stores import address_of

    nodes = [address_of(n).rsplit(":", 1) for n in request.getfixturevalue("redis_cluster_nodes")]
    await _drop_keys(RedisCluster(startup_nodes=[ClusterNode(h, int(p)) for h, p in nodes]), chain[-1])


async def _drop_keys(client: Any, head: StoredResponse) -> None:
    """Redis evicts whole keys, and one key may hold the history of several turns (a branch segment):
    drop every key of the conversation (its thread tag is in each of them) except `head`'s own."""
    try:
        keys = [key async for key in client.scan_iter(match=f"*{thread_tag(head.id)}*", count=1000)]
        for key in keys:
            if head.id.removeprefix("resp_").encode() not in key:
                await client.delete(key)
    finally:
        await client.aclose()


# One line per backend; the marker lets a run select or deselect it.
BACKENDS = [
    pytest.param(Backend(_memory, _memory_lose), id="memory"),
    pytest.param(Backend(_sqlite, _sqlite_lose), id="sqlite"),
    pytest.param(Backend(_redis, _redis_lose), id="redis", marks=pytest.mark.redis),
    pytest.param(
        Backend(_redis_cluster, _redis_cluster_lose), id="redis_cluster", marks=pytest.mark.redis_cluster
    ),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    param: Backend = request.param
    return param


@pytest.fixture
async def make_store(request: pytest.FixtureRequest, backend: Backend) -> AsyncIterator[MakeStore]:
    """Makes stores of the parametrized backend (`await make_store(ttl_seconds=1)`, optionally
    `conversation_ttl_seconds=`); closes them after."""
    opened: list[ResponseStore] = []

    async def make(
        ttl_seconds: int = DEFAULT_TTL, conversation_ttl_seconds: int | None = None
    ) -> ResponseStore:
        settings = backend.configure(request, ttl_seconds)
        if conversation_ttl_seconds is not None:
            settings = settings.model_copy(update={"conversation_ttl_seconds": conversation_ttl_seconds})
        store = await open_store(settings)
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.aclose()


@pytest.fixture
def lose(request: pytest.FixtureRequest, backend: Backend) -> Callable[..., Awaitable[None]]:
    """`await lose(store, chain)`: the store loses the history of chain[-1] (see `Lose`)."""

    async def lose_(store: ResponseStore, chain: list[StoredResponse]) -> None:
        await backend.lose(request, store, chain)

    return lose_


@pytest.fixture
async def store(make_store: MakeStore) -> ResponseStore:
    """A store of each backend in turn, with a long TTL."""
    return await make_store()
