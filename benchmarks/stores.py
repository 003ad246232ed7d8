"""Store benchmark: round trips per operation, chain rebuild by depth next to the reference's
one-GET-per-hop walk, and create throughput through the gateway on every backend, in one run.

Backends: memory, sqlite, redis standalone and a 6-node redis cluster (3 masters + 3 replicas),
started here on free loopback ports by tests/support/redis_servers.py (never 7001-7006).

1. Round trips per create / retrieve / chained create, counted two ways that must agree: the
   store's own counter (`RedisStore.stats`) and the servers' `INFO commandstats` deltas summed over
   every master. SQLite: jobs on its worker thread and SQL statements; memory: none (in-process).
   Then the same counted end to end, on the servers, around creates sent to the gateway process.
2. `store.get_history` at depths 1, 10, 100 and 1,000 (median and p99 ms), and on Redis the
   reference's approach in the same run: each record is also SET as `bench:ref:{<tag>}:<id>` (the
   same JSON blob, the same slot) and the chain is walked with one GET per hop from a plain redis-py
   asyncio client, decoding each record as ours does.
3. Creates (store on) through the gateway process on each backend, as ratios to calling the backend
   directly, with the CPU ms per create of the gateway, the backend and the Redis servers.

Run: .venv/bin/python benchmarks/stores.py [--quick]
"""

from __future__ import annotations

import _common  # noqa: F401  first: puts the repo root on sys.path, for `tests.…`

# isort: split
import argparse
import contextlib
import re
import socket
import tempfile
import threading
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from tests.stores.records import make_record, put_chain
from tests.support import redis_servers
from tests.support.redis_stores import cluster_settings, standalone_settings

from _common import (
    FULL,
    QUICK,
    Budget,
    CpuMeter,
    Request,
    Result,
    Service,
    Services,
    build_chain,
    chat_body,
    create_body,
    drive,
    machine,
    md_table,
    post_json,
    ratio,
    run,
    services,
    session,
    start_echo,
    start_gateway,
    timed,
)
from responses_gateway.config import SQLiteSettings
from responses_gateway.ids import thread_tag
from responses_gateway.stores.base import ResponseStore, StoredResponse
from responses_gateway.stores.memory import MemoryStore
from responses_gateway.stores.redis import RedisStore
from responses_gateway.stores.sqlite import SQLiteStore

DEPTHS = (1, 10, 100, 1000)
ROUND_TRIP_DEPTHS = (1, 10, 1000)
IGNORED_COMMANDS = {"info", "replconf"}  # our own INFO and the replicas' acks to their master


# --- Redis servers -------------------------------------------------------------------------------


@dataclass
class RedisServers:
    standalone: redis_servers.RedisNode
    cluster: redis_servers.RedisCluster

    def master_ports(self, which: str) -> list[int]:
        if which == "redis":
            return [self.standalone.port]
        return [m.port for m in self.cluster.masters()]

    def pids(self, which: str) -> list[int]:
        nodes = [self.standalone] if which == "redis" else self.cluster.nodes
        return [p for p in (n.pid() for n in nodes) if p is not None]


def start_redis(reg: Services, workdir: Path) -> RedisServers:
    node = redis_servers.start_standalone(workdir / "redis")
    reg.add("redis standalone", node.stop)
    cluster = redis_servers.start_cluster(workdir / "redis-cluster")
    reg.add("redis cluster", cluster.stop)
    return RedisServers(node, cluster)


def command_calls(ports: list[int]) -> Counter[str]:
    """`INFO commandstats` calls per command, summed over these servers (includes commands run
    inside Lua scripts)."""
    total: Counter[str] = Counter()
    for port in ports:
        for key, value in redis_servers.info(port, "commandstats").items():
            if key.startswith("cmdstat_"):
                name = key[len("cmdstat_") :]
                if name not in IGNORED_COMMANDS:
                    total[name] += int(value.split(",", 1)[0].split("=", 1)[1])
    return total


_MONITOR_LINE = re.compile(rb'^\+[0-9.]+ \[\d+ ([^\]]+)\] "([^"]+)"')


class _Monitor:
    """`MONITOR` on one server, counting the commands clients sent (lines from Lua are apart)."""

    def __init__(self, port: int, marker: bytes) -> None:
        self.port = port
        self.marker = marker
        self.client: Counter[str] = Counter()
        self.lua: Counter[str] = Counter()
        self._sock = socket.create_connection((redis_servers.HOST, port), timeout=10)
        self._sock.sendall(b"*1\r\n$7\r\nMONITOR\r\n")
        self._file = self._sock.makefile("rb")
        if self._file.readline() != b"+OK\r\n":
            raise RuntimeError(f"MONITOR refused on {port}")
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            for line in self._file:
                if self.marker in line:
                    return
                m = _MONITOR_LINE.match(line)
                if m is None:
                    continue
                source, cmd = m.group(1), m.group(2).decode().lower()
                if source == b"lua":
                    self.lua[cmd] += 1
                elif cmd not in IGNORED_COMMANDS:
                    self.client[cmd] += 1

    def stop(self) -> None:
        redis_servers.command(self.port, "ECHO", self.marker)
        self._thread.join(10)
        self._sock.close()


class CommandCounter:
    """Commands the clients sent (MONITOR, every master) between `start()` and `stop()`, and all
    commands executed including those inside Lua scripts (`INFO commandstats` deltas)."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self._before: Counter[str] = Counter()
        self._monitors: list[_Monitor] = []

    def start(self) -> None:
        marker = f"bench-marker-{uuid.uuid4().hex}".encode()
        self._monitors = [_Monitor(p, marker) for p in self.ports]
        self._before = command_calls(self.ports)

    def stop(self) -> tuple[Counter[str], Counter[str]]:
        after = command_calls(self.ports)
        after.subtract(self._before)
        after["echo"] -= len(self._monitors)  # our end-of-window markers
        sent: Counter[str] = Counter()
        for m in self._monitors:
            m.stop()
            sent.update(m.client)
        after["monitor"] -= len(self._monitors)
        return sent, +after


def per_op(counts: Counter[str], n: int) -> str:
    total = sum(counts.values()) / n
    detail = ", ".join(f"{k.upper()} {v / n:g}" for k, v in sorted(counts.items()))
    return f"{total:g} ({detail})" if detail else f"{total:g}"


# --- stores opened in this process -----------------------------------------------------------------


@dataclass
class OpenStore:
    name: str
    store: ResponseStore
    counter: Callable[[], int] | None = None  # round trips (Redis) or worker-thread jobs (SQLite)
    statements: Callable[[], int] | None = None  # SQLite: SQL statements executed
    commands: CommandCounter | None = None  # Redis: server-side commands
    ref_client: Redis | RedisCluster | None = None


async def open_stores(workdir: Path, servers: RedisServers) -> list[OpenStore]:
    out = [OpenStore("memory", MemoryStore(max_responses=1_000_000, ttl_seconds=86400))]

    sqlite = await SQLiteStore.open(SQLiteSettings(path=str(workdir / "stores.db")), ttl_seconds=86400)
    jobs = [0]
    statements = [0]
    original_write, original_read = sqlite._write, sqlite._read

    async def counting_write(fn: Callable[..., Any], *args: Any) -> Any:
        jobs[0] += 1
        return await original_write(fn, *args)

    async def counting_read(fn: Callable[..., Any], *args: Any) -> Any:
        jobs[0] += 1
        return await original_read(fn, *args)

    sqlite._write = counting_write  # type: ignore[method-assign]
    sqlite._read = counting_read  # type: ignore[method-assign]
    count = lambda _sql: statements.__setitem__(0, statements[0] + 1)  # noqa: E731
    sqlite._writer._conn.set_trace_callback(count)
    if sqlite._reader is not None:
        sqlite._reader.set_trace_callback(count)
    out.append(OpenStore("sqlite", sqlite, lambda: jobs[0], lambda: statements[0]))

    standalone = await RedisStore.open(
        standalone_settings(servers.standalone.address, pool_size=20), ttl_seconds=86400
    )
    out.append(
        OpenStore(
            "redis",
            standalone,
            lambda: standalone.stats.round_trips,
            commands=CommandCounter(servers.master_ports("redis")),
            ref_client=Redis(host=redis_servers.HOST, port=servers.standalone.port),
        )
    )
    cluster = await RedisStore.open(cluster_settings(servers.cluster.addresses), ttl_seconds=86400)
    first = servers.cluster.nodes[0]
    out.append(
        OpenStore(
            "redis-cluster",
            cluster,
            lambda: cluster.stats.round_trips,
            commands=CommandCounter(servers.master_ports("redis-cluster")),
            ref_client=RedisCluster(host=redis_servers.HOST, port=first.port),
        )
    )
    return out


async def close_stores(stores: list[OpenStore]) -> None:
    for s in stores:
        await s.store.aclose()
        if s.ref_client is not None:
            await s.ref_client.aclose()


# --- 1. round trips per operation, in process ------------------------------------------------------


@dataclass
class RoundTrips:
    rows: list[list[Any]] = field(default_factory=list)


async def count_ops(s: OpenStore, n: int) -> list[list[Any]]:
    """Each operation `n` times; round trips (or jobs) and commands per operation."""
    rows: list[list[Any]] = []
    chains = {d: await put_chain(s.store, d) for d in ROUND_TRIP_DEPTHS}
    roots = [make_record() for _ in range(n)]

    async def create() -> None:
        for r in roots:
            await s.store.put(r)

    async def retrieve() -> None:
        for i in range(n):
            await s.store.get(roots[i % len(roots)].id)

    def chained(depth: int) -> Callable[[], Awaitable[None]]:
        tip = chains[depth][-1]

        async def op() -> None:
            for _ in range(n):  # what the service does: read the history, then write the child
                await s.store.get_history(tip.id)
                await s.store.put(make_record(tip))

        return op

    ops: list[tuple[str, Callable[[], Awaitable[None]]]] = [("create", create), ("retrieve", retrieve)]
    ops += [(f"chained create, depth {d}", chained(d)) for d in ROUND_TRIP_DEPTHS]
    for label, op in ops:
        before = s.counter() if s.counter else 0
        before_st = s.statements() if s.statements else 0
        if s.commands:
            s.commands.start()
        await op()
        trips = f"{((s.counter() if s.counter else 0) - before) / n:g}" if s.counter else "0 (in-process)"
        if s.statements:
            trips += f" jobs, {(s.statements() - before_st) / n:g} SQL statements"
        sent, executed = s.commands.stop() if s.commands else (Counter(), Counter())
        rows.append(
            [
                s.name,
                label,
                trips,
                per_op(sent, n) if s.commands else "",
                per_op(executed, n) if s.commands else "",
            ]
        )
    return rows


# --- 2. chain rebuild by depth -----------------------------------------------------------------------


def ref_key(rid: str) -> str:
    return f"bench:ref:{{{thread_tag(rid) or '_'}}}:{rid}"


async def write_ref(client: Redis | RedisCluster, chain: list[StoredResponse]) -> None:
    """The reference's layout: one plain key per response holding its JSON (with its parent id)."""
    for i in range(0, len(chain), 100):
        pipe = client.pipeline(transaction=False)
        for r in chain[i : i + 100]:
            pipe.set(ref_key(r.id), _ref_blob(r), ex=86400)
        await pipe.execute()


def _ref_blob(r: StoredResponse) -> bytes:
    """The whole record as one JSON document, as the reference stores it."""
    return orjson.dumps(
        {
            "id": r.id,
            "prev": r.previous_response_id,
            "owner": r.owner,
            "response": orjson.Fragment(r.response),
            "input": orjson.Fragment(r.input_items),
        }
    )


async def walk_ref(client: Redis | RedisCluster, head: str) -> list[dict[str, Any]]:
    """The reference's rebuild: one GET per hop, following the parent pointers, each decoded."""
    out: list[dict[str, Any]] = []
    rid: str | None = head
    while rid:
        blob = await client.get(ref_key(rid))
        if blob is None:
            break
        record: dict[str, Any] = orjson.loads(blob)
        out.append(record)
        rid = record["prev"]
    out.reverse()
    return out


async def chain_rebuild(stores: list[OpenStore], budget: Budget) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for s in stores:
        for depth in DEPTHS:
            chain = await put_chain(s.store, depth)
            head = chain[-1].id
            got = await s.store.get_history(head)
            assert got is not None and len(got) == depth, (s.name, depth)
            n = (40 if budget.quick else 200) if depth <= 100 else (8 if budget.quick else 30)
            store = s.store
            ours = await timed(lambda h=head, st=store: st.get_history(h), n)  # type: ignore[misc]
            ours_ms = sorted(ours)
            row: list[Any] = [s.name, depth, _med(ours_ms), _p99(ours_ms)]
            if s.ref_client is not None:
                await write_ref(s.ref_client, chain)
                walked = await walk_ref(s.ref_client, head)
                assert [r["id"] for r in walked] == [r.id for r in chain]
                n_ref = n if depth <= 100 else (3 if budget.quick else 10)
                ref = sorted(
                    await timed(lambda h=head, cl=s.ref_client: walk_ref(cl, h), n_ref)  # type: ignore[misc]
                )
                row += [_med(ref), _p99(ref), f"{_med(ref) / _med(ours_ms):.1f}x"]
            else:
                row += [float("nan"), float("nan"), ""]
            rows.append(row)
    return rows


def _med(sorted_s: list[float]) -> float:
    return sorted_s[len(sorted_s) // 2] * 1000


def _p99(sorted_s: list[float]) -> float:
    return sorted_s[min(len(sorted_s) - 1, int(len(sorted_s) * 0.99))] * 1000


# --- 3. creates through the gateway on each backend ----------------------------------------------


@dataclass
class GatewayRun:
    backend: str
    results: dict[tuple[str, int], Result] = field(default_factory=dict)
    commands: dict[str, tuple[str, str]] = field(default_factory=dict)


def gateway_configs(workdir: Path, servers: RedisServers) -> list[tuple[str, dict[str, Any]]]:
    cluster = {
        "cluster_mode": True,
        "cluster_addresses": servers.cluster.addresses,
        "pool_size": 20,
        "max_retries": 5,
        "dial_timeout": 10,
        "read_timeout": 3,
        "write_timeout": 3,
    }
    return [
        ("memory", {"store_backend": "memory", "memory": {"max_responses": 1_000_000}}),
        ("sqlite", {"store_backend": "sqlite", "sqlite": {"path": str(workdir / "gateway.db")}}),
        (
            "redis",
            {"store_backend": "redis", "redis": {"address": servers.standalone.address, "pool_size": 20}},
        ),
        ("redis-cluster", {"store_backend": "redis", "redis": cluster}),
        (
            "redis-cluster, wait_replicas 1",
            {"store_backend": "redis", "redis": {**cluster, "wait_replicas": 1, "wait_timeout_ms": 100}},
        ),
    ]


async def gateway_run(
    reg: Services,
    workdir: Path,
    echo: Service,
    servers: RedisServers,
    name: str,
    api: dict[str, Any],
    budget: Budget,
) -> GatewayRun:
    slug = name.split(",")[0] + ("-wait" if "wait" in name else "")
    gw = start_gateway(reg, workdir, echo.url, api, f"stores-{slug}")
    out = GatewayRun(name)
    redis_kind = "redis-cluster" if "cluster" in name else ("redis" if name == "redis" else None)
    pids: dict[str, list[int]] = {"gateway": [gw.pid], "backend": [echo.pid]}
    if redis_kind:
        pids["redis"] = servers.pids(redis_kind)
    meter = CpuMeter(pids)
    url = f"{gw.url}/v1/responses"
    try:
        async with session(4) as http:
            tip = (await build_chain(http, gw.url, 10))[-1]
            ids = [(await post_json(http, url, {"model": "echo", "input": f"r{i}"}))["id"] for i in range(64)]
            if redis_kind:  # end-to-end commands per operation, counted on the servers
                counter = CommandCounter(servers.master_ports(redis_kind))
                k = 50
                ops: list[tuple[str, Request]] = [
                    ("create", Request("POST", url, create_body())),
                    ("retrieve", Request("GET", f"{url}/{ids[0]}")),
                    ("chained create (depth 10)", Request("POST", url, create_body(previous=tip))),
                ]
                for label, req in ops:
                    counter.start()
                    r = await drive(http, label, lambda i, q=req: q, concurrency=1, count=k, max_seconds=30)  # type: ignore[misc]
                    sent, executed = counter.stop()
                    out.commands[label] = (per_op(sent, r.ok), per_op(executed, r.ok))
        plain = create_body()
        chained = create_body(previous=tip)
        for c in (1, 32):
            async with session(c) as http:
                await drive(
                    http, "warm-up", lambda i: Request("POST", url, plain), concurrency=c,
                    count=min(budget.warmup, budget.count(c)), max_seconds=5,
                )  # fmt: skip
                out.results["create", c] = await drive(
                    http,
                    f"create [{name}]",
                    lambda i: Request("POST", url, plain),
                    concurrency=c,
                    count=budget.count(c),
                    max_seconds=budget.max_seconds,
                    meter=meter,
                )
                if c == 32:
                    out.results["chain 10", c] = await drive(
                        http,
                        f"chained create depth 10 [{name}]",
                        lambda i: Request("POST", url, chained),
                        concurrency=c,
                        count=budget.count(c),
                        max_seconds=budget.max_seconds,
                        meter=meter,
                    )
                    out.results["retrieve", c] = await drive(
                        http,
                        f"retrieve [{name}]",
                        lambda i: Request("GET", f"{url}/{ids[i % len(ids)]}"),
                        concurrency=c,
                        count=budget.count(c),
                        max_seconds=budget.max_seconds,
                        meter=meter,
                    )
    finally:
        reg.stop(gw.stop)
    return out


async def measure_direct_chat(echo: Service, budget: Budget) -> dict[int, Result]:
    url = f"{echo.url}/v1/chat/completions"
    body = chat_body(False)
    meter = CpuMeter({"backend": [echo.pid]})
    out: dict[int, Result] = {}
    for c in (1, 32):
        async with session(c) as http:
            make = lambda i: Request("POST", url, body)  # noqa: E731
            await drive(http, "warm-up", make, concurrency=c, count=budget.warmup, max_seconds=5)
            out[c] = await drive(
                http, "direct chat", make, concurrency=c, count=budget.count(c),
                max_seconds=budget.max_seconds, meter=meter,
            )  # fmt: skip
    return out


# --- the whole run -------------------------------------------------------------------------------------


@dataclass
class StoresReport:
    round_trips: list[list[Any]] = field(default_factory=list)
    chains: list[list[Any]] = field(default_factory=list)
    direct: dict[int, Result] = field(default_factory=dict)
    gateway: list[GatewayRun] = field(default_factory=list)


async def run_stores(reg: Services, workdir: Path, budget: Budget, echo: Service) -> StoresReport:
    rep = StoresReport()
    servers = start_redis(reg, workdir)
    stores = await open_stores(workdir, servers)
    try:
        for s in stores:
            rep.round_trips += await count_ops(s, 20 if budget.quick else 100)
        rep.chains = await chain_rebuild(stores, budget)
    finally:
        await close_stores(stores)
    rep.direct = await measure_direct_chat(echo, budget)
    for name, api in gateway_configs(workdir, servers):
        rep.gateway.append(await gateway_run(reg, workdir, echo, servers, name, api, budget))
    return rep


def render(rep: StoresReport) -> str:
    parts = [
        "#### Round trips per operation (store called in process)",
        "",
        "Redis: the store's own round-trip counter; the commands clients sent, counted by `MONITOR` on "
        "every master (lines from Lua scripts apart); and every command executed, including those run "
        "inside Lua (`INFO commandstats` deltas summed over all masters). SQLite: jobs on its worker "
        "thread and SQL statements. A chained create is what the service does: `get_history(parent)` then "
        "`put(child)`.",
        "",
        md_table(
            [
                "backend",
                "operation",
                "round trips / op (store counter)",
                "commands sent / op (MONITOR)",
                "commands executed / op, incl. inside Lua (commandstats)",
            ],
            rep.round_trips,
        ),
        "",
        "#### History read (`get_history`) by depth; Redis: next to the reference's one GET per hop",
        "",
        md_table(
            [
                "backend",
                "depth",
                "get_history p50 ms",
                "p99 ms",
                "GET/hop p50 ms",
                "GET/hop p99 ms",
                "GET/hop ÷ ours",
            ],
            rep.chains,
        ),
        "",
        "#### Creates (store on) through the gateway, per backend",
        "",
        "Ratios are to calling the echo backend directly (JSON chat) at the same concurrency, in this run: "
        + ", ".join(f"c={c}: {r.rps:,.0f} req/s, p50 {r.p50:.2f} ms" for c, r in rep.direct.items())
        + ". CPU is ms per request: the gateway process, the backend, and all Redis servers (cluster: 6).",
        "",
    ]
    rows: list[list[Any]] = []
    for run_ in rep.gateway:
        for (key, c), r in run_.results.items():
            base = rep.direct[c]
            label = {"create": "create", "chain 10": "chained create, depth 10", "retrieve": "retrieve"}[key]
            rows.append(
                [
                    run_.backend,
                    label,
                    c,
                    r.rps,
                    r.p50,
                    r.p99,
                    f"{ratio(r.rps, base.rps):.2f}",
                    r.cpu_ms_per_request("gateway"),
                    r.cpu_ms_per_request("backend"),
                    r.cpu_ms_per_request("redis"),
                ]
            )
    parts.append(
        md_table(
            [
                "backend",
                "operation",
                "c",
                "req/s",
                "p50 ms",
                "p99 ms",
                "req/s ÷ direct",
                "gateway CPU ms/req",
                "backend CPU ms/req",
                "redis CPU ms/req",
            ],
            rows,
        )
    )
    cmd_rows = [[g.backend, op, v[0], v[1]] for g in rep.gateway for op, v in g.commands.items()]
    if cmd_rows:
        parts += [
            "",
            "#### Redis commands per request through the gateway (end to end, counted on the servers)",
            "",
            md_table(
                ["backend", "request", "commands sent / request", "executed, incl. inside Lua"], cmd_rows
            ),
        ]
    return "\n".join(parts)


async def _main(args: argparse.Namespace) -> None:
    budget = QUICK if args.quick else FULL
    with services() as reg, tempfile.TemporaryDirectory(prefix="rg-bench-stores-") as tmp:
        workdir = Path(tmp)
        echo = start_echo(reg, workdir)
        rep = await run_stores(reg, workdir, budget, echo)
        print(" ".join(f"{k}={v}" for k, v in machine().items()))
        print(render(rep))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a short run (fewer requests)")
    run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
