"""Pytest fixtures running `tests.support.echo_backend` as a real process on a free loopback port.

`echo_backend` (session) starts it once; `echo` (function) resets its request log and yields it.
Import both into a conftest: `from tests.support.echo_fixtures import echo, echo_backend`.
"""

from __future__ import annotations

import asyncio
import json
import selectors
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

_ROOT = Path(__file__).resolve().parents[2]
_READY = "echo-backend ready on "


@dataclass
class EchoBackend:
    """A running echo backend: where it listens and its test hooks."""

    host: str
    port: int
    process: subprocess.Popen[str]

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL, including `/v1`."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def requests(self) -> list[dict[str, Any]]:
        """What the backend received, oldest first: method, path, body, authorization, disconnected."""
        with urllib.request.urlopen(f"{self.root_url}/_requests", timeout=5) as resp:
            result: list[dict[str, Any]] = json.loads(resp.read())
        return result

    def chat_requests(self) -> list[dict[str, Any]]:
        """Only the `POST /v1/chat/completions` entries of `requests()`."""
        return [r for r in self.requests() if r["path"] == "/v1/chat/completions"]

    def reset(self) -> None:
        """Forget the recorded requests."""
        req = urllib.request.Request(f"{self.root_url}/_reset", data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=5):
            pass

    def wait_for(self, predicate: Any, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Poll `requests()` until `predicate(requests)` is true; fail the test after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self.requests()
            if predicate(seen):
                return seen
            if time.monotonic() > deadline:
                pytest.fail(f"echo backend: condition not met within {timeout}s; requests: {seen}")
            time.sleep(0.02)

    async def await_for(self, predicate: Any, timeout: float = 5.0) -> list[dict[str, Any]]:
        """`wait_for` for async tests: polls without blocking the event loop (which may still have
        to run the client's connection close the test is waiting to see)."""
        deadline = time.monotonic() + timeout
        while True:
            seen = await asyncio.to_thread(self.requests)
            if predicate(seen):
                return seen
            if time.monotonic() > deadline:
                pytest.fail(f"echo backend: condition not met within {timeout}s; requests: {seen}")
            await asyncio.sleep(0.02)


def start_echo_backend(models: Sequence[str] = (), timeout: float = 15.0) -> EchoBackend:
    """Start the echo backend on a free 127.0.0.1 port and wait for its ready line."""
    cmd = [sys.executable, "-m", "tests.support.echo_backend", "--host", "127.0.0.1", "--port", "0"]
    for model in models:
        cmd += ["--model", model]
    proc = subprocess.Popen(cmd, cwd=_ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        ready = sel.select(timeout)
    line = proc.stdout.readline() if ready else ""
    if not line.startswith(_READY):
        stop_echo_backend(proc)
        raise RuntimeError(f"echo backend did not start (exit code {proc.returncode}, output {line!r})")
    host, _, port = line[len(_READY) :].strip().rpartition(":")
    return EchoBackend(host=host, port=int(port), process=proc)


def stop_echo_backend(proc: subprocess.Popen[str]) -> None:
    """Stop the process we started, by its PID: SIGTERM, then SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


@pytest.fixture(scope="session")
def echo_backend() -> Iterator[EchoBackend]:
    """One echo backend process for the whole session."""
    backend = start_echo_backend()
    try:
        yield backend
    finally:
        stop_echo_backend(backend.process)


@pytest.fixture
def echo(echo_backend: EchoBackend) -> EchoBackend:
    """The session's echo backend with an empty request log."""
    echo_backend.reset()
    return echo_backend
