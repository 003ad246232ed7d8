"""Metrics: one process keeps its own registry; the shared directory `serve --workers` makes and removes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from responses_gateway.metrics import MULTIPROC_DIR_ENV, Metrics, multiprocess_dir, shared_metrics_dir


def test_one_process_renders_its_own_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MULTIPROC_DIR_ENV, raising=False)
    metrics = Metrics()
    assert metrics.multiprocess_dir is None
    metrics.requests.labels("/health", "GET", "200").inc()
    body, _ = metrics.render()
    assert b'gateway_requests_total{method="GET",route="/health",status="200"} 1.0' in body


def test_shared_metrics_dir_is_exported_then_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MULTIPROC_DIR_ENV, raising=False)
    with shared_metrics_dir() as path:
        assert os.environ[MULTIPROC_DIR_ENV] == path and Path(path).is_dir()
        Path(path, "counter_1.db").write_bytes(b"")
        # prometheus_client was imported here without the variable: this process keeps its registry
        assert multiprocess_dir() is None and Metrics().multiprocess_dir is None
    assert not Path(path).exists()
    assert MULTIPROC_DIR_ENV not in os.environ


# Two "workers" (processes started with the variable set, as `serve` starts them) count requests;
# a third renders the sum of both, as /metrics does on any worker.
_WORKER = textwrap.dedent(
    """
    import sys
    from responses_gateway.metrics import Metrics
    metrics = Metrics()
    assert metrics.multiprocess_dir is not None
    for _ in range(int(sys.argv[1])):
        metrics.requests.labels("/v1/responses", "POST", "200").inc()
        metrics.latency.labels("/v1/responses").observe(0.003)
    if len(sys.argv) > 2:
        sys.stdout.write(metrics.render()[0].decode())
    """
)


def test_workers_metrics_are_summed(tmp_path: Path) -> None:
    env = {**os.environ, MULTIPROC_DIR_ENV: str(tmp_path)}
    for count in ("3", "4"):
        subprocess.run([sys.executable, "-c", _WORKER, count], env=env, check=True, timeout=60)
    out = subprocess.run(
        [sys.executable, "-c", _WORKER, "0", "render"],
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout
    assert 'gateway_requests_total{method="POST",route="/v1/responses",status="200"} 7.0' in out
    assert 'gateway_request_seconds_count{route="/v1/responses"} 7.0' in out
