"""The `store` fixture: every contract test runs once per backend, built by one factory per backend.

To add a backend, write an async factory `(request, ttl_seconds) -> store` and add it to FACTORIES and
a `pytest.param` to BACKENDS, with the backend's marker so it can be selected or deselected.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from responses_gateway.config import SQLiteSettings
from responses_gateway.stores.base import ResponseStore
from responses_gateway.stores.memory import MemoryStore
from responses_gateway.stores.sqlite import SQLiteStore
from tests.support.redis_stores import open_cluster_store, open_standalone_store

DEFAULT_TTL = 3600

# A factory may pull the fixtures it needs (tmp_path, a redis server URL...) from `request`; those
# fixtures must be synchronous (or already set up), since the factory runs inside the event loop.
StoreFactory = Callable[[pytest.FixtureRequest, int], Awaitable[ResponseStore]]
MakeStore = Callable[..., Awaitable[ResponseStore]]


async def _memory(request: pytest.FixtureRequest, ttl_seconds: int) -> ResponseStore:
    return MemoryStore(max_responses=100_000, ttl_seconds=ttl_seconds)


async def _sqlite(request: pytest.FixtureRequest, ttl_seconds: int) -> ResponseStore:
    tmp_path: Path = request.getfixturevalue("tmp_path")
    # A fresh file per store; the purge task must not interfere with TTL tests, so it runs rarely.
    path = Path(tempfile.mkdtemp(dir=tmp_path)) / "nested" / "responses.db"
    settings = SQLiteSettings(path=str(path), purge_interval_seconds=3600)
    return await SQLiteStore.open(settings, ttl_seconds=ttl_seconds)


async def _redis(request: pytest.FixtureRequest, ttl_seconds: int) -> ResponseStore:
    return await open_standalone_store(request.getfixturevalue("redis_standalone_url"), ttl_seconds)


async def _redis_cluster(request: pytest.FixtureRequest, ttl_seconds: int) -> ResponseStore:
    return await open_cluster_store(request.getfixturevalue("redis_cluster_nodes"), ttl_seconds)


FACTORIES: dict[str, StoreFactory] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "redis": _redis,
    "redis_cluster": _redis_cluster,
    # Redis goes here: "redis": _redis, "redis_cluster": _redis_cluster, each an async factory that
    # takes the server URL from a session fixture via request.getfixturevalue(...).
}

BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
    pytest.param("redis_cluster", id="redis_cluster", marks=pytest.mark.redis_cluster),
]


@pytest.fixture(params=BACKENDS)
async def make_store(request: pytest.FixtureRequest) -> AsyncIterator[MakeStore]:
    """Makes stores of the parametrized backend (`await make_store(ttl_seconds=1)`); closes them after."""
    factory = FACTORIES[request.param]
    opened: list[ResponseStore] = []

    async def make(ttl_seconds: int = DEFAULT_TTL) -> ResponseStore:
        store = await factory(request, ttl_seconds)
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.aclose()


@pytest.fixture
async def store(make_store: MakeStore) -> ResponseStore:
    """A store of each backend in turn, with a long TTL."""
    return await make_store()
