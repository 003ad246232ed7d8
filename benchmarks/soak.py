"""Soak: minutes of mixed load with bad inputs mixed in, the gateway's RSS sampled every second.

One gateway process (Redis store on a fresh redis-server, or the memory store) over the echo backend.
Closed-loop workers of two tenants (auth on) send, in turn: creates, chained creates, streamed creates,
GETs, DELETEs, input_items, a GET of the other tenant's response (must be a 404), and bad requests
(malformed JSON, wrong types, huge ids, unknown ids, bodies over `limits.max_body_bytes`, a wrong
content type, no key, a wrong key). Reported: RSS at start / end / max and its slope
(MiB per minute, least squares, over the whole run and over its second half), the count of every
status per kind of request, and "unexpected": any 5xx other than 502/503/504, or a connection error.

Run: .venv/bin/python benchmarks/soak.py [--minutes 5] [--store redis|memory] [--workers 16]
     [--requests-per-minute N] [--concurrent-streams N]   (the rate limits; their 429s are expected)
Exits 1 when anything unexpected happened.
"""

from __future__ import annotations

import _common  # noqa: F401  first: puts the repo root on sys.path, for `tests.…`

# isort: split
import argparse
import asyncio
import itertools
import secrets
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml
from tests.support import redis_servers

from _common import (
    HOST,
    MODEL,
    Service,
    Services,
    _free_port,
    _popen,
    _wait_http,
    machine,
    md_table,
    run,
    services,
    session,
    start_echo,
)

KEYS = {"team-a": "rgw-soak-" + secrets.token_urlsafe(24), "team-b": "rgw-soak-" + secrets.token_urlsafe(24)}
TENANTS = tuple(KEYS)
MAX_BODY = 64 * 1024  # limits.max_body_bytes of the soak's gateway: the oversize bodies go just past it
EXPECTED_5XX = frozenset({502, 503, 504})  # a failing backend or store may answer these
CHAIN_RESET = 100  # a worker's conversation starts over after this many turns


def start_soak_gateway(
    reg: Services, workdir: Path, backend_url: str, response_api: dict[str, Any], limits: dict[str, int]
) -> Service:
    """`responses_gateway serve` with the soak's config (limits included), waited for until /ready."""
    port = _free_port()
    config = {
        "server": {"host": HOST, "port": port},
        "log_level": "warning",
        "backends": [
            {"name": "echo", "base_url": f"{backend_url}/v1", "models": ["*"], "timeout_seconds": 30}
        ],
        "response_api": {"enabled": True, "ttl_seconds": 3600, **response_api},
        "limits": {"max_body_bytes": MAX_BODY, **limits},
        "auth": {"api_keys": [{"tenant": t, "key": k} for t, k in KEYS.items()]},
    }
    cfg = workdir / "gateway-soak.yaml"
    cfg.write_text(yaml.safe_dump(config, sort_keys=False))
    log = workdir / "gateway-soak.log"
    cmd = [sys.executable, "-m", "responses_gateway", "serve", "--config", str(cfg), "--host", HOST]
    svc = Service("gateway[soak]", _popen([*cmd, "--port", str(port)], log), f"http://{HOST}:{port}", log)
    reg.add(svc.name, svc.stop)
    _wait_http(f"{svc.url}/ready", svc)
    return svc


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def slope(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MiB), in MiB per minute."""
    n = len(samples)
    if n < 2:
        return float("nan")
    mx = sum(t for t, _ in samples) / n
    my = sum(r for _, r in samples) / n
    var = sum((t - mx) ** 2 for t, _ in samples)
    return 60 * sum((t - mx) * (r - my) for t, r in samples) / var if var else float("nan")


# --- the bad requests ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    method: str
    path: str  # after /v1/responses
    body: bytes | None = None
    content_type: str = "application/json"
    key: str | None = "own"  # "own": the worker's tenant key; None: no Authorization; else that key


def _unknown_id() -> str:
    return "resp_" + secrets.token_hex(24)


def _bad_requests() -> list[tuple[str, Callable[[], Bad]]]:
    create = orjson.dumps({"model": MODEL, "input": "hello"})
    huge = "resp_" + "a" * 8000
    refusal = [{"type": "message", "role": "user", "content": [{"type": "refusal", "refusal": None}]}]
    return [
        ("malformed JSON", lambda: Bad("POST", "", b'{"model": "echo", "input": ')),
        ("not an object", lambda: Bad("POST", "", b"[1, 2, 3]")),
        ("empty body", lambda: Bad("POST", "", b"")),
        ("wrong types", lambda: Bad("POST", "", orjson.dumps({"model": 5, "input": {"a": 1}}))),
        (
            "wrong types",
            lambda: Bad("POST", "", orjson.dumps({"model": MODEL, "input": "x", "stream": "yes"})),
        ),
        ("wrong types", lambda: Bad("POST", "", orjson.dumps({"model": MODEL, "input": refusal}))),
        ("huge id", lambda: Bad("GET", f"/{huge}")),
        (
            "huge id",
            lambda: Bad(
                "POST", "", orjson.dumps({"model": MODEL, "input": "x", "previous_response_id": huge})
            ),
        ),
        ("unknown id", lambda: Bad("GET", f"/{_unknown_id()}")),
        ("unknown id", lambda: Bad("DELETE", f"/{_unknown_id()}")),
        ("unknown id", lambda: Bad("GET", f"/{_unknown_id()}/input_items")),
        (
            "unknown id",
            lambda: Bad(
                "POST",
                "",
                orjson.dumps({"model": MODEL, "input": "x", "previous_response_id": _unknown_id()}),
            ),
        ),
        (
            "oversize body",
            lambda: Bad("POST", "", orjson.dumps({"model": MODEL, "input": "x" * (MAX_BODY + 16_384)})),
        ),
        ("wrong content type", lambda: Bad("POST", "", create, "text/plain")),
        ("wrong content type", lambda: Bad("POST", "", create, "application/x-www-form-urlencoded")),
        ("no key", lambda: Bad("POST", "", create, key=None)),
        ("wrong key", lambda: Bad("GET", f"/{_unknown_id()}", key="rgw-" + secrets.token_urlsafe(32))),
    ]


# --- the load --------------------------------------------------------------------------------------


@dataclass
class Tally:
    statuses: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    unexpected: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def add(self, kind: str, status: int | str, body: bytes = b"") -> None:
        self.statuses[kind][str(status)] += 1
        bad = isinstance(status, str) or (status >= 500 and status not in EXPECTED_5XX)
        bad = bad or (kind.startswith("bad: another tenant") and status != 404)  # a leak across tenants
        if bad:
            self.unexpected[f"{kind}: {status}"] += 1
            if len(self.examples) < 10:
                self.examples.append(f"{kind}: {status} {body[:200]!r}")

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.statuses.values())


async def _call(
    http: aiohttp.ClientSession,
    tally: Tally,
    kind: str,
    method: str,
    url: str,
    body: bytes | None = None,
    content_type: str = "application/json",
    key: str | None = None,
) -> tuple[int, bytes]:
    headers = {"Content-Type": content_type}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    try:
        async with http.request(method, url, data=body, headers=headers) as resp:
            data = await resp.read()
            tally.add(kind, resp.status, data)
            return resp.status, data
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        tally.add(kind, f"connection error ({type(exc).__name__})")
        return 0, b""


async def worker(
    http: aiohttp.ClientSession, base: str, tally: Tally, stop: float, w: int, tips: dict[str, str]
) -> None:
    """One closed-loop client of one tenant (workers alternate between two): its own conversation, and
    every kind of request in turn, among them a GET of the other tenant's latest response (a 404)."""
    url = f"{base}/v1/responses"
    tenant = TENANTS[w % len(TENANTS)]
    other = TENANTS[(w + 1) % len(TENANTS)]
    own_key = KEYS[tenant]

    async def call(kind: str, method: str, target: str, body: bytes | None = None) -> tuple[int, bytes]:
        return await _call(http, tally, kind, method, target, body, key=own_key)

    bad = _bad_requests()
    tip: str | None = None
    turns = 0
    mine: list[str] = []  # its responses not deleted yet

    async def create(kind: str, body: dict[str, Any]) -> str | None:
        status, data = await call(kind, "POST", url, orjson.dumps(body))
        return str(orjson.loads(data)["id"]) if status == 200 else None

    for i in itertools.count(w):
        if time.monotonic() > stop:
            return
        step = i % 8
        if step == 0:
            rid = await create("create", {"model": MODEL, "input": f"soak {i}"})
            if rid:
                mine.append(rid)
        elif step == 1:
            if tip is None or turns >= CHAIN_RESET:
                tip, turns = await create("create", {"model": MODEL, "input": "a new conversation"}), 0
            if tip is not None:
                body = {"model": MODEL, "input": f"turn {turns}", "previous_response_id": tip}
                tip = await create("chained create", body) or tip
                turns += 1
                tips[tenant] = tip
        elif step == 2:
            streamed = orjson.dumps({"model": MODEL, "input": f"stream {i}", "stream": True})
            await call("streamed create", "POST", url, streamed)
        elif step == 3 and tip is not None:
            await call("GET", "GET", f"{url}/{tip}")
        elif step == 4 and tip is not None:
            await call("input_items", "GET", f"{url}/{tip}/input_items?limit=5")
        elif step == 5 and mine:
            await call("DELETE", "DELETE", f"{url}/{mine.pop()}")
        elif step == 6 and other in tips:
            await call("bad: another tenant's response", "GET", f"{url}/{tips[other]}")
        else:
            name, make = bad[(i // 8 * 2 + step) % len(bad)]
            req = make()
            key = own_key if req.key == "own" else req.key
            await _call(
                http, tally, f"bad: {name}", req.method, url + req.path, req.body, req.content_type, key
            )


async def soak(gw: Service, minutes: float, workers: int) -> tuple[list[tuple[float, float]], Tally, float]:
    tally = Tally()
    samples: list[tuple[float, float]] = []
    start = time.monotonic()
    stop = start + minutes * 60

    async def sampler() -> None:
        while True:
            now = time.monotonic()
            samples.append((now - start, rss_mib(gw.pid)))
            if now >= stop:
                return
            await asyncio.sleep(min(1.0, max(0.0, stop - now)))

    async with session(workers) as http:
        tips: dict[str, str] = {}  # each tenant's latest chained response
        workers_ = (worker(http, gw.url, tally, stop, w, tips) for w in range(workers))
        await asyncio.gather(sampler(), *workers_)
        samples.append((time.monotonic() - start, rss_mib(gw.pid)))  # after the last requests
    return samples, tally, time.monotonic() - start


def render(args: argparse.Namespace, samples: list[tuple[float, float]], tally: Tally, seconds: float) -> str:
    info = machine()
    rss = [r for _, r in samples]
    half = samples[len(samples) // 2 :]
    unexpected = sum(tally.unexpected.values())
    lines = [
        f"### Soak: {args.minutes:g} min of mixed load with bad inputs ({args.store} store)",
        "",
        f"`.venv/bin/python benchmarks/soak.py --minutes {args.minutes:g} --store {args.store} "
        f"--workers {args.workers}"
        + (f" --requests-per-minute {args.requests_per_minute}" if args.requests_per_minute else "")
        + (f" --concurrent-streams {args.concurrent_streams}" if args.concurrent_streams else "")
        + "`  ",
        f"{info['date']}; {info['nproc']} CPUs ({info['cpu']}); Python {info['python']}; loopback only. "
        f"One gateway process with two tenants' keys, {args.workers} closed-loop clients (half each), "
        f"`limits.max_body_bytes: {MAX_BODY}`; "
        f"RSS (VmRSS) sampled every second ({len(samples)} samples).",
        "",
        md_table(
            [
                "requests",
                "req/s",
                "RSS start MiB",
                "RSS end MiB",
                "RSS max MiB",
                "slope MiB/min",
                "slope, 2nd half",
                "unexpected",
            ],
            [
                [
                    tally.total,
                    tally.total / seconds,
                    rss[0],
                    rss[-1],
                    max(rss),
                    slope(samples),
                    slope(half),
                    unexpected,
                ]
            ],
        ),
        "",
        md_table(
            ["request", "count", "statuses"],
            [
                [kind, sum(c.values()), ", ".join(f"{s}: {n}" for s, n in sorted(c.items()))]
                for kind, c in sorted(tally.statuses.items(), key=lambda kv: (kv[0].startswith("bad"), kv[0]))
            ],
        ),
        "",
        "Unexpected = a 5xx other than 502/503/504, or a connection error: "
        + (", ".join(f"{k}: {n}" for k, n in tally.unexpected.items()) if unexpected else "none."),
    ]
    return "\n".join(lines)


async def _main(args: argparse.Namespace) -> tuple[str, int]:
    with services() as reg, tempfile.TemporaryDirectory(prefix="rg-soak-") as tmp:
        workdir = Path(tmp)
        echo = start_echo(reg, workdir)
        api: dict[str, Any] = {"store_backend": "memory"}
        if args.store == "redis":
            node = redis_servers.start_standalone(workdir / "redis")
            reg.add("redis soak", node.stop)
            api = {"store_backend": "redis", "redis": {"address": node.address}}
        limits = {
            "requests_per_minute": args.requests_per_minute,
            "concurrent_streams": args.concurrent_streams,
        }
        gw = start_soak_gateway(reg, workdir, echo.url, api, limits)
        print(f"soak: {args.minutes:g} min on the {args.store} store ...", file=sys.stderr)
        samples, tally, seconds = await soak(gw, args.minutes, args.workers)
        for example in tally.examples:
            print(f"unexpected: {example}", file=sys.stderr)
        if gw.proc.poll() is not None:
            tally.unexpected[f"gateway exited with {gw.proc.returncode}"] += 1
        return render(args, samples, tally, seconds), sum(tally.unexpected.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--store", choices=("redis", "memory"), default="redis")
    parser.add_argument("--workers", type=int, default=16, help="closed-loop clients (default 16)")
    parser.add_argument(
        "--requests-per-minute", type=int, default=0, help="limits.requests_per_minute (0: off)"
    )
    parser.add_argument(
        "--concurrent-streams", type=int, default=0, help="limits.concurrent_streams (0: off)"
    )
    report, unexpected = run(_main(parser.parse_args()))
    print(report)
    sys.exit(1 if unexpected else 0)


if __name__ == "__main__":
    main()
