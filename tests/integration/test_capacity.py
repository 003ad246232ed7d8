"""Slow or abusive clients cannot exhaust the process (issue 8, probe items 4 and 6): request bodies are
bounded in size and time, open streams are capped, a stream nobody reads is dropped and still stored,
a create without streaming has a deadline and stops its backend call when its client leaves.

The gateway runs in-process under uvicorn with the configuration the CLI uses (`server.uvicorn_config`:
our protocol, our timeouts), over the real echo backend; stores are read back over HTTP (and, to find
the id of a response whose client never saw it, from the SQLite file).
"""

from __future__ import annotations

import json
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from responses_gateway.app import create_app
from responses_gateway.config import Settings, settings_from_dict
from responses_gateway.server import uvicorn_config
from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import serving

KEY_ERROR_FIELDS = {"message", "type", "param", "code"}


def _settings(backend_url: str, tmp_path: Path | None = None, **blocks: Any) -> Settings:
    store: dict[str, Any] = {"store_backend": "memory"}
    if tmp_path is not None:
        store = {"store_backend": "sqlite", "sqlite": {"path": str(tmp_path / "responses.db")}}
    return settings_from_dict(
        {
            "backends": [{"name": "echo", "base_url": backend_url, "models": ["*"], "timeout_seconds": 30}],
            "response_api": store,
            "log_level": "warning",
            **blocks,
        }
    )


@contextmanager
def _serve(settings: Settings) -> Iterator[str]:
    """The gateway on 127.0.0.1:<free port>, configured as `responses-gateway serve` configures it;
    yields its root URL."""
    config = uvicorn_config(create_app(settings), settings, loop="asyncio")
    config.port = 0
    with serving(config) as (_, root):
        yield root


JSON_TYPE = {"content-type": "application/json"}


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == KEY_ERROR_FIELDS
    return error


def _connect(root: str) -> socket.socket:
    host, port = root.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _stored_ids(db: Path) -> list[str]:
    """Response ids in the SQLite store (a response whose client never saw its id)."""
    if not db.exists():
        return []
    with closing(sqlite3.connect(db)) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM responses")]


def _wait_stored(root: str, db: Path, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not (ids := _stored_ids(db)):
        assert time.monotonic() < deadline, "no response was stored"
        time.sleep(0.05)
    assert len(ids) == 1
    got = httpx.get(f"{root}/v1/responses/{ids[0]}", timeout=5)
    assert got.status_code == 200, got.text
    stored: dict[str, Any] = got.json()
    return stored


def _chat_disconnected(echo: EchoBackend, timeout: float) -> float:
    """Seconds until the backend saw its (only) chat request's connection closed."""
    start = time.monotonic()
    echo.wait_for(
        lambda rs: any(r.get("disconnected") for r in rs if r["path"] == "/v1/chat/completions"), timeout
    )
    return time.monotonic() - start


# -- request bodies ---------------------------------------------------------------------------------


@pytest.fixture
def small_body_gateway(echo: EchoBackend) -> Iterator[str]:
    settings = _settings(echo.base_url, limits={"max_body_bytes": 4096}, server={"body_timeout_seconds": 0.5})
    with _serve(settings) as root:
        yield root


def test_a_body_over_the_limit_is_a_413_and_the_connection_serves_on(small_body_gateway: str) -> None:
    root = small_body_gateway
    big = {"model": "m", "input": "x" * 10_000}
    with httpx.Client(base_url=root, timeout=10) as client:
        error = _error(client.post("/v1/responses", json=big), 413)  # told by Content-Length
        assert "limits.max_body_bytes: 4096" in error["message"]
        assert error["code"] == "request_too_large"
        ok = client.post("/v1/responses", json={"model": "m", "input": "hi"})  # same connection
        assert ok.status_code == 200 and ok.json()["output"][0]["content"][0]["text"] == "echo: hi"

        def chunked() -> Iterator[bytes]:  # no Content-Length: counted while read
            yield b'{"model": "m", "input": "'
            for _ in range(10):
                yield b"y" * 1000
            yield b'"}'

        error = _error(client.post("/v1/responses", content=chunked(), headers=JSON_TYPE), 413)
        assert "limits.max_body_bytes" in error["message"]
        # the Starlette routes read bodies the same way
        error = _error(
            client.post("/v1/chat/completions", json={"model": "m", "messages": [], "x": "z" * 9000}), 413
        )
        assert error["code"] == "request_too_large"
    client = openai.OpenAI(base_url=f"{root}/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.APIStatusError) as caught:
        client.responses.create(model="m", input="x" * 10_000)
    assert caught.value.status_code == 413


def test_a_body_sent_too_slowly_is_a_408_and_the_connection_closes(small_body_gateway: str) -> None:
    with _connect(small_body_gateway) as sock:
        sock.sendall(
            b"POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"model": '
        )
        start = time.monotonic()
        reply = _read_all(sock)  # the gateway answers, then closes: recv ends
        elapsed = time.monotonic() - start
    assert reply.startswith(b"HTTP/1.1 408 ")
    assert b"server.body_timeout_seconds" in reply
    assert 0.4 < elapsed < 3


# -- streams ----------------------------------------------------------------------------------------


def test_streams_beyond_max_streams_get_503_before_the_backend_is_called(echo: EchoBackend) -> None:
    with _serve(_settings(echo.base_url, server={"max_streams": 1})) as root:
        slow = {"model": "m", "input": "a b c d e f [slow:150]", "stream": True}
        with (
            httpx.Client(base_url=root, timeout=10) as client,
            client.stream("POST", "/v1/responses", json=slow) as first,
        ):
            assert first.status_code == 200
            lines = first.iter_lines()
            assert next(lines).startswith("event: response.created")
            second = client.post("/v1/responses", json={**slow, "input": "second"})
            error = _error(second, 503)
            assert "server.max_streams: 1" in error["message"]
            assert error["code"] == "server_busy"
            assert second.headers["retry-after"] == "1"
            assert len(echo.chat_requests()) == 1  # refused before any backend call
            plain = client.post("/v1/responses", json={"model": "m", "input": "not a stream"})
            assert plain.status_code == 200  # the cap is on streams only
            for _ in lines:  # the first stream runs to its end
                pass
        # its slot is free again
        with httpx.Client(base_url=root, timeout=10) as client:
            again = client.post("/v1/responses", json={**slow, "input": "again"})
            assert again.status_code == 200 and "response.completed" in again.text


def test_a_stream_nobody_reads_is_dropped_and_stored(echo: EchoBackend, tmp_path: Path) -> None:
    settings = _settings(echo.base_url, tmp_path, server={"stream_send_timeout_seconds": 1})
    # 1,000 deltas of 12 kB, 10 ms apart: a 12 MB reply over 10 s or more, more than the socket
    # buffers between the gateway and a client that does not read (a few MB on loopback)
    word = "w" * 12_000
    body = json.dumps({"model": "m", "input": f"{word} [repeat:1000] [slow:10]", "stream": True}).encode()
    with _serve(settings) as root:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window: the gateway blocks soon
        try:
            sock.connect(("127.0.0.1", int(root.rsplit(":", 1)[1])))
            sock.sendall(
                b"POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )
            head = sock.recv(2048)  # the start of the stream, then this client reads no more
            assert head.startswith(b"HTTP/1.1 200 ")
            started = time.monotonic()
            assert _chat_disconnected(echo, timeout=10) < 9  # the backend call is stopped before its end
            stored = _wait_stored(root, tmp_path / "responses.db")
            print(f"dropped and stored after {time.monotonic() - started:.1f} s")
            assert stored["status"] == "cancelled"
            text = stored["output"][0]["content"][0]["text"]
            assert text.startswith("echo: " + word) and len(text) < 1000 * 12_001
            # the connection was dropped: reading what is left ends (reset, or EOF), never times out
            sock.settimeout(5)
            try:
                while sock.recv(65536):
                    pass
            except ConnectionResetError:
                pass
        finally:
            sock.close()
        assert httpx.get(f"{root}/health", timeout=5).status_code == 200


# -- creates without streaming ----------------------------------------------------------------------


def test_a_client_that_leaves_stops_the_backend_and_the_response_is_cancelled(
    echo: EchoBackend, tmp_path: Path
) -> None:
    settings = _settings(echo.base_url, tmp_path)
    body = json.dumps({"model": "m", "input": "w0 w1 w2 w3 [stall-mid-stream]"}).encode()
    with _serve(settings) as root:
        with _connect(root) as sock:
            sock.sendall(
                b"POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )
            echo.wait_for(lambda rs: len([r for r in rs if r["path"] == "/v1/chat/completions"]) == 1)
            time.sleep(0.3)  # the backend has sent two words and stalls
        assert _chat_disconnected(echo, timeout=5) < 1.5
        stored = _wait_stored(root, tmp_path / "responses.db")
        assert stored["status"] == "cancelled"
        assert stored["output"][0]["content"][0]["text"].startswith("echo: w0")


def test_a_create_past_its_deadline_is_a_504_and_stored_as_failed(echo: EchoBackend, tmp_path: Path) -> None:
    settings = _settings(echo.base_url, tmp_path, server={"request_timeout_seconds": 1})
    with _serve(settings) as root:
        start = time.monotonic()
        reply = httpx.post(
            f"{root}/v1/responses", json={"model": "m", "input": "a b c d e f g h i j [slow:300]"}, timeout=10
        )
        assert time.monotonic() - start < 3
        error = _error(reply, 504)
        assert "server.request_timeout_seconds (1 s)" in error["message"]
        assert error["code"] == "request_timeout"
        assert _chat_disconnected(echo, timeout=5) < 1.5
        stored = _wait_stored(root, tmp_path / "responses.db")
        assert stored["status"] == "failed"
        assert "server.request_timeout_seconds" in stored["error"]["message"]
        # a quick one is not affected
        ok = httpx.post(f"{root}/v1/responses", json={"model": "m", "input": "quick"}, timeout=10)
        assert ok.status_code == 200 and ok.json()["status"] == "completed"
