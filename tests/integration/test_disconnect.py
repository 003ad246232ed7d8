"""A client that leaves mid-stream: the backend request is stopped and what was generated is stored
as `cancelled` (documented in docs/API.md)."""

from __future__ import annotations

import json
import time

import httpx

from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway


def test_disconnect_stops_backend_and_stores_cancelled(gateway: Gateway, echo: EchoBackend) -> None:
    words = " ".join(f"w{i}" for i in range(60))
    body = {"model": "qwen3", "input": f"{words} [slow:50]", "stream": True}
    response_id = None
    deltas = 0
    with (
        httpx.Client(timeout=10) as client,
        client.stream("POST", f"{gateway.base_url}/responses", json=body) as r,
    ):
        for line in r.iter_lines():
            if not line.startswith("data: "):
                continue
            ev = json.loads(line[6:])
            if ev["type"] == "response.created":
                response_id = ev["response"]["id"]
            if ev["type"] == "response.output_text.delta":
                deltas += 1
                if deltas == 3:
                    break  # leave: closing the stream closes the connection
    assert response_id is not None
    reqs = echo.wait_for(
        lambda rs: any(x.get("disconnected") for x in rs if x["path"] == "/v1/chat/completions")
    )
    assert [x for x in reqs if x["path"] == "/v1/chat/completions"][-1]["disconnected"] is True
    deadline = time.monotonic() + 5
    while True:
        got = httpx.get(f"{gateway.base_url}/responses/{response_id}", timeout=5)
        if got.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert got.status_code == 200
    stored = got.json()
    assert stored["status"] == "cancelled"
    text = stored["output"][0]["content"][0]["text"]
    assert text.startswith("echo: w0") and len(text) < len(words)
