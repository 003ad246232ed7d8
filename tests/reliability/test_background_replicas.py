"""Background responses across gateway processes on one Redis (standalone and Cluster) or on one
SQLite file (as `serve --workers N` runs them): cancel from another replica, a replica SIGKILLed
mid-response (failed after its lease), SIGTERM (settled), a stream resumed on another replica."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
from openai import OpenAI
from openai.types.responses import Response

from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway_process import GatewayProcess, write_config
from tests.support.sse import sequence_numbers, sse_events

LEASE = 1.0
SLOW = "[slow:50] [repeat:400] tick"  # about 20 s of streamed chunks

KINDS = [
    pytest.param("sqlite"),
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("redis_cluster", marks=pytest.mark.redis_cluster),
]


def _api(kind: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    if kind == "sqlite":  # two processes on one file: exactly what workers share
        path = str(request.getfixturevalue("tmp_path") / "responses.db")
        return {"store_backend": "sqlite", "sqlite": {"path": path}, "background": {"lease_seconds": LEASE}}
    block: dict[str, Any] = {"store_backend": "redis", "background": {"lease_seconds": LEASE}}
    if kind == "redis":
        url: str = request.getfixturevalue("redis_clean")
        return {**block, "redis": {"address": url.split("//", 1)[1].split("/", 1)[0]}}
    nodes: list[str] = request.getfixturevalue("redis_cluster_clean")
    return {**block, "redis": {"cluster_mode": True, "cluster_addresses": nodes}}


def _client(gw: GatewayProcess) -> OpenAI:
    return OpenAI(base_url=gw.base_url, api_key="sk-test", max_retries=0, timeout=15)


def _until(client: OpenAI, response_id: str, done: Any, timeout: float = 15.0) -> Response:
    deadline = time.monotonic() + timeout
    while True:
        r = client.responses.retrieve(response_id)
        if done(r) or time.monotonic() > deadline:
            return r
        time.sleep(0.05)


def _running(client: OpenAI, response_id: str) -> Response:
    r = _until(client, response_id, lambda r: r.status == "in_progress")
    assert r.status == "in_progress"
    return r


@pytest.mark.parametrize("kind", KINDS)
def test_cancel_from_another_replica(
    kind: str, request: pytest.FixtureRequest, echo: EchoBackend, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path / "gw.yaml", echo.base_url, _api(kind, request))
    with GatewayProcess(cfg, tmp_path / "a.log") as a, GatewayProcess(cfg, tmp_path / "b.log") as b:
        ca, cb = _client(a), _client(b)
        r = ca.responses.create(model="qwen3", input=SLOW, background=True)
        assert r.status == "queued"
        _running(cb, r.id)  # B sees A's progress
        time.sleep(0.3)
        started = time.monotonic()
        cancelled = cb.responses.cancel(r.id)
        took = time.monotonic() - started
        assert cancelled.status == "cancelled", cancelled
        assert took < 2.0, took  # A saw the flag at its next heartbeat (0.25 s) and stopped
        assert ca.responses.retrieve(r.id).status == "cancelled"
        assert cb.responses.cancel(r.id).status == "cancelled"  # idempotent
        # the backend request was closed: no more chunks were read
        text = ca.responses.retrieve(r.id).output_text
        time.sleep(0.6)
        assert ca.responses.retrieve(r.id).output_text == text
        assert len(text) < len(" tick" * 400)


@pytest.mark.parametrize("kind", KINDS)
def test_replica_killed_mid_response_is_failed_after_its_lease(
    kind: str, request: pytest.FixtureRequest, echo: EchoBackend, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path / "gw.yaml", echo.base_url, _api(kind, request))
    with GatewayProcess(cfg, tmp_path / "a.log") as a, GatewayProcess(cfg, tmp_path / "b.log") as b:
        ca, cb = _client(a), _client(b)
        r = ca.responses.create(model="qwen3", input=SLOW, background=True)
        _running(cb, r.id)
        a.proc.send_signal(signal.SIGKILL)  # the process this test started, by its PID
        a.proc.wait(timeout=10)
        killed_at = time.monotonic()
        assert cb.responses.retrieve(r.id).status == "in_progress"  # the lease is still running
        failed = _until(cb, r.id, lambda r: r.status != "in_progress", timeout=LEASE + 5)
        assert failed.status == "failed"
        assert LEASE * 0.5 <= time.monotonic() - killed_at <= LEASE + 3
        assert failed.error is not None and failed.error.code == "server_error"
        assert "response_api.background.lease_seconds" in failed.error.message
        assert cb.responses.retrieve(r.id).status == "failed"  # settled once, for every reader
        with pytest.raises(openai.BadRequestError, match="already failed"):
            cb.responses.cancel(r.id)


@pytest.mark.parametrize("kind", KINDS)
def test_sigterm_settles_running_work(
    kind: str, request: pytest.FixtureRequest, echo: EchoBackend, tmp_path: Path
) -> None:
    cfg = write_config(
        tmp_path / "gw.yaml", echo.base_url, _api(kind, request), server={"shutdown_grace_seconds": 1}
    )
    with GatewayProcess(cfg, tmp_path / "a.log") as a, GatewayProcess(cfg, tmp_path / "b.log") as b:
        ca, cb = _client(a), _client(b)
        stuck = ca.responses.create(model="qwen3", input="[hang] x", background=True)
        quick = ca.responses.create(model="qwen3", input="[slow:300] quick", background=True)
        time.sleep(0.2)
        assert a.stop() == 0
        assert cb.responses.retrieve(stuck.id).status == "cancelled"  # not left in_progress
        done = cb.responses.retrieve(quick.id)  # finished within the grace
        assert done.status == "completed" and done.output_text == "echo: quick"


@pytest.mark.parametrize("kind", KINDS)
def test_resume_a_stream_on_another_replica(
    kind: str, request: pytest.FixtureRequest, echo: EchoBackend, tmp_path: Path
) -> None:
    """The client of A's stream drops; B replays what it missed and follows the live events (A
    still runs it) to the end: together the uninterrupted stream, byte for byte."""
    cfg = write_config(tmp_path / "gw.yaml", echo.base_url, _api(kind, request))
    with GatewayProcess(cfg, tmp_path / "a.log") as a, GatewayProcess(cfg, tmp_path / "b.log") as b:
        body = {"model": "qwen3", "input": "[slow:20] [repeat:150] far", "background": True, "stream": True}
        head: list[tuple[str, bytes]] = []
        with httpx.stream("POST", f"{a.base_url}/responses", json=body, timeout=15) as resp:
            for event in sse_events(resp):
                head.append(event)
                if len(head) == 6:
                    break
        response_id = orjson.loads(head[0][1])["response"]["id"]
        assert httpx.get(f"{b.base_url}/responses/{response_id}").json()["status"] == "in_progress"
        params = {"stream": "true", "starting_after": str(sequence_numbers(head)[-1])}
        with httpx.stream("GET", f"{b.base_url}/responses/{response_id}", params=params, timeout=30) as resp:
            assert resp.status_code == 200
            tail = list(sse_events(resp))
        assert tail[-1][0] == "response.completed"
        with httpx.stream("GET", f"{b.base_url}/responses/{response_id}?stream=true", timeout=30) as resp:
            whole = list(sse_events(resp))
        assert head + tail == whole
        assert sequence_numbers(whole) == list(range(len(whole)))
        final = orjson.loads(whole[-1][1])["response"]
        assert final == httpx.get(f"{a.base_url}/responses/{response_id}").json()
