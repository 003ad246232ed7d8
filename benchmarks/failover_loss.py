"""Acknowledged writes lost when a Redis Cluster master is frozen (SIGSTOP) or killed under load,
with and without `wait_replicas: 1`. A measurement, not a test (tests/reliability asserts 0 lost
for the configurations we recommend).

    .venv/bin/python benchmarks/failover_loss.py [--runs 3] [--seconds 12]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support import redis_servers  # noqa: E402
from tests.support.echo_fixtures import start_echo_backend, stop_echo_backend  # noqa: E402
from tests.support.gateway_process import GatewayProcess, write_config  # noqa: E402
from tests.support.load import lost, run_load  # noqa: E402


async def one_run(
    fault: str, wait_replicas: int, seconds: float, base: Path, echo_url: str
) -> tuple[int, int, int]:
    """(acknowledged, lost, 503s) of one run."""
    cluster = redis_servers.start_cluster(base / "cluster", node_timeout_ms=2000)
    try:
        api = {
            "store_backend": "redis",
            "ttl_seconds": 3600,
            "redis": {
                "cluster_mode": True,
                "cluster_addresses": cluster.addresses,
                "read_timeout": 1,
                "wait_replicas": wait_replicas,
                "wait_timeout_ms": 200,
            },
        }
        cfg = write_config(base / "gw.yaml", echo_url, api, log_level="warning")
        with GatewayProcess(cfg, base / "gw.log") as gw:
            victim = cluster.masters()[0]
            load = asyncio.create_task(run_load(gw.base_url, seconds=seconds, concurrency=8))
            await asyncio.sleep(2)
            if fault == "sigstop":
                victim.freeze()
                await asyncio.sleep(5)
                victim.thaw()
            else:
                victim.kill()
            result = await load
            if fault == "sigkill":
                victim.start()
            cluster.wait_healthy(30)
            missing = await lost(gw.base_url, result.acked, settle_seconds=30)
            return len(result.acked), len(missing), result.statuses[503]
    finally:
        for node in cluster.nodes:
            node.thaw()
        cluster.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=12)
    args = parser.parse_args()
    echo = start_echo_backend()
    try:
        print("| fault | wait_replicas | run | acknowledged | lost | 503s |")
        print("|---|---:|---:|---:|---:|---:|")
        for fault in ("sigstop", "sigkill"):
            for wait in (0, 1):
                for run in range(args.runs):
                    with tempfile.TemporaryDirectory(prefix="rg-loss-") as tmp:
                        acked, missing, unavailable = await one_run(
                            fault, wait, args.seconds, Path(tmp), echo.base_url
                        )
                    row = f"| {fault} | {wait} | {run + 1} | {acked} | {missing} | {unavailable} |"
                    print(row, flush=True)
    finally:
        stop_echo_backend(echo.process)


if __name__ == "__main__":
    asyncio.run(main())
