"""Workers benchmark: creates/s through `serve --workers 1` and `--workers 2`, next to the echo backend
called directly, in one run.

Each measurement is closed-loop aiohttp load at c=32 on loopback: the direct baseline is
`POST /v1/chat/completions` (JSON) on the echo backend; through the gateway it is `POST /v1/responses`
with store on, over a standalone Redis this script starts on a free loopback port (`--store redis`,
the default), a 6-node Redis Cluster on free ports (`--store redis-cluster`, 3 masters + 3 replicas)
or one SQLite file (`--store sqlite`, which serialises the workers' writes on that file).
Reported: requests/s, p50/p99, the ratio to the direct call and to 1 worker, CPU ms per request of the
gateway (supervisor and every worker), the backend, Redis and this load generator, and how the workers'
CPU splits between them (how evenly the kernel spread the connections). With `--rounds N` the three
are measured N times, interleaved, and the round with the median rate is shown.

Run: .venv/bin/python benchmarks/workers.py [--quick] [--store redis|redis-cluster|sqlite] [--rounds N]
     [--workers 1,2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import (
    FULL,
    QUICK,
    Budget,
    CpuMeter,
    Request,
    Result,
    Service,
    Services,
    chat_body,
    create_body,
    drive,
    machine,
    md_table,
    ratio,
    run,
    services,
    session,
    start_echo,
    start_gateway,
)

CONCURRENCY = 32


def start_gateway_workers(
    reg: Services, workdir: Path, backend_url: str, response_api: dict[str, Any], workers: int
) -> tuple[Service, list[int], list[int]]:
    """`responses-gateway serve --workers N`, waited for until every worker started; the PIDs of all its
    processes, and of those serving (the workers; with 1 worker, the one process)."""
    from tests.support.processes import children  # after _common put the repository on sys.path

    # log level info: the workers' "Application startup complete." lines tell when all are up
    svc = start_gateway(
        reg, workdir, backend_url, response_api, f"workers-{workers}", args=["--workers", str(workers)],
        log_level="info",
    )  # fmt: skip
    log = svc.log
    assert log is not None
    deadline = time.monotonic() + 60
    while log.read_text().count("Application startup complete.") < workers:
        if svc.proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{svc.name}: not every worker started:\n{log.read_text()[-2000:]}")
        time.sleep(0.05)
    kids = sorted(children(svc.pid))
    serving = [p for p in kids if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
    return svc, [svc.pid, *kids], serving or [svc.pid]


def _split(r: Result) -> str:
    """Each worker's share of the workers' CPU time, in %: how evenly the kernel spread the connections."""
    shares = [v for k, v in r.cpu.items() if k.startswith("worker ")]
    total = sum(shares)
    return "/".join(f"{100 * v / total:.0f}" for v in sorted(shares, reverse=True)) if total else "n/a"


async def _measure(name: str, make: Callable[[int], Request], budget: Budget, meter: CpuMeter) -> Result:
    async with session(CONCURRENCY) as http:
        warm = min(budget.warmup, budget.count(CONCURRENCY))
        await drive(http, name, make, concurrency=CONCURRENCY, count=warm, max_seconds=5)
        return await drive(
            http,
            name,
            make,
            concurrency=CONCURRENCY,
            count=budget.count(CONCURRENCY),
            max_seconds=budget.max_seconds,
            meter=meter,
        )


@dataclass
class Report:
    store: str
    direct: list[Result] = field(default_factory=list)
    gateway: dict[int, list[Result]] = field(default_factory=dict)


def _median(results: list[Result]) -> Result:
    """The result with the median rate (the lower middle one for an even count)."""
    ordered = sorted(results, key=lambda r: r.rps)
    return ordered[(len(ordered) - 1) // 2]


def render(rep: Report, workers: list[int]) -> str:
    direct = _median(rep.direct)
    one = _median(rep.gateway[workers[0]])
    rows: list[list[Any]] = [
        [
            "direct: chat completion on the echo backend",
            direct.rps,
            direct.p50,
            direct.p99,
            "1.00",
            "",
            "",
            "",
            direct.cpu_ms_per_request("backend"),
            "",
            direct.cpu_ms_per_request("client"),
            direct.ok,
        ]
    ]
    for n in workers:
        r = _median(rep.gateway[n])
        rows.append(
            [
                f"gateway create, {n} worker{'s' if n > 1 else ''}",
                r.rps,
                r.p50,
                r.p99,
                f"{ratio(r.rps, direct.rps):.2f}",
                f"{ratio(r.rps, one.rps):.2f}",
                r.cpu_ms_per_request("gateway"),
                _split(r),
                r.cpu_ms_per_request("backend"),
                r.cpu_ms_per_request("store"),
                r.cpu_ms_per_request("client"),
                r.ok,
            ]
        )
    rounds = len(rep.direct)
    spread = ""
    if rounds > 1:
        rates = {n: [f"{x.rps:,.0f}" for x in rep.gateway[n]] for n in workers}
        spread = "\n\nRates of every round: direct " + ", ".join(f"{x.rps:,.0f}" for x in rep.direct)
        spread += "".join(f"; {n} worker(s) " + ", ".join(v) for n, v in rates.items())
    headers = [
        "",
        "req/s",
        "p50 ms",
        "p99 ms",
        "÷ direct",
        f"÷ {workers[0]} worker",
        "gateway CPU ms/req",
        "worker CPU split %",
        "backend CPU ms/req",
        f"{rep.store} CPU ms/req",
        "client CPU ms/req",
        "n",
    ]
    title = (
        f"#### Creates at c={CONCURRENCY}, store on ({rep.store}), by gateway workers "
        f"({rounds} round{'s' if rounds > 1 else ''}, median shown)"
    )
    return f"{title}\n\n{md_table(headers, rows)}{spread}"


def _store_config(store: str, workdir: Path, redis_address: str | None, n: int) -> dict[str, Any]:
    if store == "redis-cluster":
        assert redis_address is not None
        nodes = redis_address.split(",")
        redis = {
            "cluster_mode": True,
            "cluster_addresses": nodes,
            "key_prefix": f"bench{n}:",
            "pool_size": 20,
        }
        return {"store_backend": "redis", "redis": redis}
    if store == "redis":
        return {"store_backend": "redis", "redis": {"address": redis_address, "key_prefix": f"bench{n}:"}}
    return {"store_backend": "sqlite", "sqlite": {"path": str(workdir / f"workers-{n}.db")}}


async def run_workers(
    reg: Services, workdir: Path, budget: Budget, store: str, workers: list[int], rounds: int
) -> Report:
    rep = Report(store=store, gateway={n: [] for n in workers})
    echo = start_echo(reg, workdir)
    store_pids: list[int] = []
    address: str | None = None
    if store == "redis":
        from tests.support import redis_servers  # after _common put the repository on sys.path

        node = redis_servers.start_standalone(workdir / "redis")
        reg.add("redis", node.stop)
        address = node.address
        pid = node.pid()
        store_pids = [pid] if pid is not None else []
    elif store == "redis-cluster":
        from tests.support import redis_servers  # after _common put the repository on sys.path

        cluster = redis_servers.start_cluster(workdir / "redis-cluster")
        reg.add("redis cluster", cluster.stop)
        address = ",".join(cluster.addresses)
        store_pids = [p for p in (node.pid() for node in cluster.nodes) if p is not None]
    chat = chat_body(False)
    chat_url = f"{echo.url}/v1/chat/completions"
    create = create_body()
    others: dict[str, list[int]] = {"backend": [echo.pid]}
    if store_pids:  # SQLite runs inside the gateway's processes
        others["store"] = store_pids
    for _ in range(rounds):
        meter = CpuMeter(dict(others))
        rep.direct.append(
            await _measure("direct chat", lambda i: Request("POST", chat_url, chat), budget, meter)
        )
        for n in workers:
            gw, pids, serving = start_gateway_workers(
                reg, workdir, echo.url, _store_config(store, workdir, address, n), n
            )
            try:
                url = f"{gw.url}/v1/responses"

                def make(i: int, url: str = url) -> Request:
                    return Request("POST", url, create)

                per_worker = {f"worker {p}": [p] for p in serving}
                meter = CpuMeter({"gateway": pids, **per_worker, **others})
                rep.gateway[n].append(await _measure(f"create, {n} workers", make, budget, meter))
            finally:
                reg.stop(gw.stop)
    return rep


async def _main(args: argparse.Namespace) -> None:
    budget = QUICK if args.quick else FULL
    workers = [int(x) for x in args.workers.split(",")]
    with services() as reg, tempfile.TemporaryDirectory(prefix="rg-bench-workers-") as tmp:
        rep = await run_workers(reg, Path(tmp), budget, args.store, workers, args.rounds)
        print(" ".join(f"{k}={v}" for k, v in machine().items()))
        print(render(rep, workers))
        medians = {n: statistics.median(r.rps for r in rep.gateway[n]) for n in workers}
        if len(workers) > 1:
            first, last = workers[0], workers[-1]
            print(f"\nscaling {first} -> {last} workers: {ratio(medians[last], medians[first]):.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a short run (fewer requests)")
    parser.add_argument("--store", choices=("redis", "redis-cluster", "sqlite"), default="redis")
    parser.add_argument("--rounds", type=int, default=1, help="measure everything N times, interleaved")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts (default 1,2)")
    run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
