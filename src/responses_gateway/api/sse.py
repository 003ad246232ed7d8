"""Events -> Server-Sent Events bytes (`event: <type>` + `data: <json>`; no `[DONE]`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson


def encode_event(event: dict[str, Any]) -> bytes:
    etype: str = event["type"]
    return b"event: " + etype.encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


async def sse_stream(first: dict[str, Any], rest: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    """Encode `first` then every later event; closing this closes `rest` (and so the backend call)."""
    try:
        yield encode_event(first)
        async for event in rest:
            yield encode_event(event)
    finally:
        aclose = getattr(rest, "aclose", None)
        if aclose is not None:
            await aclose()
