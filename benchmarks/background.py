"""The cost of background mode and the speed of a stream replay, through the gateway on Redis.

One standalone redis-server and one echo backend (free loopback ports), one gateway process.
1. Creates of one short response, `--creates` of them at c=8: foreground (a JSON reply) vs
   `background: true` (the create answers `queued`; the run goes on in the gateway), each run to
   completion. Per response: the gateway's CPU (utime+stime from /proc), the Redis commands executed
   (INFO commandstats, commands inside Lua included) and wall time. The background side includes
   its lease heartbeats, its event log writes and one GET per response to see it completed.
2. Replay: `GET /v1/responses/{id}?stream=true` of a finished background response with many events
   (about `--events`), read to the end `--replays` times: events per second (from Redis Streams).

Run: .venv/bin/python benchmarks/background.py [--creates 300] [--events 5000] [--replays 5]
"""

from __future__ import annotations

import _common  # noqa: F401  first: puts the repo root on sys.path, for `tests.…`

# isort: split
import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from tests.support import redis_servers

from _common import CpuMeter, machine, md_table, post_json, run, services, session, start_echo, start_gateway


def commands(port: int) -> int:
    total = 0
    for key, value in redis_servers.info(port, "commandstats").items():
        if key.startswith("cmdstat_") and key != "cmdstat_info":
            total += int(dict(kv.split("=") for kv in value.split(","))["calls"])
    return total


async def creates(url: str, gw_pid: int, port: int, n: int, background: bool) -> list[float]:
    body: dict[str, Any] = {"model": "echo", "input": "hello benchmark"}
    if background:
        body["background"] = True
    async with session(8) as http:
        meter = CpuMeter({"gateway": [gw_pid]})
        calls0, started = commands(port), time.perf_counter()
        meter.start()
        ids: list[str] = []
        queue = list(range(n))

        async def worker() -> None:
            while queue:
                queue.pop()
                ids.append((await post_json(http, f"{url}/v1/responses", body))["id"])

        await asyncio.gather(*(worker() for _ in range(8)))
        pending = ids if background else []
        while pending:  # one GET per response once the runs are likely over, then again for the rest
            await asyncio.sleep(0.05)
            still = []
            for rid in pending:
                async with http.get(f"{url}/v1/responses/{rid}") as resp:
                    if orjson.loads(await resp.read())["status"] in ("queued", "in_progress"):
                        still.append(rid)
            pending = still
        used = meter.stop()
        seconds, calls1 = time.perf_counter() - started, commands(port)
    return [used["gateway"] * 1000 / n, (calls1 - calls0) / n, seconds * 1000 / n]


async def replays(url: str, words: int, times: int) -> tuple[int, list[float]]:
    async with session(1) as http:
        body = {"model": "echo", "input": f"[repeat:{words}] w", "background": True}
        rid = (await post_json(http, f"{url}/v1/responses", body))["id"]
        while True:
            async with http.get(f"{url}/v1/responses/{rid}") as resp:
                if orjson.loads(await resp.read())["status"] == "completed":
                    break
            await asyncio.sleep(0.1)
        rates, events = [], 0
        for _ in range(times):
            started = time.perf_counter()
            async with http.get(f"{url}/v1/responses/{rid}?stream=true") as resp:
                events = (await resp.read()).count(b"\nevent: ") + 1
            rates.append(events / (time.perf_counter() - started))
    return events, rates


async def _main(args: argparse.Namespace) -> str:
    info = machine()
    with services() as reg, tempfile.TemporaryDirectory(prefix="rg-bg-") as tmp:
        workdir = Path(tmp)
        node = redis_servers.start_standalone(workdir / "redis")
        reg.add("redis", node.stop)
        echo = start_echo(reg, workdir)
        gw = start_gateway(
            reg, workdir, echo.url, {"store_backend": "redis", "redis": {"address": node.address}}, "bg"
        )
        print("warm-up ...", file=sys.stderr)
        await creates(gw.url, gw.pid, node.port, 50, True)
        rows = []
        for background in (False, True):
            print(f"creates, background={background} ...", file=sys.stderr)
            rows.append(
                [
                    "background" if background else "foreground",
                    *await creates(gw.url, gw.pid, node.port, args.creates, background),
                ]
            )
        print("replays ...", file=sys.stderr)
        events, rates = await replays(gw.url, args.events, args.replays)
    rates.sort()
    return "\n".join(
        [
            f"`.venv/bin/python benchmarks/background.py --creates {args.creates} --events {args.events} "
            f"--replays {args.replays}`  ",
            f"{info['date']}; {info['nproc']} CPUs ({info['cpu']}); Python {info['python']}; "
            "Redis standalone.",
            "",
            md_table(
                [
                    "create",
                    "gateway CPU ms / response",
                    "Redis commands / response",
                    "wall ms / response (c=8)",
                ],
                rows,
            ),
            "",
            md_table(
                ["replay of one response", "events", "events/s (median)", "min", "max"],
                [["GET ?stream=true, from the start", events, rates[len(rates) // 2], rates[0], rates[-1]]],
            ),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--creates", type=int, default=300)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--replays", type=int, default=5)
    print(run(_main(parser.parse_args())))


if __name__ == "__main__":
    main()
