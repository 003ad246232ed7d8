"""Shared pieces of the benchmarks: processes started and stopped by PID, an aiohttp load driver,
CPU accounting from /proc, and Markdown tables.

Everything binds or connects to 127.0.0.1 only. Every process started here is registered in a
`Services` object and stopped by its PID (SIGTERM, then SIGKILL) when the benchmark ends, also on
Ctrl-C, SIGTERM or an exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python benchmarks/x.py` puts only benchmarks/ on the path
    sys.path.insert(0, str(ROOT))

HOST = "127.0.0.1"
MODEL = "echo"
PROMPT = "hello benchmark"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- budgets ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    """How many requests a measurement sends at each concurrency, and its time cap."""

    count_c1: int = 600
    count_c32: int = 4000
    max_seconds: float = 12.0
    warmup: int = 200
    cpu_creates: int = 2000  # the fixed number of creates whose CPU time is read from /proc
    quick: bool = False

    def count(self, concurrency: int) -> int:
        return self.count_c1 if concurrency == 1 else self.count_c32


FULL = Budget()
QUICK = Budget(count_c1=150, count_c32=800, max_seconds=4.0, warmup=50, cpu_creates=400, quick=True)


# --- processes --------------------------------------------------------------------------------


@dataclass
class Service:
    """One child process we started; `stop()` signals only this PID."""

    name: str
    proc: subprocess.Popen[bytes]
    url: str = ""
    log: Path | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, timeout: float = 10.0) -> None:
        # Popen.send_signal does nothing once the child was reaped, so a recycled PID is never hit.
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Services:
    """Everything a benchmark run started, stopped in reverse order by `stop_all()`."""

    def __init__(self) -> None:
        self._stoppers: list[tuple[str, Callable[[], None]]] = []

    def add(self, name: str, stopper: Callable[[], None]) -> None:
        self._stoppers.append((name, stopper))

    def remove(self, stopper: Callable[[], None]) -> None:
        self._stoppers = [(n, s) for n, s in self._stoppers if s is not stopper]

    def stop(self, stopper: Callable[[], None]) -> None:
        self.remove(stopper)
        stopper()

    def stop_all(self) -> None:
        while self._stoppers:
            name, stopper = self._stoppers.pop()
            try:
                stopper()
            except Exception as exc:  # keep stopping the others
                print(f"warning: stopping {name} failed: {exc}", file=sys.stderr)


@contextlib.contextmanager
def services() -> Iterator[Services]:
    """A `Services` registry whose processes are stopped on exit, also on Ctrl-C and SIGTERM."""
    reg = Services()

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield reg
    finally:
        reg.stop_all()
        signal.signal(signal.SIGTERM, previous)


def _popen(cmd: Sequence[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        # a new session: a Ctrl-C in the terminal reaches only us, and we stop the children in order
        return subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
            env=None if env is None else {**os.environ, **env},
        )


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _wait_http(url: str, svc: Service, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if svc.proc.poll() is not None:
            tail = svc.log.read_text()[-2000:] if svc.log else ""
            raise RuntimeError(f"{svc.name} exited with {svc.proc.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except (OSError, urllib.error.HTTPError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer 200 within {timeout}s")
        time.sleep(0.05)


def start_echo(reg: Services, workdir: Path) -> Service:
    """The deterministic echo Chat Completions backend (tests/support/echo_backend.py)."""
    port = _free_port()
    log = workdir / "echo-backend.log"
    cmd = [sys.executable, "-m", "tests.support.echo_backend", "--host", HOST, "--port", str(port)]
    svc = Service("echo-backend", _popen(cmd, log), f"http://{HOST}:{port}", log)
    reg.add(svc.name, svc.stop)
    _wait_http(f"{svc.url}/health", svc)
    return svc


def start_gateway(
    reg: Services,
    workdir: Path,
    backend_url: str,
    response_api: dict[str, Any],
    name: str,
    *,
    src: Path | None = None,
    args: Sequence[str] = (),
    log_level: str = "warning",
) -> Service:
    """`python -m responses_gateway serve --config <tmp yaml> --port <free>`, waited for until /ready.
    `src`: run the package from another source tree (e.g. an older commit's `src/`) instead."""
    port = _free_port()
    config = {
        "server": {"host": HOST, "port": port},
        "log_level": log_level,
        "backends": [
            {"name": "echo", "base_url": f"{backend_url}/v1", "models": ["*"], "timeout_seconds": 30}
        ],
        "response_api": {"enabled": True, "ttl_seconds": 86400, **response_api},
    }
    cfg = workdir / f"gateway-{name}.yaml"
    cfg.write_text(yaml.safe_dump(config, sort_keys=False))
    log = workdir / f"gateway-{name}.log"
    cmd = [sys.executable, "-m", "responses_gateway", "serve", "--config", str(cfg), "--host", HOST]
    env = None if src is None else {"PYTHONPATH": str(src)}
    proc = _popen([*cmd, "--port", str(port), *args], log, env)
    svc = Service(f"gateway[{name}]", proc, f"http://{HOST}:{port}", log)
    reg.add(svc.name, svc.stop)
    _wait_http(f"{svc.url}/ready", svc)
    return svc


# --- CPU time from /proc -------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class CpuMeter:
    """CPU seconds used by some processes (and by this one) between `start()` and `stop()`."""

    def __init__(self, pids: dict[str, Sequence[int]]) -> None:
        self.pids = pids
        self._before: dict[str, float] = {}
        self._self_before = 0.0
        self.used: dict[str, float] = {}

    def _read(self) -> dict[str, float]:
        return {name: sum(cpu_seconds(p) for p in pids) for name, pids in self.pids.items()}

    def start(self) -> None:
        self._before = self._read()
        self._self_before = time.process_time()

    def stop(self) -> dict[str, float]:
        after = self._read()
        self.used = {name: after[name] - self._before[name] for name in after}
        self.used["client"] = time.process_time() - self._self_before
        return self.used


# --- the load driver -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    body: bytes | None = None


Check = Callable[[int, bytes], bool]


def ok_200(status: int, body: bytes) -> bool:
    return status == 200


def ok_stream(marker: bytes) -> Check:
    def check(status: int, body: bytes) -> bool:
        return status == 200 and marker in body

    return check


@dataclass
class Result:
    """One measurement: `count` requests from `concurrency` closed-loop workers."""

    name: str
    concurrency: int
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests only
    seconds: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per process during the run

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        """The q-th percentile latency in ms (nearest rank)."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
        return ordered[rank] * 1000

    @property
    def p50(self) -> float:
        return self.pct(50)

    @property
    def p99(self) -> float:
        return self.pct(99)

    def cpu_ms_per_request(self, who: str) -> float:
        if who not in self.cpu or not self.ok:
            return float("nan")
        return self.cpu[who] * 1000 / self.ok


def session(concurrency: int) -> aiohttp.ClientSession:
    """One pooled aiohttp session: keep-alive, at most `concurrency` connections, no proxies."""
    connector = aiohttp.TCPConnector(limit=max(concurrency, 1), limit_per_host=0, ttl_dns_cache=None)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=60),
        headers={"Content-Type": "application/json"},
        trust_env=False,
        skip_auto_headers=("User-Agent",),
    )


async def drive(
    http: aiohttp.ClientSession,
    name: str,
    make: Callable[[int], Request],
    *,
    concurrency: int,
    count: int,
    max_seconds: float,
    check: Check = ok_200,
    meter: CpuMeter | None = None,
) -> Result:
    """Closed loop: `concurrency` workers send `make(i)` until `count` requests or `max_seconds`."""
    result = Result(name, concurrency)
    numbers = itertools.count()
    deadline = time.monotonic() + max_seconds

    async def worker() -> None:
        while time.monotonic() < deadline:
            i = next(numbers)
            if i >= count:
                return
            req = make(i)
            t0 = time.perf_counter()
            try:
                async with http.request(req.method, req.url, data=req.body) as resp:
                    body = await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                result.errors[type(exc).__name__] += 1
                continue
            elapsed = time.perf_counter() - t0
            if check(status, body):
                result.latencies.append(elapsed)
            else:
                result.errors[f"HTTP {status}: {body[:120]!r}"] += 1

    if meter is not None:
        meter.start()
    t_start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - t_start
    if meter is not None:
        result.cpu = meter.stop()
    if result.errors:
        print(f"warning: {name} c={concurrency}: {dict(result.errors)}", file=sys.stderr)
    return result


async def post_json(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> dict[str, Any]:
    async with http.post(url, data=orjson.dumps(body)) as resp:
        data = await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"POST {url}: HTTP {resp.status}: {data[:300]!r}")
        parsed: dict[str, Any] = orjson.loads(data)
        return parsed


# --- request bodies --------------------------------------------------------------------------------


def chat_body(stream: bool) -> bytes:
    """The Chat Completions request equivalent to one create (the gateway streams with usage)."""
    body: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}]}
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    return orjson.dumps(body)


def create_body(previous: str | None = None, stream: bool = False, text: str = PROMPT) -> bytes:
    body: dict[str, Any] = {"model": MODEL, "input": text, "store": True}
    if previous is not None:
        body["previous_response_id"] = previous
    if stream:
        body["stream"] = True
    return orjson.dumps(body)


async def build_chain(http: aiohttp.ClientSession, gateway_url: str, depth: int) -> list[str]:
    """`depth` chained creates through the gateway; the ids, root first."""
    ids: list[str] = []
    for i in range(depth):
        body: dict[str, Any] = {"model": MODEL, "input": f"turn {i}", "store": True}
        if ids:
            body["previous_response_id"] = ids[-1]
        ids.append((await post_json(http, f"{gateway_url}/v1/responses", body))["id"])
    return ids


# --- reporting -------------------------------------------------------------------------------------


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            if v != v:  # NaN
                return "n/a"
            if abs(v) >= 100:
                return f"{v:,.0f}"
            if abs(v) >= 10:
                return f"{v:.1f}"
            return f"{v:.2f}"
        return str(v)

    align = ["---" if i == 0 else "---:" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def median_ms(samples: Sequence[float]) -> float:
    return statistics.median(samples) * 1000


async def timed(fn: Callable[[], Awaitable[Any]], n: int, max_seconds: float = 20.0) -> list[float]:
    """Run `fn` up to `n` times sequentially (at least once); the durations in seconds."""
    samples: list[float] = []
    deadline = time.monotonic() + max_seconds
    for _ in range(n):
        t = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - t)
        if time.monotonic() > deadline:
            break
    return samples


def machine() -> dict[str, str]:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "python": sys.version.split()[0],
        "aiohttp": aiohttp.__version__,
    }


def run(main: Awaitable[Any]) -> Any:
    """Run a benchmark coroutine on uvloop when installed (as the gateway runs), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)  # type: ignore[arg-type]
    return uvloop.run(main)  # type: ignore[arg-type]
