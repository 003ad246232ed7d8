"""Before / after: the gateway of an earlier commit next to the working tree's, in one run.

The earlier commit is exported with `git archive` to a temporary folder and run from there
(PYTHONPATH), with the same config, the same echo backend and the same Redis Cluster (another key
prefix). Both gateways are measured in alternating rounds (before, after, before, after, ...), so
a machine that slows down or speeds up during the run affects both alike; each figure is the
median over the rounds. Reported: requests/s ÷ calling the echo backend directly (measured in every
round too) and the gateway's CPU ms per request.

Run: .venv/bin/python benchmarks/ab.py [--before 707e816] [--rounds 3] [--stores memory,redis-cluster]
     [--log-level info]  (info: both gateways write their access lines, to a file)
"""

from __future__ import annotations

import _common  # noqa: F401  first: puts the repo root on sys.path, for `tests.…`

# isort: split
import argparse
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support import redis_servers

from _common import (
    ROOT,
    Budget,
    CpuMeter,
    Request,
    Result,
    Service,
    build_chain,
    chat_body,
    create_body,
    drive,
    machine,
    md_table,
    post_json,
    run,
    services,
    session,
    start_echo,
    start_gateway,
)

DEPTH = 100
BUDGET = Budget(count_c1=500, count_c32=3000, max_seconds=8.0, warmup=150)


def export(ref: str, into: Path) -> Path:
    """`git archive <ref> src` unpacked into `into`; returns the path of its `src`."""
    archive = into / "before.tar"
    subprocess.run(["git", "archive", "-o", str(archive), ref, "src"], cwd=ROOT, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


async def _one(name: str, make: Callable[[int], Request], c: int, meter: CpuMeter) -> Result:
    async with session(c) as http:
        await drive(http, "warm-up", make, concurrency=c, count=BUDGET.warmup, max_seconds=4)
        count, seconds = BUDGET.count(c), BUDGET.max_seconds
        return await drive(http, name, make, concurrency=c, count=count, max_seconds=seconds, meter=meter)


async def measure(gw: Service, echo: Service) -> dict[str, Result]:
    url = f"{gw.url}/v1/responses"
    meter = CpuMeter({"gateway": [gw.pid], "backend": [echo.pid]})
    async with session(4) as http:
        tip = (await build_chain(http, gw.url, DEPTH))[-1]
        ids = [(await post_json(http, url, {"model": "echo", "input": f"r{i}"}))["id"] for i in range(64)]
    plain, chained, streamed = create_body(), create_body(previous=tip), create_body(stream=True)
    return {
        "create, c=1": await _one("create", lambda i: Request("POST", url, plain), 1, meter),
        "create, c=32": await _one("create", lambda i: Request("POST", url, plain), 32, meter),
        f"chained create depth {DEPTH}, c=32": await _one(
            "chained", lambda i: Request("POST", url, chained), 32, meter
        ),
        "streaming create, c=32": await _one("stream", lambda i: Request("POST", url, streamed), 32, meter),
        "retrieve, c=32": await _one("retrieve", lambda i: Request("GET", f"{url}/{ids[i % 64]}"), 32, meter),
    }


async def direct(echo: Service) -> dict[int, float]:
    url = f"{echo.url}/v1/chat/completions"
    meter = CpuMeter({"backend": [echo.pid]})
    body = chat_body(False)
    return {c: (await _one("direct", lambda i: Request("POST", url, body), c, meter)).rps for c in (1, 32)}


async def _main(args: argparse.Namespace) -> str:
    info = machine()
    stores = args.stores.split(",")
    # (store, operation, side) -> list of (ratio to direct, gateway CPU ms/req)
    samples: dict[tuple[str, str, str], list[tuple[float, float]]] = defaultdict(list)
    with services() as reg, tempfile.TemporaryDirectory(prefix="rg-ab-") as tmp:
        workdir = Path(tmp)
        before_src = export(args.before, workdir)
        echo = start_echo(reg, workdir)
        cluster = None
        if "redis-cluster" in stores:
            cluster = redis_servers.start_cluster(workdir / "redis-cluster")
            reg.add("redis cluster", cluster.stop)
        for rnd in range(args.rounds):
            for side, src in (("before", before_src), ("after", None)):
                for store in stores:
                    api: dict[str, Any] = {"store_backend": "memory", "memory": {"max_responses": 1_000_000}}
                    if store == "redis-cluster":
                        assert cluster is not None
                        redis = {"cluster_mode": True, "cluster_addresses": cluster.addresses}
                        api = {"store_backend": "redis", "redis": {**redis, "key_prefix": f"{side}{rnd}:"}}
                    print(f"round {rnd + 1}: {side} on {store} ...", file=sys.stderr)
                    base = await direct(echo)
                    name = f"{side}-{store}-{rnd}"
                    gw = start_gateway(reg, workdir, echo.url, api, name, src=src, log_level=args.log_level)
                    try:
                        results = await measure(gw, echo)
                    finally:
                        reg.stop(gw.stop)
                    for op, r in results.items():
                        c = 1 if op.endswith("c=1") else 32
                        samples[store, op, side].append((r.rps / base[c], r.cpu_ms_per_request("gateway")))
    rows = []
    for store in stores:
        ops = dict.fromkeys(op for (s, op, _) in samples if s == store)
        for op in ops:
            b, a = samples[store, op, "before"], samples[store, op, "after"]
            rb, ra = statistics.median(x for x, _ in b), statistics.median(x for x, _ in a)
            cb, ca = statistics.median(y for _, y in b), statistics.median(y for _, y in a)
            rows.append([store, op, rb, ra, cb, ca, f"{ca / cb:.2f}"])
    return "\n".join(
        [
            f"`.venv/bin/python benchmarks/ab.py --before {args.before} --rounds {args.rounds} "
            f"--stores {args.stores} --log-level {args.log_level}`  ",
            f"{info['date']}; {info['nproc']} CPUs ({info['cpu']}); Python {info['python']}; loopback only. "
            f"Medians of {args.rounds} alternating rounds.",
            "",
            md_table(
                [
                    "store",
                    "operation",
                    "before: req/s ÷ direct",
                    "after: req/s ÷ direct",
                    "before: gateway CPU ms/req",
                    "after: gateway CPU ms/req",
                    "CPU after ÷ before",
                ],
                rows,
            ),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--before", default="707e816", help="the earlier commit (default: before Core v2)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stores", default="memory,redis-cluster")
    parser.add_argument("--log-level", default="warning", help="log_level of both (info: access lines)")
    print(run(_main(parser.parse_args())))


if __name__ == "__main__":
    main()
