"""Read a gateway SSE stream as a list of events (raw httpx, so nothing is smoothed over)."""

from __future__ import annotations

import json
from typing import Any

import httpx


def post_events(base_url: str, body: dict[str, Any], timeout: float = 15) -> list[dict[str, Any]]:
    """POST /responses with stream:true; every event's data, checked against its `event:` line."""
    with httpx.stream(
        "POST",
        f"{base_url}/responses",
        json={**body, "stream": True},
        timeout=timeout,
        headers={"Authorization": "Bearer sk-test"},
    ) as resp:
        assert resp.status_code == 200, resp.read()
        text = resp.read().decode()
    events: list[dict[str, Any]] = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
        data = json.loads(lines["data"])
        assert lines["event"] == data["type"]
        events.append(data)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


def types_at(events: list[dict[str, Any]], output_index: int) -> list[str]:
    """The event types that belong to one output item, in order."""
    return [e["type"] for e in events if e.get("output_index") == output_index]
