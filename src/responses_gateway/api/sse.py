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


async def sse_stream(first: Event, rest: AsyncGenerator[Event, None]) -> AsyncGenerator[bytes, None]:
    """Encode `first` then every later event; closing this closes `rest` (and so the backend call).

    A bug after the stream began cannot be a 500 any more: it is logged with its traceback and
    the stream ends with an `error` event saying so.
    """
    seq = first.sequence_number
    try:
        yield encode_event(first)
        async for event in rest:
            seq = event.sequence_number
            yield encode_event(event)
    except Exception:
        log.exception("unexpected error while streaming a response")
        message = "The gateway had an internal error; it has been logged."
        yield encode_event(ErrorEvent(sequence_number=seq + 1, code="server_error", message=message))
    finally:
        await rest.aclose()
