#!/usr/bin/env python3
"""The seed's 6-node Redis Cluster on 127.0.0.1:7001-7006 as plain processes: `up | down | status`.

State (configs, nodes.conf, AOF, pid and log files) lives in ./.cluster/. Stdlib only, so any
python3 runs it; the process logic is shared with the tests (tests/support/redis_servers.py).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import redis_servers  # noqa: E402

PORTS = list(redis_servers.SEED_PORTS)


def _cluster(state: Path, node_timeout_ms: int) -> redis_servers.RedisCluster:
    return redis_servers.make_cluster(state, PORTS, node_timeout_ms)


def up(state: Path, node_timeout_ms: int) -> int:
    cluster = _cluster(state, node_timeout_ms)
    busy = [n.port for n in cluster.nodes if not n.alive() and not redis_servers.port_is_free(n.port)]
    if busy:
        print(f"ports in use by something else: {busy}", file=sys.stderr)
        return 1
    try:
        redis_servers.start_cluster(state, PORTS, node_timeout_ms)
    except (OSError, RuntimeError, TimeoutError) as exc:
        print(f"cluster did not come up: {exc}", file=sys.stderr)
        return 1
    print(f"cluster up: {', '.join(cluster.addresses)} (state in {state})")
    return 0


def down(state: Path, node_timeout_ms: int, keep: bool) -> int:
    cluster = _cluster(state, node_timeout_ms)
    cluster.stop()
    still = [n.port for n in cluster.nodes if n.alive()]
    if still:
        print(f"still running: {still}", file=sys.stderr)
        return 1
    if not keep and state.exists():
        shutil.rmtree(state)
    print("cluster down" + (" (state kept)" if keep else ""))
    return 0


def status(state: Path, node_timeout_ms: int) -> int:
    cluster = _cluster(state, node_timeout_ms)
    for port, view in cluster.views().items():
        if isinstance(view, str):
            print(f"127.0.0.1:{port}  {view}")
        else:
            print(
                f"127.0.0.1:{port}  state={view.state} known_nodes={view.known_nodes} "
                f"masters_with_slots={view.masters_with_slots} connected_replicas={view.connected_replicas}"
            )
    ok = cluster.healthy()
    print("healthy" if ok else "NOT healthy")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--state-dir", type=Path, default=Path.cwd() / ".cluster")
    parser.add_argument("--node-timeout", type=int, default=5000, help="cluster-node-timeout in ms")
    parser.add_argument("--keep", action="store_true", help="down: keep ./.cluster/ (data and nodes.conf)")
    args = parser.parse_args(argv)
    state: Path = args.state_dir.resolve()
    if args.command == "up":
        return up(state, args.node_timeout)
    if args.command == "down":
        return down(state, args.node_timeout, args.keep)
    return status(state, args.node_timeout)


if __name__ == "__main__":
    sys.exit(main())
