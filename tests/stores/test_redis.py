"""Redis-specific store tests: round trips per operation, TTL alignment, WAIT, recovery, key layout."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio.cluster import RedisCluster as ClusterClient

from responses_gateway.errors import StoreUnavailable
from responses_gateway.ids import new_response_id
from responses_gateway.stores._redis_keys import KeySchema
from responses_gateway.stores._redis_scripts import KEY_OF
from responses_gateway.stores._redis_support import format_go_duration, parse_address
from responses_gateway.stores.base import ChainIncomplete
from responses_gateway.stores.redis import RedisStore
from tests.conftest import require_redis_binaries
from tests.stores.records import light, make_record, put_chain
from tests.support import redis_servers
from tests.support.redis_servers import RedisCluster, command
from tests.support.redis_stores import (
    address_of,
    cluster_settings,
    open_cluster_store,
    open_standalone_store,
    standalone_settings,
)

LOGGER = "responses_gateway.stores.redis"


# --- pure helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (86400, "24h0m0s"),
        (2_592_000, "720h0m0s"),
        (90, "1m30s"),
        (10, "10s"),
        (0, "0s"),
        (3600, "1h0m0s"),
        (3661, "1h1m1s"),
        (59, "59s"),
        (60, "1m0s"),
        (1.5, "1.5s"),
        (0.5, "500ms"),
        (0.0015, "1.5ms"),
        (-90, "-1m30s"),
    ],
)
def test_format_go_duration(seconds: float, text: str) -> None:
    assert format_go_duration(seconds) == text


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1:6379", ("127.0.0.1", 6379)),
        ("redis.local", ("redis.local", 6379)),
        ("[::1]:7000", ("::1", 7000)),
        ("redis://h:1", ("h", 1)),
    ],
)
def test_parse_address(address: str, expected: tuple[str, int]) -> None:
    assert parse_address(address) == expected


def test_keys_carry_the_thread_tag_and_the_id() -> None:
    keys = KeySchema("sr:")
    root = new_response_id()
    child = new_response_id(root)
    assert keys.key(root) == f"sr:response:{{{root[5:21]}}}:{root}"
    assert keys.key(child).split(":")[2] == keys.key(root).split(":")[2]  # same hash tag
    assert keys.key("resp_legacy") == "sr:response:{_}:resp_legacy"


# --- standalone -----------------------------------------------------------------------------------


async def _commandstats(ports: list[int]) -> dict[str, int]:
    total: dict[str, int] = {}
    for port in ports:
        for key, value in redis_servers.info(port, "commandstats").items():
            calls = int(value.split("calls=")[1].split(",")[0])
            total[key.removeprefix("cmdstat_")] = total.get(key.removeprefix("cmdstat_"), 0) + calls
    return total


def _delta(before: dict[str, int], after: dict[str, int], *names: str) -> int:
    return sum(after.get(n, 0) - before.get(n, 0) for n in names)


SCRIPTED = ("evalsha", "eval", "wait")


async def _measure(store: RedisStore, ports: list[int], op: Any, counted: tuple[str, ...]) -> tuple[int, int]:
    """(store round trips, client commands the servers saw) for one awaited operation. Commands a
    script runs inside Redis count as calls too, so only the client-sent command names are summed."""
    before_rt = store.stats.round_trips
    before = await _commandstats(ports)
    await op()
    after = await _commandstats(ports)
    return store.stats.round_trips - before_rt, _delta(before, after, *counted)


async def _round_trips(store: RedisStore, ports: list[int], depth: int) -> dict[str, tuple[int, int]]:
    chain = await put_chain(store, depth)
    child = make_record(chain[-1])
    item = child.output_items[0]["id"]
    return {
        "put": await _measure(store, ports, lambda: store.put(child), SCRIPTED),
        "get": await _measure(store, ports, lambda: store.get(child.id), ("hmget",)),
        "get_chain": await _measure(store, ports, lambda: store.get_chain(child.id), SCRIPTED),
        "get_item": await _measure(store, ports, lambda: store.get_item(item), ("hmget",)),
        "delete": await _measure(store, ports, lambda: store.delete(child.id), SCRIPTED),
    }


EXPECTED_ROUND_TRIPS = {
    "put": (1, 1),
    "get": (1, 1),
    "get_chain": (1, 1),
    "get_item": (1, 1),
    "delete": (1, 1),
}


@pytest.mark.redis
@pytest.mark.parametrize("depth", [1, 10, 1000])
async def test_round_trips_are_constant_standalone(redis_clean: str, depth: int) -> None:
    store = await open_standalone_store(redis_clean)
    try:
        port = int(address_of(redis_clean).rsplit(":", 1)[1])
        assert await _round_trips(store, [port], depth) == EXPECTED_ROUND_TRIPS
    finally:
        await store.aclose()


@pytest.mark.redis
async def test_ttl_alignment(redis_clean: str) -> None:
    store = await open_standalone_store(redis_clean, ttl_seconds=10)
    try:
        chain = await put_chain(store, 3)
        await asyncio.sleep(0.3)
        child = make_record(chain[-1])
        await store.put(child)
        ttls = [await store.client.execute_command("PTTL", store.keys.key(r.id)) for r in [*chain, child]]
        assert ttls[-1] > 9_000
        # every ancestor outlives its newest descendant, by at most the slack (ttl/10)
        assert all(ttls[i] >= ttls[-1] for i in range(len(ttls) - 1))
        assert all(t <= 11_000 for t in ttls)
    finally:
        await store.aclose()


@pytest.mark.redis
async def test_missing_ancestor_raises_chain_incomplete(redis_clean: str) -> None:
    store = await open_standalone_store(redis_clean)
    try:
        root, middle, child = await put_chain(store, 3)
        await store.client.execute_command("DEL", store.keys.key(middle.id))  # as if evicted
        with pytest.raises(ChainIncomplete) as info:
            await store.get_chain(child.id)
        assert info.value.missing_id == middle.id
        assert await store.get(root.id) == root
    finally:
        await store.aclose()


@pytest.mark.redis
async def test_lua_key_of_matches_the_python_key_schema(redis_clean: str) -> None:
    store = await open_standalone_store(redis_clean)
    try:
        script = KEY_OF + "\nreturn key_of(ARGV[1], ARGV[2])"
        for rid in (new_response_id(), "resp_legacy", "resp_" + "A" * 48, "x"):
            lua = await store.client.execute_command("EVAL", script, 0, "sr:", rid)
            assert lua.decode() == store.keys.key(rid)
    finally:
        await store.aclose()


@pytest.mark.redis
async def test_wait_without_replica_fails_closed(redis_clean: str) -> None:
    store = await open_standalone_store(redis_clean, wait_replicas=1, wait_timeout_ms=20, max_retries=1)
    try:
        record = make_record()
        with pytest.raises(StoreUnavailable) as info:
            await store.put(record)
        assert "replica" in str(info.value)
        assert info.value.headers == {"Retry-After": "1"}
    finally:
        await store.aclose()


@pytest.mark.redis
async def test_standalone_down_at_open_then_up(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    port = redis_servers.free_ports(1, start=18500)[0]
    caplog.set_level(logging.INFO, logger=LOGGER)
    store = await RedisStore.open(
        standalone_settings(f"127.0.0.1:{port}", dial_timeout=0.5), ttl_seconds=86400
    )
    node = redis_servers.RedisNode(port=port, directory=tmp_path / "late")
    try:
        line = f"RedisStore: creating standalone client (address=127.0.0.1:{port}, db=0, pool_size=10)"
        assert line in caplog.text
        assert any(r.levelno == logging.WARNING and "not reachable" in r.getMessage() for r in caplog.records)
        with pytest.raises(StoreUnavailable) as info:
            await store.get(new_response_id())
        assert info.value.status_code == 503
        node.write_config()
        node.start()
        record = make_record()
        deadline = time.monotonic() + 10
        while True:
            try:
                await store.put(record)
                break
            except StoreUnavailable:
                assert time.monotonic() < deadline, "the store did not recover by itself"
                await asyncio.sleep(0.1)
        assert await store.get(record.id) == record
        assert "initialized successfully (cluster_mode=false, key_prefix=sr:, ttl=24h0m0s)" in caplog.text
        node.kill()
        with pytest.raises(StoreUnavailable) as down:
            await store.get(record.id)
        assert down.value.__cause__ is not None  # chained from the driver's exception
    finally:
        await store.aclose()
        node.stop()


# --- cluster --------------------------------------------------------------------------------------


def _node_name(store: RedisStore, response_id: str) -> str:
    """host:port of the master that holds this response's slot (per the client's slot map)."""
    assert isinstance(store.client, ClusterClient)
    node = store.client.get_node_from_key(store.keys.key(response_id))
    assert node is not None
    return str(node.name)


def _ports(nodes: list[str]) -> list[int]:
    return [int(n.rsplit(":", 1)[1]) for n in nodes]


@pytest.mark.redis_cluster
@pytest.mark.parametrize("depth", [1, 10, 1000])
async def test_round_trips_are_constant_cluster(redis_cluster_clean: list[str], depth: int) -> None:
    store = await open_cluster_store(redis_cluster_clean)
    try:
        assert await _round_trips(store, _ports(redis_cluster_clean), depth) == EXPECTED_ROUND_TRIPS
    finally:
        await store.aclose()


@pytest.mark.redis_cluster
async def test_cluster_start_up_log_lines(
    redis_cluster_clean: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    store = await RedisStore.open(cluster_settings(redis_cluster_clean), ttl_seconds=86400)
    try:
        assert "RedisStore: creating cluster client (nodes=6, pool_size=20)" in caplog.text
        assert (
            "RedisStore: initialized successfully (cluster_mode=true, key_prefix=sr:, ttl=24h0m0s)"
            in caplog.text
        )
        assert caplog.text.index("creating cluster client") < caplog.text.index("initialized successfully")
    finally:
        await store.aclose()


def _keys_on(port: int, pattern: str = "sr:*") -> list[str]:
    return sorted(k.decode() for k in command(port, "KEYS", pattern))


@pytest.mark.redis_cluster
async def test_a_record_lives_on_one_master_and_its_replica(started_cluster: RedisCluster) -> None:
    store = await open_cluster_store(started_cluster.addresses)
    try:
        record = make_record()
        await store.put(record)
        key = store.keys.key(record.id)
        assert key.startswith("sr:response:") and record.id in key
        deadline = time.monotonic() + 5
        while True:
            holders = [p for p in started_cluster.ports if _keys_on(p) == [key]]
            if len(holders) == 2 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert len(holders) == 2
        roles = redis_servers.cluster_nodes(holders[0])
        a, b = (roles[p] for p in holders)
        master, replica = (a, b) if a["master"] else (b, a)
        assert master["master"] and replica["replica"] and replica["master_id"] == master["id"]
        others = [p for p in started_cluster.ports if p not in holders]
        assert all(_keys_on(p) == [] for p in others)
    finally:
        await store.aclose()


@pytest.mark.redis_cluster
async def test_new_threads_spread_over_all_masters(started_cluster: RedisCluster) -> None:
    store = await open_cluster_store(started_cluster.addresses)
    try:
        await asyncio.gather(*(store.put(make_record()) for _ in range(300)))
        sizes = [command(m.port, "DBSIZE") for m in started_cluster.masters()]
        assert len(sizes) == 3 and sum(sizes) == 300
        assert min(sizes) >= 50, sizes
    finally:
        await store.aclose()


@pytest.mark.redis_cluster
async def test_wait_replicas_confirms_and_fails_closed_without_replica(started_cluster: RedisCluster) -> None:
    store = await open_cluster_store(started_cluster.addresses, wait_replicas=1, wait_timeout_ms=200)
    try:
        record = make_record()
        await store.put(record)  # warm the script cache
        child = make_record(record)
        before = store.stats.round_trips, store.stats.commands
        await store.put(child)
        assert (store.stats.round_trips - before[0], store.stats.commands - before[1]) == (1, 2)
        assert await store.delete(child.id) is True

        master = next(
            m
            for m in started_cluster.masters()
            if store.keys.key(record.id).encode() in command(m.port, "KEYS", "sr:*")
        )
        replica = started_cluster.replica_of(master)[0]
        replica.kill()
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as info:
            await store.put(make_record(record))
        assert time.monotonic() - started < 5
        assert "replica" in str(info.value) or "WAIT" in str(info.value)
        # Other shards still have their replica: a new thread there is confirmed.
        confirmed = 0
        for _ in range(20):
            other = make_record()
            if _node_name(store, other.id) != master.address:
                await store.put(other)
                confirmed += 1
        assert confirmed > 0
    finally:
        await store.aclose()
        started_cluster.repair()


@pytest.mark.redis_cluster
@pytest.mark.slow
async def test_cluster_down_at_open_then_up(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    require_redis_binaries()
    caplog.set_level(logging.INFO, logger=LOGGER)
    ports = redis_servers.free_ports(6, start=18600, cluster=True)
    nodes = [f"127.0.0.1:{p}" for p in ports]
    store = await RedisStore.open(cluster_settings(nodes, dial_timeout=0.5), ttl_seconds=3600)
    cluster = None
    try:
        assert any(r.levelno == logging.WARNING and "not reachable" in r.getMessage() for r in caplog.records)
        with pytest.raises(StoreUnavailable):
            await store.get(new_response_id())
        cluster = await asyncio.to_thread(redis_servers.start_cluster, tmp_path, ports)
        record = make_record()
        deadline = time.monotonic() + 15
        while True:
            try:
                await store.put(record)
                break
            except StoreUnavailable:
                assert time.monotonic() < deadline, "the cluster store did not recover by itself"
                await asyncio.sleep(0.2)
        assert await store.get_chain(record.id) == light([record])
        await store.ping()
    finally:
        await store.aclose()
        if cluster is not None:
            cluster.stop()


@pytest.mark.redis_cluster
@pytest.mark.slow
async def test_master_failover_recovers_without_losing_acknowledged_writes(
    started_cluster: RedisCluster,
) -> None:
    store = await open_cluster_store(started_cluster.addresses)
    acked: list[Any] = []
    try:
        root = make_record()
        await store.put(root)
        master = started_cluster.masters()[0]
        victim = next(m for m in started_cluster.masters() if _node_name(store, root.id) == m.address)
        del master
        victim.kill()
        failures = 0
        deadline = time.monotonic() + 20
        parent = root
        while time.monotonic() < deadline:
            record = make_record(parent)
            try:
                await store.put(record)
                acked.append(record)
                parent = record
                if len(acked) >= 5 and failures:
                    break
            except StoreUnavailable:
                failures += 1
                await asyncio.sleep(0.1)
        assert failures > 0 and len(acked) >= 5
        chain = await store.get_chain(parent.id)
        assert chain is not None
        assert [r.id for r in chain] == [root.id] + [r.id for r in acked]
    finally:
        await store.aclose()
        started_cluster.repair()


@pytest.mark.redis
async def test_a_delete_applied_but_not_confirmed_then_retried_reports_deleted(tmp_path: Path) -> None:
    """The first attempt tombstones the record but its WAIT times out (the replica is frozen); the
    retry finds the tombstone: that is this call's own delete, not a 404."""
    require_redis_binaries()
    ports = redis_servers.free_ports(2, start=18100)
    master = redis_servers.RedisNode(port=ports[0], directory=tmp_path / "m")
    replica = redis_servers.RedisNode(port=ports[1], directory=tmp_path / "r")
    master.start()
    replica.start()
    try:
        redis_servers.command(replica.port, "REPLICAOF", "127.0.0.1", str(master.port))
        for _ in range(200):
            if redis_servers.info(master.port, "replication").get("connected_slaves") == "1":
                break
            await asyncio.sleep(0.05)
        store = await open_standalone_store(
            master.address, wait_replicas=1, wait_timeout_ms=50, max_retries=5, read_timeout=2.0
        )
        try:
            record = make_record()
            await store.put(record)
            replica.freeze()
            asyncio.get_running_loop().call_later(0.12, replica.thaw)
            assert await store.delete(record.id) is True
            assert await store.get(record.id) is None
            assert await store.delete(record.id) is False  # a later, separate delete: not found
        finally:
            await store.aclose()
    finally:
        replica.thaw()
        replica.stop()
        master.stop()


@pytest.mark.redis
async def test_requests_queued_behind_a_failed_connect_do_not_each_wait_a_timeout(tmp_path: Path) -> None:
    """A frozen Redis at start-up: the first request's connect attempt times out; those queued behind
    it share its back-off (fast 503s) instead of each spending a connect timeout in turn."""
    require_redis_binaries()
    node = redis_servers.start_standalone(tmp_path / "frozen")
    node.freeze()
    try:
        store = await open_standalone_store(node.address, dial_timeout=0.5, read_timeout=0.5)
        try:
            await asyncio.sleep(0.6)  # past the back-off of the failed first contact in open()
            started = time.monotonic()
            results = await asyncio.gather(
                *(store.get(make_record().id) for _ in range(8)), return_exceptions=True
            )
            elapsed = time.monotonic() - started
            assert all(isinstance(r, StoreUnavailable) for r in results), results
            # one failed attempt (about 3 s against a frozen server: TCP connects, PING times out),
            # not eight in a row (24 s measured before the fix)
            assert elapsed < 10.0, elapsed
        finally:
            await store.aclose()
    finally:
        node.thaw()
        node.stop()


@pytest.mark.redis
async def test_a_child_of_a_missing_parent_is_not_written(redis_clean: str) -> None:
    """The parent is gone (expired since the chain was read, or its slot is migrating here): the
    put writes nothing and fails (retried, then 503) rather than store a child that outlives it."""
    store = await open_standalone_store(redis_clean, max_retries=1)
    try:
        orphan = make_record(make_record())  # its parent was never stored
        with pytest.raises(StoreUnavailable, match=r"TRYAGAIN|parent"):
            await store.put(orphan)
        assert (
            redis_servers.command(
                int(redis_clean.rsplit(":", 1)[1].split("/")[0]), "EXISTS", store.keys.key(orphan.id)
            )
            == 0
        )
    finally:
        await store.aclose()
