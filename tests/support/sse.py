"""Reading a stream of server-sent events as raw (type, data) pairs, with httpx."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import orjson


def sse_events(resp: httpx.Response) -> Iterator[tuple[str, bytes]]:
    """(event type, data bytes) of each event of a streaming httpx response, as they arrive."""
    buffer = b""
    for chunk in resp.iter_raw():
        buffer += chunk
        while b"\n\n" in buffer:
            block, buffer = buffer.split(b"\n\n", 1)
            fields = dict(line.split(b": ", 1) for line in block.split(b"\n") if b": " in line)
            yield fields[b"event"].decode(), fields[b"data"]


def sequence_numbers(events: list[tuple[str, bytes]]) -> list[int]:
    return [orjson.loads(data)["sequence_number"] for _, data in events]
