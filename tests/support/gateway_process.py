"""The gateway as a real process (`python -m responses_gateway serve`), as a user runs it."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.support.processes import free_port, start, stop, wait_http

ROOT = Path(__file__).resolve().parents[2]


def write_config(path: Path, backend_url: str, response_api: dict[str, Any], **extra: Any) -> Path:
    """A config file with one catch-all backend and the given `response_api` block."""
    data = {
        "backends": [{"name": "echo", "base_url": backend_url, "models": ["*"], "timeout_seconds": 30}],
        "response_api": response_api,
        **extra,
    }
    path.write_text(yaml.safe_dump(data))
    return path


class GatewayProcess:
    """One `responses-gateway serve` process on a free port; its log in `log`."""

    def __init__(
        self, config: Path, log: Path, env: dict[str, str] | None = None, wait_ready: bool = True
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.url}/v1"
        self.log = log
        self.proc = start(
            [
                sys.executable,
                "-m",
                "responses_gateway",
                "serve",
                "--config",
                str(config),
                "--port",
                str(self.port),
            ],
            log,
            env=env,
            cwd=ROOT,
        )
        if wait_ready:
            wait_http(f"{self.url}/health", self.proc)

    def stop(self) -> int:
        """SIGTERM; uvicorn shuts down gracefully, then re-raises the signal (exit -15 means clean)."""
        code = stop(self.proc)
        return 0 if code == -signal.SIGTERM else code

    def __enter__(self) -> GatewayProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
