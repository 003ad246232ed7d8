"""A chained turn through the gateway on Redis, by depth: gateway CPU, Redis commands and Redis CPU
per turn, Core v2 next to the commit before it, in one run.

One standalone redis-server and one echo backend (free loopback ports) serve both gateways: the
working tree's (branch segments: one LRANGE per branch point) and an earlier commit's (exported with
`git archive`; by default 707e816, whose Lua walk reads one hash per ancestor), each with its own key
prefix. For each depth (1, 10, 100, 1,000) a chain is built through the gateway, then `--creates`
turns are created off its tip (each branching from the same tip, c=4) and measured: the gateway's
CPU (utime+stime from /proc), the commands Redis executed (`INFO commandstats` calls, commands run
inside Lua included) and Redis CPU (commandstats usec of the commands clients sent).

Run: .venv/bin/python benchmarks/depth_redis.py [--before 707e816] [--creates 300]
"""

from __future__ import annotations

import _common  # noqa: F401  first: puts the repo root on sys.path, for `tests.…`

# isort: split
import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.support import redis_servers

from _common import (
    CpuMeter,
    Request,
    build_chain,
    create_body,
    drive,
    machine,
    md_table,
    run,
    services,
    session,
    start_echo,
    start_gateway,
)
from ab import export

DEPTHS = (1, 10, 100, 1000)
SENT = ("evalsha", "eval", "hmget", "get", "set", "wait")  # what a client may send (CPU column)


def commandstats(port: int) -> tuple[int, int]:
    """(calls, usec of the commands clients send) over every command but our own INFO."""
    calls = usec = 0
    for key, value in redis_servers.info(port, "commandstats").items():
        name = key.removeprefix("cmdstat_")
        if not key.startswith("cmdstat_") or name == "info":
            continue
        fields = dict(kv.split("=") for kv in value.split(","))
        calls += int(fields["calls"])
        if name in SENT:
            usec += int(fields["usec"])
    return calls, usec


async def one_depth(gw_url: str, gw_pid: int, redis_pid: int, port: int, depth: int, n: int) -> list[float]:
    url = f"{gw_url}/v1/responses"
    async with session(4) as http:
        tip = (await build_chain(http, gw_url, depth))[-1]
        body = create_body(previous=tip)
        make = lambda i: Request("POST", url, body)  # noqa: E731
        await drive(http, "warm-up", make, concurrency=4, count=50, max_seconds=10)
        meter = CpuMeter({"gateway": [gw_pid], "redis": [redis_pid]})
        calls0, usec0 = commandstats(port)
        result = await drive(
            http, f"depth {depth}", make, concurrency=4, count=n, max_seconds=60, meter=meter
        )
        calls1, usec1 = commandstats(port)
    ok = max(result.ok, 1)
    return [
        result.cpu_ms_per_request("gateway"),
        (calls1 - calls0) / ok,
        (usec1 - usec0) / ok,
        result.cpu_ms_per_request("redis"),
    ]


async def _main(args: argparse.Namespace) -> str:
    info = machine()
    rows: list[list[Any]] = []
    with services() as reg, tempfile.TemporaryDirectory(prefix="rg-depth-") as tmp:
        workdir = Path(tmp)
        before_src = export(args.before, workdir)
        node = redis_servers.start_standalone(workdir / "redis")
        reg.add("redis", node.stop)
        redis_pid = node.pid()
        assert redis_pid is not None
        echo = start_echo(reg, workdir)
        results: dict[tuple[str, int], list[float]] = {}
        for side, src in (("before", before_src), ("after", None)):
            api = {"store_backend": "redis", "redis": {"address": node.address, "key_prefix": f"{side}:"}}
            gw = start_gateway(reg, workdir, echo.url, api, f"depth-{side}", src=src)
            try:
                for depth in DEPTHS:
                    print(f"{side}: depth {depth} ...", file=sys.stderr)
                    results[side, depth] = await one_depth(
                        gw.url, gw.pid, redis_pid, node.port, depth, args.creates
                    )
            finally:
                reg.stop(gw.stop)
        for depth in DEPTHS:
            b, a = results["before", depth], results["after", depth]
            rows.append([depth, a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3]])
    return "\n".join(
        [
            f"`.venv/bin/python benchmarks/depth_redis.py --before {args.before} --creates {args.creates}`  ",
            f"{info['date']}; {info['nproc']} CPUs ({info['cpu']}); Python {info['python']}; "
            "Redis standalone; per chained create off the tip of a chain of that depth, c=4.",
            "",
            md_table(
                [
                    "depth",
                    "gateway CPU ms: v2",
                    f"before ({args.before})",
                    "Redis commands: v2",
                    "before",
                    "Redis µs (commandstats): v2",
                    "before",
                    "redis-server CPU ms: v2",
                    "before",
                ],
                rows,
            ),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--before", default="707e816")
    parser.add_argument("--creates", type=int, default=300)
    print(run(_main(parser.parse_args())))


if __name__ == "__main__":
    main()
