"""WebSocket mode on `/v1/responses` (docs/API.md "WebSocket mode").

The upgrade passes the same edge checks as HTTP (`EdgeGate.websocket`: Host, Origin, API key; the
tenant is the socket's for its whole life). Then the client sends `response.create` messages (JSON
text frames: a create body plus `"type": "response.create"`) and receives each response's events, one
text frame per event, exactly as the SSE stream of `stream: true` (same events, `sequence_number`
from 0 for each response). Responses run one after another: a message sent while one runs waits for it.

- A create runs through the same path as an HTTP stream (`service.prepare`, `routes.open_stream`:
  the process's stream slots and the tenant's rate limits, per create). `stream` is implied (and
  ignored when sent); `background: true` is refused; `generate: false` settles a response without
  calling the model (`service.prime`), whose id a later turn continues.
- `previous_response_id` is looked up first among the socket's own `store: false` responses
  (`api/socket_cache.py`, bounded by `websocket.cache_max_*`), then in the store: stored responses
  behave as over HTTP, on every store and replica. A create that fails (an error before its events,
  or `response.failed`) evicts the response it continued from the socket's cache.
- Every failure is an `error` message and the socket stays open: `{"type": "error", "status": <HTTP
  status>, "error": {"type", "code", "message", "param"}}` (plus `sequence_number` for one raised
  after a response's events began). Invalid JSON, an unknown `type`, an invalid create: the same.
- Bounds: `websocket.max_sockets` per process (beyond it the upgrade is answered 503); a client
  message larger than `websocket.max_message_bytes` closes the socket (1009, by the server protocol;
  checked here too); a socket with no message and no response running for
  `websocket.idle_timeout_seconds` is closed (1000); pings every `websocket.ping_interval_seconds`
  (the server protocol's, `server.py`); at most two client messages wait while a response runs
  (then the socket is not read until it ends). A socket whose client stops reading for
  `server.stream_send_timeout_seconds` is dropped, as an SSE stream is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import msgspec
import orjson
from starlette.types import Message, Receive, Scope, Send

from responses_gateway.api.capacity import ABORT_EXTENSION
from responses_gateway.api.edge import deny_websocket, request_context
from responses_gateway.api.hot import _SendWatch
from responses_gateway.api.routes import AppState, EventStream, open_stream
from responses_gateway.api.socket_cache import SocketCache
from responses_gateway.compaction import compaction_turn, is_compaction_turn
from responses_gateway.errors import GatewayError, InvalidRequest, NotFound, StoreUnavailable
from responses_gateway.protocol import parse_create
from responses_gateway.protocol.errors import RequestInvalid, shown
from responses_gateway.protocol.events import (
    ErrorEvent,
    Event,
    ResponseCompleted,
    ResponseIncomplete,
)
from responses_gateway.protocol.request import CreateRequest
from responses_gateway.service import RequestContext, ResponsesService

log = logging.getLogger("responses_gateway.websocket")

ROUTE = "/v1/responses"
CREATE = "response.create"
IDLE_CLOSE = 1000
TOO_BIG_CLOSE = 1009
_encode = msgspec.json.Encoder().encode
_STATUS_OF_CODE = {"store_unavailable": 503, "request_timeout": 504}


class _Envelope(msgspec.Struct):
    """What is read of a client message before the create body itself."""

    type: str | None = None
    background: bool | None = None
    generate: bool | None = None


_decode_envelope = msgspec.json.Decoder(_Envelope).decode


def error_message(
    status: int,
    error_type: str,
    code: str,
    message: str,
    param: str | None = None,
    sequence_number: int | None = None,
) -> str:
    """An `error` message (the Open Responses WebSocketErrorEvent)."""
    body: dict[str, Any] = {
        "type": "error",
        "status": status,
        "error": {"type": error_type, "code": code, "message": message, "param": param},
    }
    if sequence_number is not None:
        body["sequence_number"] = sequence_number
    return orjson.dumps(body).decode()


def _of_exception(exc: GatewayError | RequestInvalid) -> str:
    if isinstance(exc, RequestInvalid):
        exc = InvalidRequest(exc.message, param=exc.param, code=exc.code)
    return error_message(exc.status_code, exc.error_type, exc.code or exc.error_type, exc.message, exc.param)


def _of_event(event: ErrorEvent) -> str:
    """An error event raised after a response's events began, in the WebSocket error shape."""
    status = _STATUS_OF_CODE.get(event.code, 500)
    seq = event.sequence_number
    return error_message(status, "server_error", event.code, event.message, event.param, seq)


def _text(event: Event) -> str:
    if isinstance(event, ErrorEvent):
        return _of_event(event)
    return _encode(event).decode()


async def serve_websocket(state: AppState, scope: Scope, receive: Receive, send: Send) -> None:
    """One WebSocket, from its upgrade (the edge has passed it) to its close."""
    capacity = state.capacity
    try:
        if scope["path"] != ROUTE or scope.get("root_path"):
            raise NotFound(f"Invalid URL (WebSocket {scope['path']}): WebSocket mode is on {ROUTE}.")
        if not capacity.websocket.enabled:
            raise NotFound("WebSocket mode is disabled on this gateway (websocket.enabled is false).")
        if state.service is None:
            raise NotFound("The Responses API is disabled on this gateway (response_api.enabled is false).")
        capacity.sockets.take()
    except GatewayError as exc:
        await deny_websocket(scope, send, exc)
        return
    try:
        await _Socket(state, state.service, request_context(scope), scope, send).run(receive)
    finally:
        capacity.sockets.release()


class _Socket:
    """The state of one open socket: its tenant, its cache of `store: false` responses, its reader."""

    def __init__(
        self, state: AppState, service: ResponsesService, ctx: RequestContext, scope: Scope, send: Send
    ) -> None:
        settings = state.capacity.websocket
        self.state = state
        self.service = service
        self.ctx = ctx
        self.scope = scope
        self._send = send
        self.cache = SocketCache(settings.cache_max_responses, settings.cache_max_bytes)
        self.max_bytes = state.capacity.max_message_bytes
        self.inbox: asyncio.Queue[Message] = asyncio.Queue(maxsize=1)
        self.gone = False  # the client disconnected
        self.closed = False  # we closed the socket
        self.task: asyncio.Task[Any] | None = None
        self.sends: _SendWatch | None = None

    async def run(self, receive: Receive) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        await self._send({"type": "websocket.accept"})
        task = asyncio.current_task()
        assert task is not None
        self.task = task
        reader = asyncio.get_running_loop().create_task(self._read(receive))
        self.sends = _SendWatch(task, self.state.capacity.stream_send_timeout)
        idle = self.state.capacity.websocket.idle_timeout_seconds
        try:
            while True:
                try:
                    message = await asyncio.wait_for(self.inbox.get(), idle)
                except TimeoutError:
                    await self._close(IDLE_CLOSE, "idle timeout (websocket.idle_timeout_seconds)")
                    return
                await self._handle(message)
                if self.closed:
                    return
        except OSError:  # a send to a socket already closed (uvicorn's ClientDisconnected): gone
            return
        except asyncio.CancelledError:
            if not (self.gone or self.sends.stalled) or task.uncancel() > 0:
                raise
        finally:
            self.sends.stop()
            reader.cancel()
        if self.sends.stalled and not self.gone:
            log.warning(
                "a WebSocket's client stopped reading for server.stream_send_timeout_seconds (%g s): dropped",
                self.sends.seconds,
            )
            extension = self.scope.get("extensions", {}).get(ABORT_EXTENSION)
            if extension is not None:
                extension["abort"]()

    async def _read(self, receive: Receive) -> None:
        """Receive messages into the inbox; a disconnect cancels the socket's task (and so the
        response running, which is stored as `cancelled`, as when an SSE client leaves)."""
        while True:
            message = await receive()
            if message["type"] == "websocket.receive":
                await self.inbox.put(message)
            elif message["type"] == "websocket.disconnect":
                self.gone = True
                assert self.task is not None
                self.task.cancel()
                return

    async def _close(self, code: int, reason: str) -> None:
        self.closed = True
        await self._send({"type": "websocket.close", "code": code, "reason": reason})

    async def send_text(self, text: str) -> None:
        assert self.sends is not None
        await self.sends.send(self._send, {"type": "websocket.send", "text": text})

    async def _handle(self, message: Message) -> None:
        text: str | None = message.get("text")
        raw = text.encode() if text is not None else message.get("bytes") or b""
        if len(raw) > self.max_bytes:
            await self._close(TOO_BIG_CLOSE, "message too big (websocket.max_message_bytes)")
            return
        try:
            envelope = _decode_envelope(raw)
        except msgspec.ValidationError as exc:
            await self.send_text(error_message(400, "invalid_request_error", "invalid_message", str(exc)))
            return
        except msgspec.DecodeError as exc:
            message_text = f"The message is not valid JSON: {exc}."
            await self.send_text(error_message(400, "invalid_request_error", "invalid_json", message_text))
            return
        if envelope.type != CREATE:
            await self.send_text(_unknown_type(envelope.type))
            return
        await self._create(raw, envelope)

    async def _create(self, raw: bytes, envelope: _Envelope) -> None:
        """One `response.create`: its events, or an error message."""
        prev: str | None = None
        try:
            req = parse_create(raw, self.service.request_limits)
            prev = req.previous_response_id
            if envelope.background:
                raise InvalidRequest(
                    "background is not supported in WebSocket mode: use HTTP for background responses.",
                    param="background",
                    code="unsupported_parameter",
                )
            if prev is not None and prev in self.cache and req.store is not False:
                raise InvalidRequest(
                    f"Previous response with id '{shown(prev)}' was not stored (store: false): a stored "
                    "response cannot continue it; send store: false.",
                    param="store",
                )
            req.stream = True
            if is_compaction_turn(req):  # Codex's remote compaction: answered whole, never kept
                await self._compaction_turn(req)
                return
            prepared = await self.service.prepare(req, self.ctx, local=self.cache)
            if envelope.generate is False:
                events = self.service.prime(prepared, self.ctx)
            else:
                events = self.service.stream(prepared, self.ctx)
            stream = await open_stream(self.state, events, self.ctx)
        except (GatewayError, RequestInvalid) as exc:
            if isinstance(exc, StoreUnavailable) and not exc.logged:
                log.warning("store unavailable on a WebSocket create: %s", exc.detail)
            if prev is not None:
                self.cache.evict(prev)
            await self.send_text(_of_exception(exc))
            return
        except Exception:  # a bug: logged, answered as HTTP answers it (a 500), and the socket goes on
            log.exception("unexpected error on a WebSocket create")
            if prev is not None:
                self.cache.evict(prev)
            message = "The gateway had an internal error; it has been logged."
            await self.send_text(error_message(500, "server_error", "internal_error", message))
            return
        last = await self._stream(stream)
        if isinstance(last, ResponseCompleted | ResponseIncomplete):
            response = last.response
            if not response.store:
                self.cache.put(prepared.response_id, prev, self.service.turn_chat(prepared, response))
        elif prev is not None:  # failed, or an error event: what it continued is not reused
            self.cache.evict(prev)

    async def _compaction_turn(self, req: CreateRequest) -> None:
        """A create ending with `compaction_trigger`: the context before it (this socket's own
        `store: false` turns included) summarised into one compaction item; a new chain starts from it."""
        prev = req.previous_response_id
        history = await self.service.chain(prev, self.ctx, self.cache) if prev else None
        events = await compaction_turn(self.service, req, self.ctx, history=history)
        assert not isinstance(events, bytes)  # req.stream is set
        for event in events:
            await self.send_text(_text(event))

    async def _stream(self, stream: EventStream) -> Event | None:
        """Send the events; the last one sent (its terminal event, or an error event)."""
        last: Event | None = None
        async with aclosing(_batches(stream)) as batches:
            try:
                async for batch in batches:
                    for event in batch:
                        await self.send_text(_text(event))
                    last = batch[-1]
            except OSError:
                raise  # the client is gone (uvicorn's ClientDisconnected)
            except Exception:
                log.exception("unexpected error while streaming a response on a WebSocket")
                seq = last.sequence_number + 1 if last is not None else 0
                message = "The gateway had an internal error; it has been logged."
                await self.send_text(error_message(500, "server_error", "server_error", message, None, seq))
                return None
        return last


async def _batches(stream: EventStream) -> AsyncGenerator[list[Event], None]:
    async with aclosing(stream.rest):
        yield stream.first
        async for batch in stream.rest:
            yield batch


def _unknown_type(value: str | None) -> str:
    if value is None:
        return error_message(
            400,
            "invalid_request_error",
            "missing_required_parameter",
            f"Missing required parameter: 'type'. Supported values are: '{CREATE}'.",
            "type",
        )
    return error_message(
        400,
        "invalid_request_error",
        "invalid_value",
        f"Invalid value: '{shown(value)}'. Supported values are: '{CREATE}'.",
        "type",
    )
