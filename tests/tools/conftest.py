"""Fixtures for the tool, reasoning and real-client tests: gateways over the echo backend (the store
matrix comes from tests/integration), the npm-installed Node clients, and llm-katan as a process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import gateway  # noqa: F401  (every store backend)
from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway, gateway_settings, run_gateway

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = Path(__file__).resolve().parent / "node"
ENCRYPTION_KEY = "test-only reasoning key"
# what `make node-deps` installs from package.json; a test needing one fails (never skips) without it
NODE_PACKAGES = ("ai", "@ai-sdk/openai", "@openai/codex", "zod")


@pytest.fixture
def tool_gateway(echo: EchoBackend) -> Iterator[Gateway]:
    """A memory-store gateway with an encryption key, for translation and client tests."""
    with run_gateway(gateway_settings(echo.base_url, encryption_key=ENCRYPTION_KEY)) as gw:
        yield gw


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """The repo's node_modules with the pinned clients; installs them (npm ci) when they are missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail(
            "node and npm are needed for the Node.js client tests (Node 20+): install nodejs/npm, "
            "then run `make node-deps`"
        )
    modules = ROOT / "node_modules"
    missing = [p for p in NODE_PACKAGES if not (modules / p / "package.json").is_file()]
    if missing:
        cmd = [npm, "ci" if (ROOT / "package-lock.json").is_file() else "install", "--no-audit", "--no-fund"]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            pytest.fail(
                f"`{' '.join(cmd)}` failed ({done.returncode}); run `make node-deps`:\n{done.stderr[-3000:]}"
            )
        missing = [p for p in NODE_PACKAGES if not (modules / p / "package.json").is_file()]
        if missing:
            pytest.fail(f"npm did not install {missing}; run `make node-deps`")
    return modules


def node_env(**extra: str) -> dict[str, str]:
    """The environment for a client process: no proxies (loopback only), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(extra)
    return env


def run_node_script(script: str, base_url: str) -> dict[str, Any]:
    """Run `tests/tools/node/<script>` against the gateway at `base_url`; the JSON of its last line."""
    node = shutil.which("node")
    assert node is not None, "node is not on PATH: install Node.js 20+"
    done = subprocess.run(
        [node, str(NODE_DIR / script), base_url],
        cwd=ROOT,
        env=node_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, (
        f"exit {done.returncode}\nstdout: {done.stdout[-2000:]}\nstderr: {done.stderr[-4000:]}"
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
