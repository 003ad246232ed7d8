"""`responses-gateway serve --workers 2` as a user runs it, over the echo backend and one SQLite file:
both workers serve, any worker continues any conversation, /metrics counts every worker's requests,
a killed worker is replaced, and SIGTERM stops every process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway_process import ROOT, write_config
from tests.support.processes import children, free_port, start, stop, wait_http

pytestmark = pytest.mark.e2e
WORKERS = 2


class Workers:
    """The `serve --workers 2` process, its port, log and the directory its workers keep metrics in."""

    def __init__(self, tmp: Path, backend_url: str) -> None:
        cfg = write_config(
            tmp / "config.yaml",
            backend_url,
            {"store_backend": "sqlite", "sqlite": {"path": str(tmp / "responses.db")}},
        )
        self.tmp = tmp
        self.port = free_port()
        self.log = tmp / "gateway.log"
        argv = [sys.executable, "-m", "responses_gateway", "serve", "--config", str(cfg)]
        argv += ["--port", str(self.port), "--workers", str(WORKERS)]
        # serve makes its metrics directory under TMPDIR: here, where the test can look into it
        self.proc = start(argv, self.log, env={"TMPDIR": str(tmp)}, cwd=ROOT)
        wait_http(f"http://127.0.0.1:{self.port}/health", self.proc)
        self.wait_started(WORKERS)

    def wait_started(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.log.read_text().count("Application startup complete.") < count:
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.05)

    def children(self) -> set[int]:
        return children(self.proc.pid)

    def workers(self) -> set[int]:
        return {pid for pid in self.children() if b"spawn_main" in _cmdline(pid)}

    def metrics_dir(self) -> Path:
        (path,) = self.tmp.glob("responses-gateway-metrics-*")
        return path


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    """Running (a zombie is gone for this purpose: it only waits for its parent to read its status)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _server_socket_owner(client_port: int, server_port: int, pids: set[int]) -> int | None:
    """Which of `pids` holds the server end of the loopback connection from `client_port`."""
    local, remote = f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}"
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[2] == remote:
            inode = fields[9]
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return pid
            except OSError:
                continue
    return None


def _call(conn: HTTPConnection, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    raw = resp.read()
    return resp.status, (
        json.loads(raw) if resp.getheader("content-type", "").startswith("application/json") else raw
    )


def _connection_per_worker(gw: Workers) -> dict[int, HTTPConnection]:
    """One keep-alive connection served by each worker (new connections until every worker has one)."""
    workers = gw.workers()
    assert len(workers) == WORKERS
    conns: dict[int, HTTPConnection] = {}
    for _ in range(200):
        conn = HTTPConnection("127.0.0.1", gw.port, timeout=30)
        assert _call(conn, "GET", "/health")[0] == 200  # accepted by now
        assert conn.sock is not None
        owner = _server_socket_owner(conn.sock.getsockname()[1], gw.port, workers)
        assert owner in workers
        if owner in conns:
            conn.close()
        else:
            conns[owner] = conn
        if len(conns) == WORKERS:
            return conns
    pytest.fail(f"200 connections did not reach every worker: {sorted(conns)}")


def _requests_by_route(text: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "gateway_requests_total":
                counts[f"{sample.labels['method']} {sample.labels['route']}"] += int(sample.value)
    return counts


def _requests_of_worker(metrics_dir: Path, pid: int) -> int:
    """What one worker counted, from its own file in the shared directory."""
    families = MultiProcessCollector.merge([str(metrics_dir / f"counter_{pid}.db")])  # type: ignore[no-untyped-call]
    return sum(int(s.value) for f in families for s in f.samples if s.name == "gateway_requests_total")


@pytest.fixture
def gateway(tmp_path: Path, echo: EchoBackend) -> Iterator[Workers]:
    gw = Workers(tmp_path, echo.base_url)
    try:
        yield gw
    finally:
        stop(gw.proc)


def test_two_workers_share_the_port_the_store_and_the_metrics(gateway: Workers, echo: EchoBackend) -> None:
    gw = gateway
    conns = _connection_per_worker(gw)
    (a, conn_a), (b, conn_b) = sorted(conns.items())
    sent: Counter[str] = Counter()

    # a conversation moving between the workers: each turn continues the previous one on the other
    previous: str | None = None
    turns = []
    for turn in range(6):
        conn = (conn_a, conn_b)[turn % 2]
        body: dict[str, Any] = {"model": "m", "input": f"turn {turn}"}
        if previous is not None:
            body["previous_response_id"] = previous
        status, reply = _call(conn, "POST", "/v1/responses", body)
        sent["POST /v1/responses"] += 1
        assert status == 200, reply
        assert reply["previous_response_id"] == previous
        assert reply["output"][0]["content"][0]["text"] == f"echo: turn {turn}"
        previous = reply["id"]
        turns.append(reply)
    for turn, reply in enumerate(turns):  # every worker reads what the other stored
        for conn in (conn_a, conn_b):
            status, got = _call(conn, "GET", f"/v1/responses/{reply['id']}")
            sent["GET /v1/responses/{id}"] += 1
            assert status == 200 and got == reply, turn
    status, items = _call(conn_b, "GET", f"/v1/responses/{turns[-1]['id']}/input_items?order=asc")
    sent["GET /v1/responses/{id}/input_items"] += 1
    assert status == 200 and [i["content"][0]["text"] for i in items["data"]] == ["turn 5"]
    history = echo.chat_requests()[-1]["body"]["messages"]  # what the last turn sent upstream
    assert [m["role"] for m in history] == ["user", "assistant"] * 5 + ["user"]

    # plain creates on fresh connections: the kernel spreads them over the workers
    for i in range(20):
        fresh = HTTPConnection("127.0.0.1", gw.port, timeout=30)
        assert _call(fresh, "POST", "/v1/responses", {"model": "m", "input": f"fresh {i}"})[0] == 200
        sent["POST /v1/responses"] += 1
        fresh.close()

    # /metrics on either worker counts the requests of both
    metrics_dir = gw.metrics_dir()
    assert _requests_of_worker(metrics_dir, a) > 0 and _requests_of_worker(metrics_dir, b) > 0
    for conn in (conn_a, conn_b):
        status, text = _call(conn, "GET", "/metrics")
        counted = _requests_by_route(text.decode())
        assert {k: counted[k] for k in sent} == dict(sent)
    sent["GET /metrics"] += 2

    # a worker killed outright is replaced; what it counted still counts
    os.kill(a, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while not (len(gw.workers()) == WORKERS and a not in gw.workers()):
        assert time.monotonic() < deadline, gw.log.read_text()
        time.sleep(0.1)
    gw.wait_started(WORKERS + 1)
    conn_b.close()  # fresh connections: the dead worker's connection is gone
    for _ in range(4):
        fresh = HTTPConnection("127.0.0.1", gw.port, timeout=30)
        status, _ = _call(fresh, "GET", f"/v1/responses/{turns[0]['id']}")
        assert status == 200
        sent["GET /v1/responses/{id}"] += 1
        fresh.close()
    fresh = HTTPConnection("127.0.0.1", gw.port, timeout=30)
    counted = _requests_by_route(_call(fresh, "GET", "/metrics")[1].decode())
    fresh.close()
    assert {k: counted[k] for k in sent} == dict(sent)

    # SIGTERM: every worker shuts down gracefully, nothing is left behind
    processes = gw.children()
    assert len(processes) >= WORKERS
    code = stop(gw.proc, timeout=20)
    assert code in (0, -signal.SIGTERM), gw.log.read_text()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in processes):
        assert time.monotonic() < deadline, f"left running: {[p for p in processes if _alive(p)]}"
        time.sleep(0.05)
    log = gw.log.read_text()
    assert log.count("Application shutdown complete.") == WORKERS
    assert "responses-gateway " in log and f"starting on http://127.0.0.1:{gw.port} with 2 workers" in log
    assert log.count("Response API enabled with sqlite backend") == WORKERS + 1  # one per worker started
    assert "Traceback" not in log
    assert not metrics_dir.exists()


def test_workers_refuse_the_memory_store(tmp_path: Path) -> None:
    cfg = tmp_path / "memory.yaml"
    cfg.write_text("response_api: {store_backend: memory}\n")
    out = subprocess.run(
        [sys.executable, "-m", "responses_gateway", "serve", "--config", str(cfg), "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert out.returncode == 2
    assert out.stderr.startswith("error: --workers 2: the memory store") and out.stderr.count("\n") == 1


def test_a_worker_that_cannot_start_stops_them_all(tmp_path: Path, echo: EchoBackend) -> None:
    """As with one process: exit code 3, no worker left, no restart loop, the metrics directory gone."""
    api = {"store_backend": "sqlite", "sqlite": {"path": str(tmp_path / "missing" / "dir" / "r.db")}}
    cfg = write_config(tmp_path / "config.yaml", echo.base_url, api)
    (tmp_path / "missing").write_text("a file where the SQLite file's directory should be")
    argv = [sys.executable, "-m", "responses_gateway", "serve", "--config", str(cfg)]
    out = subprocess.run(
        [*argv, "--port", str(free_port()), "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert out.returncode == 3, out.stderr
    assert "failed to start: stopping every worker" in out.stderr
    assert "starting another" not in out.stderr  # not restarted
    assert not list(tmp_path.glob("responses-gateway-metrics-*"))


def test_workers_stop_when_the_supervisor_is_killed(gateway: Workers) -> None:
    """Even SIGKILL of `serve` (no chance to stop anything) leaves no worker running: each gets SIGTERM."""
    workers = gateway.workers()
    assert len(workers) == WORKERS
    gateway.proc.kill()
    gateway.proc.wait()
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in workers):
        assert time.monotonic() < deadline, f"orphaned: {[p for p in workers if _alive(p)]}"
        time.sleep(0.05)
    assert gateway.log.read_text().count("Application shutdown complete.") == WORKERS  # gracefully
