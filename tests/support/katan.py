"""llm-katan's echo backend (the seed's third-party upstream) as a process on a free loopback port."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.processes import free_port, start, stop, wait_http

KATAN = Path(sys.executable).parent / "llm-katan"


@contextmanager
def run_katan(workdir: Path, model: str = "qwen3") -> Iterator[str]:
    """Serve `model` with llm-katan's echo backend; yields its base URL (with /v1).
    It refuses requests without an Authorization header (any value will do)."""
    port = free_port()
    cmd = [
        str(KATAN),
        "--model",
        model,
        "--backend",
        "echo",
        "--providers",
        "openai",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--stats-file",
        str(workdir / "stats.json"),
    ]
    proc = start(cmd, workdir / "katan.log")
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop(proc)
