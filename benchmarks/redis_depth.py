"""Redis work per chained create by depth: our branch segments next to one GET per hop, one run.

Starts its own redis-server processes on free loopback ports (a standalone server and a 6-node
cluster, 3 masters + 3 replicas), builds linear chains to depth 1, 10, 100 and 1,000, and measures
chained creates at the tip as the gateway does them: the parent's history, then the child's put.
- ours: `RedisStore.get_history(parent)` + `RedisStore.put(child)`.
- one GET per hop: one key per response (`bench:gph:{<tag>}:<id>`, value = parent id + chat), the
  history rebuilt with one GET per ancestor, then one SET; same slot, same servers, same run.
Per create: Redis commands executed (INFO commandstats calls summed over every node, commands run
inside Lua included, replicas applying the writes included), Redis CPU (commandstats usec of the
commands clients sent, on the masters: a script's usec covers the commands it runs) and client
wall time. Run: .venv/bin/python benchmarks/redis_depth.py [--creates N]
"""

from __future__ import annotations

import _common  # noqa: F401  first: puts the repo root on sys.path, for `tests.…`

# isort: split
import argparse
import asyncio
import datetime
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from redis.asyncio import Redis
from tests.stores.records import make_record, put_chain
from tests.support import redis_servers
from tests.support.redis_stores import commandstats, open_cluster_store, open_standalone_store

from _common import machine, md_table
from responses_gateway.ids import thread_tag
from responses_gateway.stores.base import StoredResponse
from responses_gateway.stores.redis import RedisStore

DEPTHS = (1, 10, 100, 1000)
SENT = ("evalsha", "eval", "get", "set", "wait", "asking")  # commands clients send (CPU column)
TTL_MS = 86_400_000


class OneGetPerHop:
    """The reference's layout: one key per response holding its parent id and its chat blob."""

    def __init__(self, store: RedisStore) -> None:
        self._store = store  # only for its connection: the master of a key's slot

    def _key(self, response_id: str) -> str:
        return f"bench:gph:{{{thread_tag(response_id)}}}:{response_id}"

    def _client(self, response_id: str) -> Redis:
        return self._store.connection.client_for(self._key(response_id))

    async def put(self, record: StoredResponse) -> None:
        value = (record.previous_response_id or "").encode() + b"\n" + record.chat
        await self._client(record.id).set(self._key(record.id), value, px=TTL_MS)

    async def put_many(self, records: list[StoredResponse]) -> None:
        pipe = self._client(records[0].id).pipeline(transaction=False)
        for record in records:
            pipe.set(self._key(record.id), (record.previous_response_id or "").encode() + b"\n" + record.chat)
        await pipe.execute()

    async def get_history(self, response_id: str) -> list[bytes]:
        client, turns, current = self._client(response_id), [], response_id
        while current:
            value = await client.get(self._key(current))
            parent, _, chat = value.partition(b"\n")
            turns.append(chat)
            current = parent.decode()
        return turns[::-1]


def chain_records(depth: int) -> list[StoredResponse]:
    chain: list[StoredResponse] = []
    for i in range(depth):
        chain.append(make_record(chain[-1] if chain else None, text=f"turn {i}"))
    return chain


async def measure(
    ports: list[int], masters: list[int], creates: int, create: Callable[[], Awaitable[None]]
) -> tuple[float, float, float]:
    """(commands / create over every node, Redis CPU µs / create on the masters, median client ms)."""
    before_all, before_masters = commandstats(ports), commandstats(masters)
    walls = []
    for _ in range(creates):
        start = time.perf_counter()
        await create()
        walls.append((time.perf_counter() - start) * 1000)
    await asyncio.sleep(0.3)  # replicas apply the writes asynchronously
    after_all, after_masters = commandstats(ports), commandstats(masters)
    calls = sum(c for c, _ in after_all.values()) - sum(c for c, _ in before_all.values())
    usec = sum(after_masters.get(n, (0, 0))[1] - before_masters.get(n, (0, 0))[1] for n in SENT)
    return calls / creates, usec / creates, statistics.median(walls)


async def run_mode(
    name: str, store: RedisStore, ports: list[int], masters: list[int], creates: int
) -> list[list[str]]:
    """One row per depth: `creates` chained creates, each on the tip of its own chain of that depth
    (so every measured create is at exactly that depth)."""
    baseline = OneGetPerHop(store)
    rows = []
    for depth in DEPTHS:
        n = creates if depth < 1000 else max(4, creates // 5)
        ours_tips = [(await put_chain(store, depth))[-1] for _ in range(n)]
        ref_tips = []
        for _ in range(n):
            chain = chain_records(depth)
            await baseline.put_many(chain)
            ref_tips.append(chain[-1])

        async def ours(tips: list[StoredResponse] = ours_tips) -> None:
            tip = tips.pop()
            assert await store.get_history(tip.id) is not None
            await store.put(make_record(tip))

        async def reference(tips: list[StoredResponse] = ref_tips) -> None:
            tip = tips.pop()
            await baseline.get_history(tip.id)
            await baseline.put(make_record(tip))

        o = await measure(ports, masters, n, ours)
        r = await measure(ports, masters, n, reference)
        rows.append(
            [
                name,
                str(depth),
                f"{o[0]:.1f}",
                f"{o[1]:.0f}",
                f"{o[2]:.2f}",
                f"{r[0]:.1f}",
                f"{r[1]:.0f}",
                f"{r[2]:.2f}",
                f"{r[1] / o[1]:.1f}x",
            ]
        )
    return rows


async def main(creates: int) -> None:
    base = Path(tempfile.mkdtemp(prefix="rg-redis-depth-"))
    standalone = redis_servers.start_standalone(base, port=redis_servers.free_ports(1, start=19500)[0])
    cluster = None
    rows: list[list[str]] = []
    try:
        cluster = redis_servers.start_cluster(
            base / "cluster", redis_servers.free_ports(6, start=19600, cluster=True)
        )
        store = await open_standalone_store(standalone.address, ttl_seconds=86400)
        try:
            rows += await run_mode("standalone", store, [standalone.port], [standalone.port], creates)
        finally:
            await store.aclose()
        store = await open_cluster_store(cluster.addresses, ttl_seconds=86400)
        try:
            masters = [m.port for m in cluster.masters()]
            rows += await run_mode("cluster", store, cluster.ports, masters, creates)
        finally:
            await store.aclose()
    finally:
        standalone.stop()
        if cluster is not None:
            cluster.stop()
    headers = [
        "mode",
        "depth",
        "ours: commands",
        "ours: Redis µs",
        "ours: ms",
        "1 GET/hop: commands",
        "1 GET/hop: Redis µs",
        "1 GET/hop: ms",
        "Redis CPU ratio",
    ]
    info = machine()
    print(f"Per chained create (history of the parent + put of the child); {datetime.date.today()}; {info}")
    print()
    print(md_table(headers, rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=40, help="chained creates measured per depth")
    asyncio.run(main(parser.parse_args().creates))
