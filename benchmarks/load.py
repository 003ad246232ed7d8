"""Load benchmark: the echo backend called directly (the baseline) and through the gateway, one run.

Measured at concurrency 1 and 32 with closed-loop aiohttp workers on loopback:
- direct: POST /v1/chat/completions, non-streaming and streaming (the baseline);
- gateway (a real `python -m responses_gateway serve` process, echo backend behind it): create with
  store on, retrieve, a create chained off the tip of a 10-turn and of a 100-turn chain (every
  measured create branches off the same tip), and a streaming create.
For each: requests/s, p50/p99 latency, ratios to the direct call, and CPU ms per request of the
gateway, the backend and this load generator (utime+stime from /proc/PID/stat around the run).

Run: .venv/bin/python benchmarks/load.py [--quick] [--store memory|sqlite]
"""

from __future__ import annotations

import argparse
import tempfile
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
    build_chain,
    chat_body,
    create_body,
    drive,
    machine,
    md_table,
    ok_200,
    ok_stream,
    post_json,
    ratio,
    run,
    services,
    session,
    start_echo,
    start_gateway,
)

CONCURRENCIES = (1, 32)
CHAIN_DEPTHS = (10, 100)


@dataclass
class LoadReport:
    direct: dict[tuple[str, int], Result] = field(default_factory=dict)
    gateway: dict[tuple[str, int], Result] = field(default_factory=dict)
    store: str = "memory"


async def _measure(
    name: str,
    make: Callable[[int], Request],
    concurrency: int,
    budget: Budget,
    meter: CpuMeter,
    check: Callable[[int, bytes], bool] = ok_200,
) -> Result:
    async with session(concurrency) as http:
        warm = min(budget.warmup, budget.count(concurrency))
        await drive(http, name, make, concurrency=concurrency, count=warm, max_seconds=5, check=check)
        return await drive(
            http,
            name,
            make,
            concurrency=concurrency,
            count=budget.count(concurrency),
            max_seconds=budget.max_seconds,
            check=check,
            meter=meter,
        )


async def measure_direct(echo: Service, budget: Budget) -> dict[tuple[str, int], Result]:
    """The baseline: the backend called directly, JSON and SSE."""
    url = f"{echo.url}/v1/chat/completions"
    meter = CpuMeter({"backend": [echo.pid]})
    out: dict[tuple[str, int], Result] = {}
    plain, streamed = chat_body(False), chat_body(True)
    for c in CONCURRENCIES:
        out["chat", c] = await _measure(
            "direct chat", lambda i: Request("POST", url, plain), c, budget, meter
        )
        out["chat stream", c] = await _measure(
            "direct chat stream",
            lambda i: Request("POST", url, streamed),
            c,
            budget,
            meter,
            ok_stream(b"[DONE]"),
        )
    return out


async def measure_gateway(gw: Service, echo: Service, budget: Budget) -> dict[tuple[str, int], Result]:
    """create / retrieve / chained creates at depth 10 and 100 / streaming create through the gateway."""
    create_url = f"{gw.url}/v1/responses"
    meter = CpuMeter({"gateway": [gw.pid], "backend": [echo.pid]})
    async with session(4) as http:
        tips = {d: (await build_chain(http, gw.url, d))[-1] for d in CHAIN_DEPTHS}
        stored = [
            (await post_json(http, create_url, {"model": "echo", "input": f"r{i}"}))["id"] for i in range(64)
        ]
    plain = create_body()
    streamed = create_body(stream=True)
    chained = {d: create_body(previous=tip) for d, tip in tips.items()}
    out: dict[tuple[str, int], Result] = {}
    for c in CONCURRENCIES:
        out["create", c] = await _measure(
            "create", lambda i: Request("POST", create_url, plain), c, budget, meter
        )
        out["retrieve", c] = await _measure(
            "retrieve", lambda i: Request("GET", f"{create_url}/{stored[i % len(stored)]}"), c, budget, meter
        )
        for d in CHAIN_DEPTHS:
            body = chained[d]
            out[f"chain {d}", c] = await _measure(
                f"chained create (depth {d})",
                lambda i, b=body: Request("POST", create_url, b),  # type: ignore[misc]
                c,
                budget,
                meter,
            )
        out["create stream", c] = await _measure(
            "create stream",
            lambda i: Request("POST", create_url, streamed),
            c,
            budget,
            meter,
            ok_stream(b"event: response.completed"),
        )
    return out


_ROWS: list[tuple[str, str, str]] = [
    # (key, label, baseline key)
    ("create", "create (store on)", "chat"),
    ("retrieve", "retrieve", "chat"),
    ("chain 10", "chained create, depth 10", "chat"),
    ("chain 100", "chained create, depth 100", "chat"),
    ("create stream", "streaming create", "chat stream"),
]


def render(rep: LoadReport) -> str:
    """The Markdown tables of one load run."""
    direct_rows: list[list[Any]] = []
    for (key, c), r in rep.direct.items():
        direct_rows.append(
            [
                f"direct {key}",
                c,
                r.rps,
                r.p50,
                r.p99,
                r.cpu_ms_per_request("backend"),
                r.cpu_ms_per_request("client"),
                r.ok,
            ]
        )
    rows: list[list[Any]] = []
    for c in CONCURRENCIES:
        for key, label, base_key in _ROWS:
            r = rep.gateway.get((key, c))
            base = rep.direct.get((base_key, c))
            if r is None or base is None:
                continue
            rows.append(
                [
                    label,
                    c,
                    r.rps,
                    r.p50,
                    r.p99,
                    f"{ratio(r.rps, base.rps):.2f}",
                    f"{ratio(r.p50, base.p50):.1f}",
                    r.cpu_ms_per_request("gateway"),
                    r.cpu_ms_per_request("backend"),
                    r.cpu_ms_per_request("client"),
                    r.ok,
                ]
            )
    parts = [
        "#### Baseline: the echo backend called directly",
        "",
        md_table(
            ["call", "c", "req/s", "p50 ms", "p99 ms", "backend CPU ms/req", "client CPU ms/req", "n"],
            direct_rows,
        ),
        "",
        f"#### Through the gateway (store: {rep.store})",
        "",
        "Ratios are to the direct call at the same concurrency (JSON chat for the JSON calls, streamed chat "
        "for the streaming create).",
        "",
        md_table(
            [
                "operation",
                "c",
                "req/s",
                "p50 ms",
                "p99 ms",
                "req/s ÷ direct",
                "p50 ÷ direct",
                "gateway CPU ms/req",
                "backend CPU ms/req",
                "client CPU ms/req",
                "n",
            ],
            rows,
        ),
    ]
    return "\n".join(parts)


async def run_load(
    reg: Services, workdir: Path, budget: Budget, echo: Service, store: str = "memory"
) -> LoadReport:
    """The whole load benchmark on an already running echo backend; the gateway is started here."""
    rep = LoadReport(store=store)
    rep.direct = await measure_direct(echo, budget)
    api: dict[str, Any] = {"store_backend": store, "memory": {"max_responses": 1_000_000}}
    if store == "sqlite":
        api = {"store_backend": "sqlite", "sqlite": {"path": str(workdir / f"load-{store}.db")}}
    gw = start_gateway(reg, workdir, echo.url, api, f"load-{store}")
    try:
        rep.gateway = await measure_gateway(gw, echo, budget)
    finally:
        reg.stop(gw.stop)
    return rep


async def _main(args: argparse.Namespace) -> None:
    budget = QUICK if args.quick else FULL
    with services() as reg, tempfile.TemporaryDirectory(prefix="rg-bench-load-") as tmp:
        workdir = Path(tmp)
        echo = start_echo(reg, workdir)
        rep = await run_load(reg, workdir, budget, echo, args.store)
        print(" ".join(f"{k}={v}" for k, v in machine().items()))
        print(render(rep))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a short run (fewer requests)")
    parser.add_argument("--store", choices=("memory", "sqlite"), default="memory")
    run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
