"""Events -> Server-Sent Events bytes (`event: <type>` + `data: <json>`; no `[DONE]`)."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator

import msgspec

from responses_gateway.protocol.events import ErrorEvent, Event, event_type

log = logging.getLogger("responses_gateway.api")
_encode = msgspec.json.Encoder().encode


def encode_event(event: Event) -> bytes:
    return b"event: " + event_type(event).encode() + b"\ndata: " + _encode(event) + b"\n\n"


def encode_batch(events: list[Event]) -> bytes:
    """Events made together, as one piece of the stream (one write instead of one per event)."""
    if len(events) == 1:
        return encode_event(events[0])
    return b"".join(map(encode_event, events))


async def sse_stream(
    first: list[Event], rest: AsyncGenerator[list[Event], None]
) -> AsyncGenerator[bytes, None]:
    """Encode the batch `first`, then every later batch; closing this closes `rest` (and so the
    backend call).

    A bug after the stream began cannot be a 500 any more: it is logged with its traceback and
    the stream ends with an `error` event saying so.
    """
    seq = first[-1].sequence_number
    try:
        yield encode_batch(first)
        async for batch in rest:
            seq = batch[-1].sequence_number
            yield encode_batch(batch)
    except Exception:
        log.exception("unexpected error while streaming a response")
        message = "The gateway had an internal error; it has been logged."
        yield encode_event(ErrorEvent(sequence_number=seq + 1, code="server_error", message=message))
    finally:
        await rest.aclose()
