"""Where the gateway's CPU goes under load: py-spy samples the gateway process during creates.

Starts the echo backend and a gateway (memory store), drives creates (store on) at concurrency 32
and samples the gateway with `py-spy record --format raw` (py-spy from PATH or $PY_SPY). Prints the
top functions by own time and by inclusive time, as a share of all samples.

Run: .venv/bin/python benchmarks/profile_gateway.py [--seconds 10] [--chain-depth 0] [--stream]
     [--store memory|redis-cluster]
"""

from __future__ import annotations

import _common  # noqa: F401  first: puts the repo root on sys.path

# isort: split
import argparse
import asyncio
import os
import re
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from tests.support import redis_servers

from _common import (
    Request,
    Service,
    Services,
    build_chain,
    create_body,
    drive,
    md_table,
    run,
    services,
    session,
    start_echo,
    start_gateway,
)

_FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def py_spy() -> str | None:
    return os.environ.get("PY_SPY") or shutil.which("py-spy")


def _short(file: str) -> str:
    for marker in ("site-packages/", "src/", "lib/python3.11/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


def _frame(raw: str) -> str:
    m = _FRAME.match(raw.strip())
    return f"{m.group('func')} ({_short(m.group('file'))})" if m else raw.strip()


_COMPONENTS: list[tuple[str, str]] = [
    ("responses_gateway/translate/", "gateway: translation (translate/)"),
    ("responses_gateway/service.py", "gateway: service (service.py)"),
    ("responses_gateway/upstream/", "gateway: upstream client code (upstream/)"),
    ("responses_gateway/stores/", "gateway: store (stores/)"),
    ("responses_gateway/", "gateway: HTTP layer, ids, metrics"),
    ("aiohttp/", "aiohttp (the backend client)"),
    ("uvicorn/", "uvicorn + httptools (the HTTP server)"),
    ("starlette/", "starlette (routing, middleware, responses)"),
    ("prometheus_client/", "prometheus_client (metrics)"),
    ("asyncio/", "event loop (uvloop/asyncio)"),
    ("uvloop/", "event loop (uvloop/asyncio)"),
]


def component(frame: str) -> str:
    for marker, name in _COMPONENTS:
        if marker in frame:
            return name
    return "other (stdlib, logging, ...)"


def summarize(raw_file: Path, top: int = 20) -> tuple[int, Counter[str], Counter[str], Counter[str]]:
    """(samples, own time, inclusive time, own time by component) from py-spy's raw collapsed stacks."""
    own: Counter[str] = Counter()
    comp: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in raw_file.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        frames = [_frame(f) for f in stack.split(";")]
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        comp[component(frames[-1])] += count
        for f in set(frames):
            incl[f] += count
    return total, own, incl, comp


async def _load(gw: Service, seconds: float, depth: int, stream: bool) -> int:
    url = f"{gw.url}/v1/responses"
    prev = None
    if depth:
        async with session(2) as http:
            prev = (await build_chain(http, gw.url, depth))[-1]
    body = create_body(previous=prev, stream=stream)
    async with session(32) as http:
        r = await drive(
            http, "create", lambda i: Request("POST", url, body), concurrency=32,
            count=10_000_000, max_seconds=seconds,
        )  # fmt: skip
    return r.ok


async def profile(
    reg: Services,
    workdir: Path,
    echo: Service,
    seconds: float,
    depth: int,
    *,
    stream: bool = False,
    store: str = "memory",
) -> str:
    spy = py_spy()
    if spy is None:
        return "(py-spy not found: set PY_SPY or put it on PATH; profile skipped)"
    api: dict[str, Any] = {"store_backend": "memory"}
    if store == "redis-cluster":
        cluster = redis_servers.start_cluster(workdir / "redis-cluster")
        reg.add("redis cluster", cluster.stop)
        redis = {"cluster_mode": True, "cluster_addresses": cluster.addresses}
        api = {"store_backend": "redis", "redis": redis}
    gw = start_gateway(reg, workdir, echo.url, api, f"profile-{depth}")
    try:
        out = Path(os.environ.get("PROFILE_RAW", workdir / f"pyspy-{depth}.txt"))
        cmd = [spy, "record", "-p", str(gw.pid), "-d", str(int(seconds)), "-r", "250", "-f", "raw",
               "-o", str(out), "--nonblocking"]  # fmt: skip
        spy_proc = await asyncio.create_subprocess_exec(
            *cmd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )

        def stop_spy() -> None:
            if spy_proc.returncode is None:
                spy_proc.terminate()

        reg.add("py-spy", stop_spy)
        await asyncio.sleep(0.5)
        done = await _load(gw, seconds, depth, stream)
        _, err = await asyncio.wait_for(spy_proc.communicate(), seconds + 30)
        reg.remove(stop_spy)
        if not await asyncio.to_thread(out.exists):
            return f"(py-spy failed: {err.decode(errors='replace')[-500:]})"
    finally:
        reg.stop(gw.stop)
    total, own, incl, comp = summarize(out)
    skip = ("_run_uvicorn", "_serve", "main (", "_build_app", "<module>")
    incl_rows: list[list[Any]] = [
        [name, f"{100 * n / total:.1f}%"]
        for name, n in incl.most_common()
        if "responses_gateway/" in name and not name.startswith(skip)
    ][:20]
    own_rows: list[list[Any]] = [[name, f"{100 * n / total:.1f}%"] for name, n in own.most_common(20)]
    comp_rows: list[list[Any]] = [[name, f"{100 * n / total:.1f}%"] for name, n in comp.most_common()]
    kind = "streaming creates" if stream else "creates"
    title = f"{kind}, c=32, chain depth {depth}" if depth else f"{kind} (no chain), c=32"
    title += f", {store} store"
    return "\n".join(
        [
            f"#### Gateway profile: {title}, {total} samples, {done} creates",
            "",
            "Own time by component (where the leaf frame of each on-CPU sample is; C code such as "
            "orjson, httptools or uvloop counts for the Python function that called it):",
            "",
            md_table(["component", "share of samples"], comp_rows),
            "",
            "Own time, top functions:",
            "",
            md_table(["function", "share of samples"], own_rows),
            "",
            "Inclusive time of the gateway's own functions (the function or what it calls):",
            "",
            md_table(["function", "share of samples"], incl_rows),
        ]
    )


async def _main(args: argparse.Namespace) -> None:
    with services() as reg, tempfile.TemporaryDirectory(prefix="rg-bench-profile-") as tmp:
        workdir = Path(tmp)
        echo = start_echo(reg, workdir)
        print(
            await profile(
                reg, workdir, echo, args.seconds, args.chain_depth, stream=args.stream, store=args.store
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--chain-depth", type=int, default=0, help="chain the creates off this depth")
    parser.add_argument("--stream", action="store_true", help="streaming creates")
    parser.add_argument("--store", choices=("memory", "redis-cluster"), default="memory")
    run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
