"""A WebSocket-mode client for tests (the `websockets` library's sync client): send `response.create`
messages, read a response's events up to its terminal one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from websockets.sync.client import ClientConnection, connect

TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed", "error"})


def ws_url(base_url: str) -> str:
    """`http://host:port/v1` -> `ws://host:port/v1/responses`."""
    return base_url.replace("http://", "ws://", 1) + "/responses"


@contextmanager
def socket(base_url: str, key: str | None = None, **kwargs: Any) -> Iterator[ClientConnection]:
    """A socket on `/v1/responses` (`key`: sent as the bearer key), closed at the end."""
    headers = {"Authorization": f"Bearer {key}"} if key else None
    with connect(ws_url(base_url), additional_headers=headers, open_timeout=10, **kwargs) as ws:
        yield ws


def create(ws: ClientConnection, **body: Any) -> list[dict[str, Any]]:
    """Send one `response.create` and read its events up to the terminal one (or an error)."""
    ws.send(json.dumps({"type": "response.create", "model": "m", **body}))
    return events(ws)


def events(ws: ClientConnection, timeout: float = 20) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        event = json.loads(ws.recv(timeout=timeout))
        out.append(event)
        if event["type"] in TERMINAL:
            return out


def completed(ws: ClientConnection, **body: Any) -> dict[str, Any]:
    """The response of a create that must complete."""
    got = create(ws, **body)
    assert got[-1]["type"] == "response.completed", got[-1]
    response: dict[str, Any] = got[-1]["response"]
    return response


def error(ws: ClientConnection, **body: Any) -> dict[str, Any]:
    """The error message of a create that must fail before any event."""
    got = create(ws, **body)
    assert [e["type"] for e in got] == ["error"], got
    return got[0]
