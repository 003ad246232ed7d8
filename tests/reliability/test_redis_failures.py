"""Reliability on real Redis processes: a master killed or frozen under load, Redis down at start-up.
Every test asserts that nothing the gateway acknowledged (HTTP 200) was lost."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import redis_servers
from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway_process import GatewayProcess, write_config
from tests.support.load import lost, run_load
from tests.support.processes import free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[redis_servers.RedisCluster]:
    """A 6-node cluster of this test's own (these tests break nodes)."""
    cluster = redis_servers.start_cluster(tmp_path / "cluster", node_timeout_ms=2000)
    try:
        yield cluster
    finally:
        for node in cluster.nodes:
            node.thaw()
        cluster.stop()


def _cluster_api(addresses: list[str], **redis: Any) -> dict[str, Any]:
    return {
        "store_backend": "redis",
        "ttl_seconds": 3600,
        "redis": {
            "cluster_mode": True,
            "cluster_addresses": addresses,
            "read_timeout": 1,
            "max_retries": 3,
            **redis,
        },
    }


async def _all_succeed(base_url: str, n: int = 30, within: float = 20.0) -> None:
    """`n` new conversations can be created (every shard takes writes again), retrying 503s."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=10) as client:
        for i in range(n):
            while True:
                resp = await client.post(
                    f"{base_url}/responses", json={"model": "qwen3", "input": f"after {i}"}
                )
                if resp.status_code == 200:
                    break
                assert resp.status_code == 503, resp.text
                assert time.monotonic() < deadline, "the gateway did not recover by itself"
                await asyncio.sleep(0.2)


def _role(node: redis_servers.RedisNode) -> str:
    return redis_servers.info(node.port, "replication")["role"]


@pytest.mark.redis_cluster
async def test_master_killed_under_load_loses_nothing(
    own_cluster: redis_servers.RedisCluster, echo: EchoBackend, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path / "gw.yaml", echo.base_url, _cluster_api(own_cluster.addresses))
    with GatewayProcess(cfg, tmp_path / "gw.log") as gw:
        victim = own_cluster.masters()[0]
        load = asyncio.create_task(run_load(gw.base_url, seconds=12, concurrency=8))
        await asyncio.sleep(2)
        victim.kill()
        result = await load
        print(f"statuses={dict(result.statuses)} acked={len(result.acked)}")
        assert set(result.statuses) <= {200, 503}, result.statuses
        assert result.statuses[503] == 0 or result.missing_retry_after == 0
        assert result.transport_errors == 0
        assert len(result.acked) > 100, result.statuses
        await _all_succeed(gw.base_url)
        assert await lost(gw.base_url, result.acked) == []
        # the killed node comes back and rejoins as a replica
        victim.start()
        own_cluster.wait_healthy(30)
        assert _role(victim) == "slave"
        assert await lost(gw.base_url, result.acked[-50:]) == []


@pytest.mark.redis_cluster
async def test_master_frozen_with_wait_replicas_loses_nothing(
    own_cluster: redis_servers.RedisCluster, echo: EchoBackend, tmp_path: Path
) -> None:
    api = _cluster_api(own_cluster.addresses, wait_replicas=1, wait_timeout_ms=200)
    cfg = write_config(tmp_path / "gw.yaml", echo.base_url, api)
    with GatewayProcess(cfg, tmp_path / "gw.log") as gw:
        victim = own_cluster.masters()[1]
        load = asyncio.create_task(run_load(gw.base_url, seconds=14, concurrency=8))
        await asyncio.sleep(2)
        victim.freeze()
        await asyncio.sleep(5)  # longer than the node timeout (2 s): a replica is promoted
        victim.thaw()
        result = await load
        print(f"statuses={dict(result.statuses)} acked={len(result.acked)}")
        assert set(result.statuses) <= {200, 503}, result.statuses
        assert result.transport_errors == 0
        assert len(result.acked) > 100, result.statuses
        own_cluster.wait_healthy(30)  # the old master has rejoined as a replica
        await _all_succeed(gw.base_url)
        assert await lost(gw.base_url, result.acked) == []
        assert _role(victim) == "slave"


@pytest.mark.redis
async def test_standalone_redis_down_at_startup_then_recovers(echo: EchoBackend, tmp_path: Path) -> None:
    port = free_port()
    api = {"store_backend": "redis", "redis": {"address": f"127.0.0.1:{port}", "dial_timeout": 0.5}}
    cfg = write_config(tmp_path / "gw.yaml", echo.base_url, api)
    with GatewayProcess(cfg, tmp_path / "gw.log") as gw:
        await _down_then_up(gw, lambda: redis_servers.start_standalone(tmp_path / "redis", port=port))


@pytest.mark.redis_cluster
async def test_cluster_down_at_startup_then_recovers(echo: EchoBackend, tmp_path: Path) -> None:
    ports = redis_servers.free_ports(6, cluster=True)
    cfg = write_config(
        tmp_path / "gw.yaml", echo.base_url, _cluster_api([f"127.0.0.1:{p}" for p in ports], dial_timeout=0.5)
    )
    with GatewayProcess(cfg, tmp_path / "gw.log") as gw:
        await _down_then_up(gw, lambda: redis_servers.start_cluster(tmp_path / "cluster", ports=ports))


async def _down_then_up(gw: GatewayProcess, start_redis: Any) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        ready = await client.get(f"{gw.url}/ready")
        assert ready.status_code == 503 and ready.json()["status"] == "not_ready"
        created = await client.post(f"{gw.base_url}/responses", json={"model": "qwen3", "input": "hi"})
        assert created.status_code == 503 and "retry-after" in created.headers
        assert created.json()["error"]["code"] == "store_unavailable"
        chained = await client.post(
            f"{gw.base_url}/responses",
            json={"model": "qwen3", "input": "hi", "previous_response_id": "resp_" + "1" * 48},
        )
        assert chained.status_code == 503  # never a silent "no history"
        assert (await client.get(f"{gw.base_url}/responses/resp_{'2' * 48}")).status_code == 503
        server = await asyncio.to_thread(start_redis)
        try:
            deadline = time.monotonic() + 20
            while (await client.get(f"{gw.url}/ready")).status_code != 200:
                assert time.monotonic() < deadline, "the gateway did not notice Redis came back"
                await asyncio.sleep(0.2)
            r1 = await client.post(f"{gw.base_url}/responses", json={"model": "qwen3", "input": "hi"})
            assert r1.status_code == 200, r1.text
            r2 = await client.post(
                f"{gw.base_url}/responses",
                json={"model": "qwen3", "input": "again", "previous_response_id": r1.json()["id"]},
            )
            assert r2.status_code == 200, r2.text
        finally:
            server.stop()
        # and down again while running: fail closed, never reported stored
        down = await client.post(f"{gw.base_url}/responses", json={"model": "qwen3", "input": "lost?"})
        assert down.status_code == 503
