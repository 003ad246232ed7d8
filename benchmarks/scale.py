"""Scale and soak: create / GET rates when Redis holds 10 k vs 1 M responses, and the gateway's RSS
under minutes of mixed load (creates, chained creates, streaming, GETs, deletes).

1. Fill: two standalone redis-servers (free loopback ports) are filled with real records through
   `RedisStore.put` (many in flight over its pool), one to 10 k responses and one to 1 M: threads of
   10 turns, each turn the bytes the gateway itself would store. Each gets its own gateway (Redis
   store); both are measured at c=32 in alternating rounds: creates, turns chained on random filled
   conversations, and GETs of random filled ids.
2. Soak: the gateway's RSS (VmRSS of its process) sampled every few seconds under a mixed closed-loop
   load; reported at start, middle, end, the maximum, and the slope over the second half.

Run: .venv/bin/python benchmarks/scale.py [--responses 1000000] [--soak-seconds 300]
"""

from __future__ import annotations

import _common  # noqa: F401  first: puts the repo root on sys.path, for `tests.…`

# isort: split
import argparse
import asyncio
import itertools
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
from tests.stores.records import make_record
from tests.support import redis_servers
from tests.support.redis_stores import open_standalone_store

from _common import (
    Request,
    Result,
    Service,
    Services,
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
)
from responses_gateway.stores.base import StoredResponse

THREAD_DEPTH = 10
FILL_IN_FLIGHT = 256


def turn(parent: StoredResponse | None, n: int) -> StoredResponse:
    """One turn as the gateway stores it (about 1 kB): a user message in, an assistant message out."""
    text = f"turn {n}: " + "lorem ipsum dolor sit amet " * 4
    return make_record(parent, text=text, output_text=f"echo: {text}" + " lorem ipsum" * 20)


async def fill(url: str, count: int, sample: list[str]) -> float:
    """Write `count` responses as threads of THREAD_DEPTH turns; returns writes/s. Keeps a sample of
    ids (tips and middles) for the GETs and chained creates."""
    store = await open_standalone_store(url, ttl_seconds=86400, pool_size=64)
    threads = max(1, count // THREAD_DEPTH)
    started = time.perf_counter()
    sem = asyncio.Semaphore(FILL_IN_FLIGHT)

    async def one_thread(t: int) -> None:
        async with sem:
            parent: StoredResponse | None = None
            for n in range(THREAD_DEPTH):
                parent = turn(parent, n)
                await store.put(parent)
            if t % 50 == 0 and parent is not None:
                sample.append(parent.id)

    try:
        await asyncio.gather(*(one_thread(t) for t in range(threads)))
    finally:
        await store.aclose()
    return threads * THREAD_DEPTH / (time.perf_counter() - started)


async def measure(gw: Service, sample: list[str], seconds: float, count: int) -> dict[str, Result]:
    url = f"{gw.url}/v1/responses"
    picks = itertools.cycle(random.Random(7).sample(sample, len(sample)))
    bodies = {
        "create": lambda i: Request("POST", url, create_body()),
        "chained create": lambda i: Request("POST", url, create_body(previous=next(picks))),
        "GET": lambda i: Request("GET", f"{url}/{next(picks)}"),
    }
    out: dict[str, Result] = {}
    async with session(32) as http:
        for name, make in bodies.items():
            await drive(http, "warm-up", make, concurrency=32, count=300, max_seconds=5)
            out[name] = await drive(http, name, make, concurrency=32, count=count, max_seconds=seconds)
    return out


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def soak(gw: Service, seconds: float, every: float = 5.0) -> list[tuple[float, float]]:
    """Mixed load for `seconds`; (elapsed s, RSS MiB) samples."""
    url = f"{gw.url}/v1/responses"
    samples: list[tuple[float, float]] = []
    stop = time.monotonic() + seconds
    async with session(16) as http:
        tips = [(await post_json(http, url, {"model": "echo", "input": "soak"}))["id"] for _ in range(16)]

        async def worker(w: int) -> None:
            tip = tips[w]
            for i in itertools.count():
                if time.monotonic() > stop:
                    return
                kind = i % 5
                if kind == 0:  # a new conversation, streamed
                    body = create_body(stream=True)
                    async with http.post(url, data=body) as r:
                        await r.read()
                elif kind in (1, 2):  # the worker's own conversation grows (reset every 200 turns)
                    if i % 200 == 1:
                        tip = (await post_json(http, url, {"model": "echo", "input": "again"}))["id"]
                    tip = (await post_json(http, url, orjson.loads(create_body(previous=tip))))["id"]
                elif kind == 3:
                    async with http.get(f"{url}/{tip}") as r:
                        await r.read()
                else:  # create and delete
                    rid = (await post_json(http, url, {"model": "echo", "input": "bye"}))["id"]
                    async with http.delete(f"{url}/{rid}") as r:
                        await r.read()

        async def sampler() -> None:
            t0 = time.monotonic()
            while time.monotonic() < stop:
                samples.append((time.monotonic() - t0, rss_mib(gw.pid)))
                await asyncio.sleep(every)
            samples.append((time.monotonic() - t0, rss_mib(gw.pid)))

        await asyncio.gather(sampler(), *(worker(w) for w in range(16)))
    return samples


def _soak_port(reg: Services, workdir: Path) -> int:
    """A fresh, empty redis-server for the soak."""
    node = redis_servers.start_standalone(workdir / "redis-soak")
    reg.add("redis soak", node.stop)
    return node.port


def slope_per_minute(samples: list[tuple[float, float]]) -> float:
    half = samples[len(samples) // 2 :]
    if len(half) < 2:
        return float("nan")
    n = len(half)
    mx = sum(t for t, _ in half) / n
    my = sum(r for _, r in half) / n
    var = sum((t - mx) ** 2 for t, _ in half)
    return 60 * sum((t - mx) * (r - my) for t, r in half) / var if var else float("nan")


async def _main(args: argparse.Namespace) -> str:
    info = machine()
    lines = [
        "### Scale and soak",
        "",
        f"`.venv/bin/python benchmarks/scale.py --responses {args.responses} "
        f"--soak-seconds {args.soak_seconds:g} --rounds {args.rounds}`  ",
        f"{info['date']}; {info['nproc']} CPUs ({info['cpu']}); Python {info['python']}; loopback only.",
        "",
    ]
    ops = ("create", "chained create", "GET")
    with services() as reg, tempfile.TemporaryDirectory(prefix="rg-scale-") as tmp:
        workdir = Path(tmp)
        echo = start_echo(reg, workdir)
        sizes = (10_000, args.responses)
        gateways: dict[int, Service] = {}
        samples_of: dict[int, list[str]] = {}
        rows: list[list[Any]] = []
        for size in sizes:  # one redis-server and one gateway per size, filled before any measuring
            node = redis_servers.start_standalone(workdir / f"redis-{size}")
            reg.add(f"redis {size}", node.stop)
            print(f"filling a store to {size:,} responses ...", file=sys.stderr)
            samples_of[size] = []
            rate = await fill(f"redis://{node.address}", size, samples_of[size])
            keys = redis_servers.command(node.port, "DBSIZE")
            used = redis_servers.info(node.port, "memory")["used_memory_human"]
            rows.append([f"{size:,} responses ({keys:,} keys, {used})", rate])
            api = {"store_backend": "redis", "redis": {"address": node.address, "pool_size": 32}}
            gateways[size] = start_gateway(reg, workdir, echo.url, api, f"scale-{size}")
        rates: dict[tuple[int, str], list[float]] = defaultdict(list)
        for rnd in range(args.rounds):  # alternating: a machine that slows down hits both alike
            for size in sizes:
                print(f"round {rnd + 1}: {size:,} ...", file=sys.stderr)
                for op, r in (
                    await measure(gateways[size], samples_of[size], args.seconds, args.count)
                ).items():
                    rates[size, op].append(r.rps)
        for row, size in zip(rows, sizes, strict=True):
            row += [statistics.median(rates[size, op]) for op in ops]
        rows.append(
            ["ratio (large / small)", float("nan")] + [ratio(rows[1][i], rows[0][i]) for i in (2, 3, 4)]
        )
        lines += [
            "Rates through the gateway (Redis standalone store, c=32), one store holding 10 k responses and "
            f"one holding {args.responses:,} (threads of 10 turns, filled through RedisStore.put), each "
            f"behind its own gateway, medians of {args.rounds} alternating rounds:",
            "",
            md_table(["store holds", "fill writes/s", "create/s", "chained create/s", "GET/s"], rows),
            "",
        ]
        print("\n".join(lines), file=sys.stderr)  # the rates survive a failure of the soak
        for gw in gateways.values():
            reg.stop(gw.stop)
        api = {"store_backend": "redis", "redis": {"address": f"127.0.0.1:{_soak_port(reg, workdir)}"}}
        gw = start_gateway(reg, workdir, echo.url, api, "soak")
        print(f"soak for {args.soak_seconds:g} s ...", file=sys.stderr)
        samples = await soak(gw, args.soak_seconds)
        mid = samples[len(samples) // 2][1]
        lines += [
            f"Gateway RSS under {args.soak_seconds:g} s of mixed load (16 workers: streamed creates, "
            "chained creates, GETs, create+delete), sampled every 5 s:",
            "",
            md_table(
                ["start MiB", "middle MiB", "end MiB", "max MiB", "slope, 2nd half (MiB/min)"],
                [[samples[0][1], mid, samples[-1][1], max(r for _, r in samples), slope_per_minute(samples)]],
            ),
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--responses", type=int, default=1_000_000, help="the large fill (default 1 M)")
    parser.add_argument("--soak-seconds", type=float, default=300.0)
    parser.add_argument("--seconds", type=float, default=10.0, help="time cap per rate measurement")
    parser.add_argument("--count", type=int, default=4000, help="requests per rate measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of the rate measurements")
    print(run(_main(parser.parse_args())))


if __name__ == "__main__":
    main()
