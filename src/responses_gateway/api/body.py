"""The one reader of request bodies (the hot routes and the Starlette routes): bounded in size and time.

- Size: a `Content-Length` over `limits.max_body_bytes` is refused before anything is read; a body
  without one (chunked) is counted while it arrives and refused as soon as it passes the limit, so
  no more than the limit (plus one read of the server, 64 KiB) is ever held. Either way a 413.
  The server (uvicorn) discards the rest of a refused body without keeping it.
- Time: the whole body must arrive within `server.body_timeout_seconds`, else a 408 that closes the
  connection (a client that sends slowly holds nothing for longer than that).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from starlette.requests import ClientDisconnect
from starlette.types import Receive

from responses_gateway.errors import RequestTimeout, RequestTooLarge


def _too_large(max_bytes: int) -> RequestTooLarge:
    return RequestTooLarge(
        f"The request body is larger than this gateway accepts (limits.max_body_bytes: {max_bytes} bytes)."
    )


def _content_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP parser has already refused a malformed one
    return None


async def read_body(
    receive: Receive, headers: Iterable[tuple[bytes, bytes]], *, max_bytes: int, timeout: float
) -> bytes:
    """The whole request body (what `Request.body()` reads), within `max_bytes` and `timeout` seconds.

    Raises RequestTooLarge (413), RequestTimeout (408) or ClientDisconnect."""
    length = _content_length(headers)
    if length is not None and length > max_bytes:
        raise _too_large(max_bytes)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientDisconnect()
                if message["type"] != "http.request":
                    continue
                body: bytes = message.get("body", b"")
                size += len(body)
                if size > max_bytes:
                    raise _too_large(max_bytes)
                if not message.get("more_body", False):
                    if not chunks:
                        return body
                    chunks.append(body)
                    return b"".join(chunks)
                chunks.append(body)
    except TimeoutError:
        raise RequestTimeout(
            f"The request body did not arrive within server.body_timeout_seconds ({timeout:g} s)."
        ) from None
