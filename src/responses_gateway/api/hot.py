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

Added here (slow or abusive clients, docs/SECURITY.md):
- the body is read by `api/body.py` (size and time bounded: 413, 408);
- a create without streaming is watched for `http.disconnect` too: a client that leaves stops the
  backend call, and the response is stored as `cancelled`;
- a stream whose client stops reading is dropped: a write that waits longer than
  `server.stream_send_timeout_seconds` for the socket (uvicorn blocks `send` while the transport's
  buffer is full, so at most that buffer and one batch of events are held) ends the stream; the
  service stores the response as it does on a disconnect, and the connection is aborted (through
  the server's `responses_gateway.abort` scope extension when it has one, `server.py`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import Any, TypeVar

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from responses_gateway.api.body import read_body
from responses_gateway.api.capacity import ABORT_EXTENSION, LOST_EXTENSION
from responses_gateway.api.edge import request_context
from responses_gateway.api.error_handlers import EXCEPTION_HANDLERS
from responses_gateway.api.routes import (
    SSE_HEADERS,
    AppState,
    EventStream,
    create,
    retrieve,
    service_of,
)
from responses_gateway.api.sse import sse_stream

log = logging.getLogger("responses_gateway.api")
T = TypeVar("T")
CLIENT_CLOSED = 499  # the status counted for a request whose client left before its answer

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
Sent = Callable[[], Awaitable[None]]


def hot_route(scope: Scope) -> tuple[str, Handler] | None:
    """The metrics label and handler of a request on a hot route, else None (Starlette serves it).
    Matches exactly what Starlette's routes match (`{response_id}` is `[^/]+`)."""
    path: str = scope["path"]
    method: str = scope["method"]
    if path == CREATE_ROUTE:
        return (CREATE_ROUTE, _create) if method == "POST" else None
    if method == "GET" and path.startswith(_PREFIX) and path.find("/", 14) < 0 and len(path) > 14:
        if b"stream=" in scope["query_string"]:
            return None  # a replay of events (`routes.replay_response`): Starlette streams it
        return RETRIEVE_ROUTE, _retrieve
    return None


async def _create(state: AppState, scope: Scope, receive: Receive) -> bytes | EventStream:
    service = service_of(state)
    capacity = state.capacity
    body = await read_body(
        receive, scope["headers"], max_bytes=capacity.max_body_bytes, timeout=capacity.body_timeout
    )
    return await _until_disconnect(create(service, body, request_context(scope), state), scope, receive)


async def _retrieve(state: AppState, scope: Scope, receive: Receive) -> bytes:
    return await retrieve(state, scope["path"][14:], request_context(scope))


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
        except ClientDisconnect:
            status = CLIENT_CLOSED  # nobody to answer
            return
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
            await _stream(result, scope, receive, send, state.capacity.stream_send_timeout)
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

    def fire(self) -> None:
        """The client is gone: cancel the task, if it is still inside the watched part."""
        if self.active:
            self.fired = True
            self.task.cancel()

    async def run(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.fire()
                return


async def _until_disconnect(work: Awaitable[T], scope: Scope, receive: Receive) -> T:
    """`work`, cancelled if the client disconnects meanwhile (then ClientDisconnect is raised). Our
    server protocol says when the connection is lost (`LOST_EXTENSION`: no task per request); under
    another server a task watches `receive()` for `http.disconnect`."""
    task = asyncio.current_task()
    assert task is not None
    watch = _Watch(task)
    lost = scope.get("extensions", {}).get(LOST_EXTENSION)
    watcher = None
    if lost is not None:
        lost["on_lost"](watch.fire)
    else:
        watcher = asyncio.get_running_loop().create_task(watch.run(receive))
    try:
        return await work
    except asyncio.CancelledError:
        if not watch.fired or task.uncancel() > 0:
            raise
        raise ClientDisconnect() from None
    finally:
        watch.active = False
        if lost is not None:
            lost["on_lost"](None)
        if watcher is not None:
            watcher.cancel()


def _abort(scope: Scope) -> None:
    """Drop the connection now, unsent bytes and all, if the server offers a way (`server.py`);
    otherwise the server closes it when the request ends."""
    extension = scope.get("extensions", {}).get(ABORT_EXTENSION)
    if extension is not None:
        extension["abort"]()


class _SendWatch:
    """Notices a stream whose client stopped reading, at no cost per send: `since` is set while a send
    waits (uvicorn blocks `send` while the socket's buffer is full); one timer every `seconds` checks
    whether a send has been waiting that long, and then cancels the task (`stalled`)."""

    __slots__ = ("_handle", "_loop", "_task", "seconds", "since", "stalled")

    def __init__(self, task: asyncio.Task[Any], seconds: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = task
        self.seconds = seconds
        self.since: float | None = None
        self.stalled = False
        self._handle = self._loop.call_later(seconds, self._check)

    def _check(self) -> None:
        since, now = self.since, self._loop.time()
        if since is not None and now - since >= self.seconds:
            self.stalled = True
            self._task.cancel()
            return
        self._handle = self._loop.call_later(
            self.seconds - (0 if since is None else now - since), self._check
        )

    async def send(self, send: Send, message: Message) -> None:
        self.since = self._loop.time()
        await send(message)
        self.since = None

    def stop(self) -> None:
        self._handle.cancel()


async def _stream(
    result: EventStream, scope: Scope, receive: Receive, send: Send, send_timeout: float
) -> None:
    """Send the events as SSE. A disconnect cancels this task while it waits (for the backend or the
    socket); the cancellation reaches the service's generators, which store the response as
    `cancelled`, and ends here: the request itself ends normally, as with Starlette. A send that waits
    `send_timeout` seconds (the client stopped reading) ends it the same way, then drops the connection.

    The watches can only cancel while this task is suspended inside the `try` (they run only then, and
    are switched off before anything else is awaited), so their cancellation is always caught below."""
    task = asyncio.current_task()
    assert task is not None
    watch = _Watch(task)
    watcher = asyncio.get_running_loop().create_task(watch.run(receive))
    sends = _SendWatch(task, send_timeout)
    try:
        async with aclosing(sse_stream(result.first, result.rest)) as chunks:
            await sends.send(send, _SSE_START)
            async for chunk in chunks:
                await sends.send(send, {"type": "http.response.body", "body": chunk, "more_body": True})
        await sends.send(send, _SSE_END)
    except asyncio.CancelledError:
        if not (watch.fired or sends.stalled) or task.uncancel() > 0:
            raise
    finally:
        watch.active = False
        watcher.cancel()
        sends.stop()
        await result.rest.aclose()  # already closed with `chunks`, unless it never started
    if sends.stalled and not watch.fired:
        log.warning(
            "a stream's client stopped reading for server.stream_send_timeout_seconds (%g s): stream dropped",
            send_timeout,
        )
        _abort(scope)
