"""The hot routes as plain ASGI: `POST /v1/responses` and `GET /v1/responses/{id}`.

The same handlers as `routes.py` (`create`, `service.get`), the same error handlers, the same
headers and bytes on the wire, the same metrics; without Starlette's per-request objects (routing,
`Request`, `Response`, two exception-handling wrappers, the metrics middleware's closure) and
without an anyio task group per stream. Every other route (and any request with a `root_path`)
goes through Starlette as before (`GatewayApp.__call__`).

Behaviour kept from Starlette, on purpose:
- an expected error (`GatewayError`, `RequestInvalid`) is answered by its handler in
  `error_handlers.py`; anything else gets the 500 handler, then is re-raised so the server logs it
  too (what `ServerErrorMiddleware` does);
- a stream stops when the client disconnects (the `http.disconnect` message is watched while the
  stream runs, as `StreamingResponse` does under ASGI spec 2.3): the service sees the cancellation
  and stores what was generated as `cancelled`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from responses_gateway.api.edge import request_context
from responses_gateway.api.error_handlers import EXCEPTION_HANDLERS
from responses_gateway.api.routes import (
    SSE_HEADERS,
    AppState,
    EventStream,
    check_retrieve_query,
    create,
    service_of,
)
from responses_gateway.api.sse import sse_stream

CREATE_ROUTE = "/v1/responses"
RETRIEVE_ROUTE = "/v1/responses/{id}"
_PREFIX = "/v1/responses/"
_JSON_TYPE = (b"content-type", b"application/json")
_SSE_START: Message = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in SSE_HEADERS.items()),
        (b"content-type", b"text/event-stream; charset=utf-8"),
    ],
}
_SSE_END: Message = {"type": "http.response.body", "body": b"", "more_body": False}

Handler = Callable[[AppState, Scope, Receive], Awaitable["bytes | EventStream"]]


def hot_route(scope: Scope) -> tuple[str, Handler] | None:
    """The metrics label and handler of a request on a hot route, else None (Starlette serves it).
    Matches exactly what Starlette's routes match (`{response_id}` is `[^/]+`)."""
    path: str = scope["path"]
    method: str = scope["method"]
    if path == CREATE_ROUTE:
        return (CREATE_ROUTE, _create) if method == "POST" else None
    if method == "GET" and path.startswith(_PREFIX) and path.find("/", 14) < 0 and len(path) > 14:
        return RETRIEVE_ROUTE, _retrieve
    return None


async def _body(receive: Receive) -> bytes:
    """The whole request body (what `Request.body()` reads)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            body: bytes = message.get("body", b"")
            if not message.get("more_body", False):
                if not chunks:
                    return body
                chunks.append(body)
                return b"".join(chunks)
            chunks.append(body)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()


async def _create(state: AppState, scope: Scope, receive: Receive) -> bytes | EventStream:
    service = service_of(state)
    return await create(service, await _body(receive), request_context(scope), state.limiter)


async def _retrieve(state: AppState, scope: Scope, receive: Receive) -> bytes:
    query: bytes = scope["query_string"]
    if query:
        check_retrieve_query(QueryParams(query).get("stream"))
    return await service_of(state).get(scope["path"][14:], request_context(scope))


def _handler_for(exc: Exception) -> tuple[Callable[[Request, Exception], Awaitable[Response]], bool]:
    """The error handler Starlette would pick (nearest class in the MRO); True when it is the 500 one."""
    for cls in type(exc).__mro__:
        handler = EXCEPTION_HANDLERS.get(cls)
        if handler is not None:
            return handler, cls is Exception
    raise AssertionError("EXCEPTION_HANDLERS has a handler for Exception")  # pragma: no cover


async def serve_hot(
    state: AppState, handler: Handler, route: str, scope: Scope, receive: Receive, send: Send
) -> None:
    """Run one hot request: count and time it like `MetricsMiddleware`."""
    start = time.perf_counter()
    status = 500
    try:
        try:
            result = await handler(state, scope, receive)
        except Exception as exc:
            error_handler, unexpected = _handler_for(exc)
            response = await error_handler(Request(scope, receive), exc)
            await response(scope, receive, send)
            if unexpected:
                raise  # as ServerErrorMiddleware does: the server logs it too; counted as a 500
            status = response.status_code
            return
        if isinstance(result, bytes):
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", str(len(result)).encode()), _JSON_TYPE],
                }
            )
            await send({"type": "http.response.body", "body": result})
        else:
            await _stream(result, receive, send)
        status = 200
    finally:
        state.metrics.observe_request(route, scope["method"], status, time.perf_counter() - start)


class _Watch:
    """Cancels the streaming task when the client disconnects, while the stream is running."""

    __slots__ = ("active", "fired", "task")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.active = True
        self.fired = False

    async def run(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                if self.active:
                    self.fired = True
                    self.task.cancel()
                return


async def _stream(result: EventStream, receive: Receive, send: Send) -> None:
    """Send the events as SSE. A disconnect cancels this task while it waits (for the backend or the
    socket); the cancellation reaches the service's generators, which store the response as
    `cancelled`, and ends here: the request itself ends normally, as with Starlette.

    The watch can only cancel while this task is suspended inside the `try` (it runs only then, and
    is switched off before anything else is awaited), so its cancellation is always caught below."""
    task = asyncio.current_task()
    assert task is not None
    watch = _Watch(task)
    watcher = asyncio.get_running_loop().create_task(watch.run(receive))
    try:
        await send(_SSE_START)
        async with aclosing(sse_stream(result.first, result.rest)) as chunks:
            async for chunk in chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send(_SSE_END)
    except asyncio.CancelledError:
        if not watch.fired or task.uncancel() > 0:
            raise
    finally:
        watch.active = False
        watcher.cancel()
