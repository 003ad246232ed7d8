"""The seed, replayed against a real 6-node Redis Cluster with the gateway started as a process:
start-up lines, create, data distribution, retrieve, chain, delete, TTL expiry, restart recovery.
Both of the seed's configuration options are used."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support import redis_servers
from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway_process import GatewayProcess

pytestmark = [pytest.mark.e2e, pytest.mark.redis_cluster]


def _seed_option_1(addresses: list[str], ttl: int = 86400) -> dict[str, Any]:
    return {
        "enabled": True,
        "store_backend": "redis",
        "ttl_seconds": ttl,
        "redis": {
            "cluster_mode": True,
            "cluster_addresses": addresses,
            "db": 0,
            "key_prefix": "sr:",
            "pool_size": 20,
            "max_retries": 5,
            "dial_timeout": 10,
        },
    }


def _config(path: Path, backend_url: str, response_api: dict[str, Any]) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "backends": [{"name": "llm", "base_url": backend_url, "models": ["qwen3"]}],
                "response_api": response_api,
            }
        )
    )
    return path


def _keys_per_node(cluster: redis_servers.RedisCluster, response_id: str) -> dict[int, bool]:
    return {
        n.port: any(response_id.encode() in k for k in redis_servers.command(n.port, "KEYS", "sr:*"))
        for n in cluster.nodes
    }


def test_seed_against_cluster(
    started_cluster: redis_servers.RedisCluster, echo: EchoBackend, tmp_path: Path
) -> None:
    redis_cluster = started_cluster  # KEYS and DBSIZE are checked node by node
    cfg = _config(tmp_path / "config.yaml", echo.base_url, _seed_option_1(redis_cluster.addresses))
    client = httpx.Client(timeout=15)
    with GatewayProcess(cfg, tmp_path / "gw.log") as gw:
        log = gw.log.read_text()
        assert "RedisStore: creating cluster client (nodes=6, pool_size=20)" in log
        assert "RedisStore: initialized successfully (cluster_mode=true, key_prefix=sr:, ttl=24h0m0s)" in log
        assert "Response API enabled with redis backend" in log
        # Test 1
        one = client.post(
            f"{gw.base_url}/responses",
            json={
                "model": "qwen3",
                "input": "What is Redis Cluster?",
                "instructions": "You are a database expert.",
                "store": True,
            },
        ).json()
        assert one["status"] == "completed" and one["id"].startswith("resp_")
        # Test 2: on exactly one master and its replica
        deadline = time.monotonic() + 5
        while True:
            seen = _keys_per_node(redis_cluster, one["id"])
            holders = [p for p, has in seen.items() if has]
            if len(holders) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert len(holders) == 2, seen
        master = next(m for m in redis_cluster.masters() if m.port in holders)
        replica = next(p for p in holders if p != master.port)
        assert replica in [r.port for r in redis_cluster.replica_of(master)]
        # Test 3
        assert client.get(f"{gw.base_url}/responses/{one['id']}").json() == one
        # Test 4
        two = client.post(
            f"{gw.base_url}/responses",
            json={
                "model": "qwen3",
                "input": "Tell me more about sharding",
                "previous_response_id": one["id"],
                "store": True,
            },
        ).json()
        assert two["previous_response_id"] == one["id"]
        assert [m["content"] for m in echo.chat_requests()[-1]["body"]["messages"]] == [
            "What is Redis Cluster?",
            "echo: What is Redis Cluster?",
            "Tell me more about sharding",
        ]
        # Test 5
        assert client.delete(f"{gw.base_url}/responses/{one['id']}").json()["deleted"] is True
        assert client.get(f"{gw.base_url}/responses/{one['id']}").status_code == 404
        # monitoring: a few hundred new conversations land on every master
        for i in range(300):
            assert (
                client.post(f"{gw.base_url}/responses", json={"model": "qwen3", "input": f"n{i}"}).status_code
                == 200
            )
        sizes = [redis_servers.command(m.port, "DBSIZE") for m in redis_cluster.masters()]
        assert all(s > 0 for s in sizes), sizes
    # restart recovery
    with GatewayProcess(cfg, tmp_path / "gw2.log") as gw2:
        assert client.get(f"{gw2.base_url}/responses/{two['id']}").json() == two
        three = client.post(
            f"{gw2.base_url}/responses",
            json={"model": "qwen3", "input": "and replicas?", "previous_response_id": two["id"]},
        )
        assert three.status_code == 200
    client.close()


def test_seed_option_2_external_file_and_ttl_expiry(
    redis_cluster_clean: list[str], echo: EchoBackend, tmp_path: Path
) -> None:
    external = tmp_path / "redis-cluster.yaml"
    external.write_text(
        yaml.safe_dump({**_seed_option_1(redis_cluster_clean)["redis"], "password": "${NO_PASS}"})
    )
    cfg = _config(
        tmp_path / "config.yaml",
        echo.base_url,
        {
            "enabled": True,
            "store_backend": "redis",
            "ttl_seconds": 2,
            "redis": {"config_path": str(external)},
        },
    )
    with GatewayProcess(cfg, tmp_path / "gw.log", env={"NO_PASS": ""}) as gw:
        assert "initialized successfully (cluster_mode=true, key_prefix=sr:, ttl=2s)" in gw.log.read_text()
        with httpx.Client(timeout=15) as client:
            r = client.post(
                f"{gw.base_url}/responses", json={"model": "qwen3", "input": "short-lived"}
            ).json()
            assert client.get(f"{gw.base_url}/responses/{r['id']}").status_code == 200
            time.sleep(3)
            assert client.get(f"{gw.base_url}/responses/{r['id']}").status_code == 404
            chained = client.post(
                f"{gw.base_url}/responses",
                json={"model": "qwen3", "input": "x", "previous_response_id": r["id"]},
            )
            assert chained.status_code == 400
            assert chained.json()["error"]["code"] == "previous_response_not_found"
