"""Redis store: get_chain / put latency by depth, next to the reference's one-GET-per-hop rebuild.

Run: .venv/bin/python benchmarks/bench_redis_store.py  (starts its own standalone server and cluster)
"""

from __future__ import annotations

import asyncio
import functools
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.stores.records import make_record, put_chain
from tests.support import redis_servers
from tests.support.redis_stores import open_cluster_store, open_standalone_store

from responses_gateway.stores.base import encode_record
from responses_gateway.stores.redis import RedisStore

DEPTHS = (1, 10, 100, 1000)


async def _time(fn: Any, n: int) -> float:
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1000


async def _per_hop(client: Any, ref: dict[str, str], head_id: str) -> None:
    rid: str | None = head_id
    while rid:
        blob = await client.execute_command("GET", ref[rid])
        rid = orjson.loads(blob)["prev"] if blob else None


async def bench(store: RedisStore, label: str) -> None:
    client = store.client
    print(f"\n{label}: median ms (round trips per call)")
    print(f"{'depth':>6} {'get_chain':>10} {'put':>8} {'GET/hop':>9}")
    for depth in DEPTHS:
        chain = await put_chain(store, depth)
        head = chain[-1]
        n = 200 if depth <= 100 else 30
        rt = store.stats.round_trips
        chain_ms = await _time(lambda h=head: store.get_chain(h.id), n)
        chain_rt = (store.stats.round_trips - rt) / n
        rt = store.stats.round_trips
        put_ms = await _time(lambda h=head: store.put(make_record(h)), n)
        put_rt = (store.stats.round_trips - rt) / n
        # the reference's layout: one string per response, rebuilt with one GET per hop
        ref = {r.id: f"ref:response:{{{r.id[5:21]}}}:{r.id}" for r in chain}
        for r in chain:
            await client.execute_command("SET", ref[r.id], encode_record(r))
        per_hop = functools.partial(_per_hop, client, ref, head.id)
        hop_ms = await _time(per_hop, n if depth < 1000 else 10)
        row = f"{depth:>6} {chain_ms:>7.2f}({chain_rt:.0f}) {put_ms:>5.2f}({put_rt:.0f})"
        print(f"{row} {hop_ms:>6.2f}({depth})")


async def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="rg-bench-"))
    node = redis_servers.start_standalone(base)
    cluster = redis_servers.start_cluster(base / "cluster")
    try:
        store = await open_standalone_store(f"127.0.0.1:{node.port}")
        await bench(store, "standalone")
        await store.aclose()
        store = await open_cluster_store(cluster.addresses)
        await bench(store, "cluster (3 masters + 3 replicas)")
        await store.aclose()
    finally:
        node.stop()
        cluster.stop()


if __name__ == "__main__":
    asyncio.run(main())
