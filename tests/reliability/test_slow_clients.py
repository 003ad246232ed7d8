"""Slow or abusive clients against the gateway as a process (`responses-gateway serve`, uvloop and
httptools, as a user runs it): idle and half-sent connections are closed after the header timeout,
connections beyond `server.max_connections` are refused at once, and SIGTERM ends the process
within `server.shutdown_grace_seconds` whatever is in flight (issue 8, probe items 5 and 6).
"""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from responses_gateway.config import SQLiteSettings
from responses_gateway.stores.sqlite import SQLiteStore
from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway_process import GatewayProcess, write_config

pytestmark = pytest.mark.e2e

HEADER_TIMEOUT = 1.0


@contextmanager
def _gateway(
    tmp_path: Path, echo: EchoBackend, server: dict[str, Any], **api: Any
) -> Iterator[GatewayProcess]:
    config = write_config(
        tmp_path / "gw.yaml", echo.base_url, {"store_backend": "memory", **api}, server=server
    )
    with GatewayProcess(config, tmp_path / "gw.log") as gw:
        yield gw


def _open(gw: GatewayProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    return sock


def _closed_within(sock: socket.socket, seconds: float) -> bytes | None:
    """What the server sent before closing `sock`, if it closed it within `seconds`; None if not."""
    sock.settimeout(seconds)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return received


def test_idle_sockets_are_capped_and_closed_and_a_client_is_served_after(
    tmp_path: Path, echo: EchoBackend
) -> None:
    server = {"max_connections": 20, "header_timeout_seconds": HEADER_TIMEOUT, "keep_alive_seconds": 30}
    with _gateway(tmp_path, echo, server) as gw, ExitStack() as stack:
        idle = [stack.enter_context(_open(gw)) for _ in range(20)]  # nothing sent on them
        time.sleep(0.2)
        opened = time.monotonic()
        # beyond the cap: refused at once (a 503 in the OpenAI envelope, then closed)
        extra = [stack.enter_context(_open(gw)) for _ in range(10)]
        for sock in extra:
            reply = _closed_within(sock, 0.5)
            assert reply is not None, "a connection beyond max_connections stayed open"
            assert reply == b"" or reply.startswith(b"HTTP/1.1 503 ")
            assert reply == b"" or b"server.max_connections: 20" in reply
        # the idle ones: closed once the header timeout has passed, not before
        assert _closed_within(idle[0], HEADER_TIMEOUT * 0.5) is None
        for sock in idle:
            assert _closed_within(sock, HEADER_TIMEOUT + 2) == b""
        assert time.monotonic() - opened < HEADER_TIMEOUT + 3
        # and a normal client is served afterwards
        reply = httpx.post(f"{gw.base_url}/responses", json={"model": "m", "input": "hello"}, timeout=10)
        assert reply.status_code == 200
        assert reply.json()["output"][0]["content"][0]["text"] == "echo: hello"


def test_half_sent_headers_are_closed_after_the_header_timeout(tmp_path: Path, echo: EchoBackend) -> None:
    server = {"header_timeout_seconds": HEADER_TIMEOUT, "keep_alive_seconds": 30}
    with _gateway(tmp_path, echo, server) as gw:
        # a first request, half sent
        with _open(gw) as sock:
            start = time.monotonic()
            sock.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
            assert _closed_within(sock, HEADER_TIMEOUT + 2) == b""
            assert HEADER_TIMEOUT * 0.8 < time.monotonic() - start < HEADER_TIMEOUT + 2
        # a later request on a kept-alive connection, half sent (the keep-alive timeout is long)
        with _open(gw) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            sock.settimeout(5)
            first = b""
            while not first.endswith(b'{"status":"ok"}'):
                first += sock.recv(65536)
            assert first.startswith(b"HTTP/1.1 200 ")
            start = time.monotonic()
            sock.sendall(b"GET /health HTTP/1.1\r\nHo")
            assert _closed_within(sock, HEADER_TIMEOUT + 2) == b""
            assert time.monotonic() - start < HEADER_TIMEOUT + 2
        # a connection that keeps sending its headers slowly is closed too (the timeout is for all of them)
        with _open(gw) as sock:
            start = time.monotonic()
            sock.sendall(b"GET /health HTTP/1.1\r\n")
            closed = False
            for i in range(int(HEADER_TIMEOUT * 10) + 20):
                try:
                    sock.sendall(b"X-Drip-%d: 1\r\n" % i)
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
                time.sleep(0.1)
            assert closed or _closed_within(sock, 1) is not None
            assert time.monotonic() - start < HEADER_TIMEOUT + 2.5


async def _create_sqlite(path: Path) -> None:
    store = await SQLiteStore.open(SQLiteSettings(path=str(path)), ttl_seconds=3600)
    await store.aclose()


def test_the_rest_of_a_refused_body_must_come_within_the_header_timeout(
    tmp_path: Path, echo: EchoBackend
) -> None:
    server = {"header_timeout_seconds": HEADER_TIMEOUT, "keep_alive_seconds": 30}
    with _gateway(tmp_path, echo, server) as gw, _open(gw) as sock:
        sock.sendall(
            b"POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000000\r\n\r\n" + b"x" * 1000
        )
        start = time.monotonic()
        sock.settimeout(5)
        assert sock.recv(65536).startswith(b"HTTP/1.1 413 ")  # refused before the body is read
        for _ in range(int(HEADER_TIMEOUT * 10) + 20):  # the rest dribbles in, and is cut off
            try:
                sock.sendall(b"x" * 100)
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.1)
        assert _closed_within(sock, 1) is not None
        assert time.monotonic() - start < HEADER_TIMEOUT + 2.5


def _post_in_background(url: str, body: dict[str, Any]) -> tuple[threading.Thread, list[Any]]:
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(httpx.post(url, json=body, timeout=60))
        except httpx.HTTPError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_ends_the_process_within_the_grace_period(
    workers: int, tmp_path: Path, echo: EchoBackend
) -> None:
    grace = 2.0
    api: dict[str, Any] = {}
    if workers > 1:  # several workers need a shared store; made first (workers creating it race)
        api = {"store_backend": "sqlite", "sqlite": {"path": str(tmp_path / "responses.db")}}
        asyncio.run(_create_sqlite(tmp_path / "responses.db"))
    server = {"shutdown_grace_seconds": grace, "workers": workers}
    with _gateway(tmp_path, echo, server, **api) as gw:
        thread, outcome = _post_in_background(
            f"{gw.base_url}/responses", {"model": "m", "input": "wait [hang]"}
        )
        echo.wait_for(lambda rs: any(r["path"] == "/v1/chat/completions" for r in rs), timeout=20)
        start = time.monotonic()
        gw.proc.send_signal(signal.SIGTERM)
        gw.proc.wait(timeout=grace + 15)
        elapsed = time.monotonic() - start
        thread.join(timeout=10)
        assert elapsed < grace + 5, f"took {elapsed:.1f} s to stop"
        assert elapsed > grace * 0.8  # the request in flight had its grace period
        assert outcome and not (isinstance(outcome[0], httpx.Response) and outcome[0].status_code == 200)
        echo.wait_for(
            lambda rs: any(r.get("disconnected") for r in rs if r["path"] == "/v1/chat/completions")
        )
