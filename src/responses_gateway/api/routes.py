"""Thin handlers: parse the request, call the service, encode the result."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import TypeVar

import msgspec
import orjson
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from responses_gateway.api import conversations as conv
from responses_gateway.api.body import read_body
from responses_gateway.api.capacity import Capacity
from responses_gateway.api.edge import request_context
from responses_gateway.api.openapi import openapi_json
from responses_gateway.api.sse import sse_stream
from responses_gateway.background import BackgroundRunner
from responses_gateway.compaction import compact, compaction_turn, is_compaction_turn
from responses_gateway.errors import InvalidRequest, NotFound, StoreUnavailable, UpstreamTimeout
from responses_gateway.metrics import Metrics
from responses_gateway.protocol import parse_create, parse_json
from responses_gateway.protocol.compaction import parse_compact
from responses_gateway.protocol.events import Event
from responses_gateway.ratelimit import RateLimiter, Slot, holding
from responses_gateway.service import Prepared, RequestContext, ResponsesService
from responses_gateway.stores.conversations import Order
from responses_gateway.stores.events import LoggedEvent
from responses_gateway.telemetry import note_create
from responses_gateway.token_count import count_input_tokens
from responses_gateway.upstream.http import HTTPUpstream

log = logging.getLogger("responses_gateway.api")
T = TypeVar("T")
_encode = msgspec.json.Encoder().encode
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@dataclass(slots=True)
class AppState:
    """What the lifespan opened; handlers reach it through `_state(request)`."""

    service: ResponsesService | None
    upstream: HTTPUpstream
    metrics: Metrics
    limiter: RateLimiter
    capacity: Capacity = field(default_factory=Capacity)
    api_keys: bool = False  # auth.api_keys is set (the OpenAPI document says a key is required)
    metrics_key: bool = False  # /metrics needs auth.metrics_key
    background: BackgroundRunner | None = None  # runs `background: true` responses (with a service)


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.gateway
    return state


def service_of(state: AppState) -> ResponsesService:
    service = state.service
    if service is None:
        raise NotFound("The Responses API is disabled on this gateway (response_api.enabled is false).")
    return service


def _service(request: Request) -> ResponsesService:
    return service_of(_state(request))


def _json(data: msgspec.Struct | bytes, status: int = 200) -> Response:
    body = data if isinstance(data, bytes) else _encode(data)
    return Response(body, status_code=status, media_type="application/json")


async def _body(request: Request) -> bytes:
    """The request body, bounded in size and time (`api/body.py`)."""
    capacity = _state(request).capacity
    return await read_body(
        request.receive,
        request.scope["headers"],
        max_bytes=capacity.max_body_bytes,
        timeout=capacity.body_timeout,
    )


def _ctx(request: Request) -> RequestContext:
    """The tenant (owner) and the Authorization a backend may get, as the edge set them."""
    return request_context(request.scope)


@dataclass(slots=True)
class EventStream:
    """A create answered as a stream: its first batch of events (already made) and the rest."""

    first: list[Event]
    rest: AsyncGenerator[list[Event], None]


async def create(
    service: ResponsesService, body: bytes, ctx: RequestContext, state: AppState
) -> bytes | EventStream:
    """The one place that decides between a stream of events and one JSON reply.

    Errors before the first event are raised (an HTTP error status), never streamed. The tenant's
    rate limits are checked before the backend is called. A reply has an overall deadline
    (`server.request_timeout_seconds`); a stream holds one of the process's stream slots
    (`server.max_streams`, a 503 before the backend is called when none is free) and, with
    `limits.concurrent_streams`, one of its tenant's, until it ends."""
    capacity = state.capacity
    req = parse_create(body, service.request_limits)
    if is_compaction_turn(req):  # `compaction.py`: summarised before any event, nothing stored
        await state.limiter.admit(ctx.owner, stream=False)
        done = await within(capacity.request_timeout, compaction_turn(service, req, ctx))
        return done if isinstance(done, bytes) else EventStream(done, _no_more())
    prepared = await service.prepare(req, ctx)
    if prepared.req.background:
        return await start_background(prepared, ctx, state)
    if not prepared.stream:
        await state.limiter.admit(ctx.owner, stream=False)
        return await service.respond(prepared, ctx, timeout=capacity.request_timeout)
    return await open_stream(state, service.stream(prepared, ctx), ctx)


async def open_stream(
    state: AppState, events: AsyncGenerator[list[Event], None], ctx: RequestContext
) -> EventStream:
    """`events` (not started) as a stream holding one of the process's stream slots and, with
    `limits.concurrent_streams`, one of its tenant's (taken here: a 503 / 429 before they start),
    with its first batch read (errors before it are raised)."""
    streams = state.capacity.streams
    try:
        streams.take()
        try:
            slot = await state.limiter.admit(ctx.owner, stream=True)
        except BaseException:
            streams.release()
            raise
    except BaseException:
        await events.aclose()
        raise
    events = streams.hold(events if slot is None else holding(slot, events))
    try:
        first = await anext(events)
    except BaseException:
        await events.aclose()
        raise
    return EventStream(first, events)


async def within(seconds: float, work: Awaitable[T]) -> T:
    """`work`, cancelled after `seconds` (server.request_timeout_seconds): then a 504."""
    try:
        async with asyncio.timeout(seconds):
            return await work
    except TimeoutError:
        raise UpstreamTimeout(
            f"The request did not finish within server.request_timeout_seconds ({seconds:g} s).",
            code="request_timeout",
        ) from None


async def _no_more() -> AsyncGenerator[list[Event], None]:
    return
    yield


def background_of(state: AppState) -> BackgroundRunner:
    service_of(state)
    assert state.background is not None  # set with the service
    return state.background


async def start_background(prepared: Prepared, ctx: RequestContext, state: AppState) -> bytes | EventStream:
    """A `background: true` create (`background.py`): the `queued` response, or its events."""
    runner = background_of(state)
    if not prepared.stream:
        await state.limiter.admit(ctx.owner, stream=False)
        result = await runner.start(prepared, ctx)
        assert isinstance(result, bytes)
        return result
    # the client's SSE connection holds a slot of the process's and one of its tenant's, as any stream
    streams = state.capacity.streams
    streams.take()
    slot: Slot | None = None
    try:
        slot = await state.limiter.admit(ctx.owner, stream=True)
        started = await runner.start(prepared, ctx)
    except BaseException:
        streams.release()
        if slot is not None:
            slot.release()
        raise
    assert not isinstance(started, bytes)
    events = streams.hold(started if slot is None else holding(slot, started))
    try:
        first = await anext(events)
    except BaseException:
        await events.aclose()
        raise
    return EventStream(first, events)


async def retrieve(state: AppState, response_id: str, ctx: RequestContext) -> bytes:
    """A stored response; a background one whose runner died is settled first (`background.py`)."""
    body = await service_of(state).get(response_id, ctx)
    return await background_of(state).checked(response_id, body, ctx)


async def cancel_response(request: Request) -> Response:
    state = _state(request)
    response_id = request.path_params["response_id"]
    service_of(state).check_id(response_id)
    return _json(await background_of(state).cancel(response_id, _ctx(request)))


def replay_requested(stream: str | None) -> bool:
    return stream in ("true", "1")


def _starting_after(value: str | None) -> int:
    if value is None:
        return -1
    try:
        after = int(value)
    except ValueError:
        message = "Invalid 'starting_after': expected an integer."
        raise InvalidRequest(message, param="starting_after") from None
    if after < -1:
        raise InvalidRequest("Invalid 'starting_after': must be -1 or more.", param="starting_after")
    return after


async def _replay_stream(
    events: AsyncGenerator[LoggedEvent, None], state: AppState
) -> AsyncGenerator[bytes, None]:
    """SSE bytes of a replay; it holds one of the process's stream slots (taken) until it ends."""
    try:
        async with aclosing(events):
            async for e in events:
                yield b"event: " + e.type.encode() + b"\ndata: " + e.data + b"\n\n"
    finally:
        state.capacity.streams.release()


async def replay_response(request: Request) -> Response:
    """`GET /v1/responses/{id}?stream=true[&starting_after=N]`: a background response's events."""
    state = _state(request)
    response_id = request.path_params["response_id"]
    service_of(state).check_id(response_id)
    after = _starting_after(request.query_params.get("starting_after"))
    ctx = _ctx(request)
    events = await background_of(state).replay(response_id, ctx, after)
    slot: Slot | None = None
    try:
        state.capacity.streams.take()
        try:
            slot = await state.limiter.admit(ctx.owner, stream=True)  # a replay is a stream of its tenant's
        except BaseException:
            state.capacity.streams.release()
            raise
    except BaseException:
        await events.aclose()
        raise
    # started here (the first event read), so that its `finally` gives the slots back however it ends
    chunks = _replay_stream(events if slot is None else holding(slot, events), state)
    try:
        first = await anext(chunks, b"")
    except BaseException:
        await chunks.aclose()
        raise
    return StreamingResponse(_prepend(first, chunks), media_type="text/event-stream", headers=SSE_HEADERS)


async def _prepend(first: bytes, rest: AsyncGenerator[bytes, None]) -> AsyncGenerator[bytes, None]:
    async with aclosing(rest):
        if first:
            yield first
        async for chunk in rest:
            yield chunk


async def create_response(request: Request) -> Response:
    state = _state(request)
    result = await create(service_of(state), await _body(request), _ctx(request), state)
    if isinstance(result, bytes):
        return _json(result)
    return StreamingResponse(
        sse_stream(result.first, result.rest), media_type="text/event-stream", headers=SSE_HEADERS
    )


async def compact_response(request: Request) -> Response:
    """`POST /v1/responses/compact` (`compaction.py`)."""
    state = _state(request)
    service = service_of(state)
    req = parse_compact(await _body(request), service.request_limits)
    ctx = _ctx(request)
    await state.limiter.admit(ctx.owner, stream=False)
    return _json(await within(state.capacity.request_timeout, compact(service, req, ctx)))


async def input_tokens(request: Request) -> Response:
    """`POST /v1/responses/input_tokens` (`token_count.py`): a create body, counted, not run."""
    state = _state(request)
    service = service_of(state)
    req = parse_create(await _body(request), service.request_limits)
    ctx = _ctx(request)
    await state.limiter.admit(ctx.owner, stream=False)
    work = count_input_tokens(service, state.upstream, req, ctx)
    return _json(await within(state.capacity.request_timeout, work))


async def get_response(request: Request) -> Response:
    if replay_requested(request.query_params.get("stream")):
        return await replay_response(request)
    return _json(await retrieve(_state(request), request.path_params["response_id"], _ctx(request)))


async def delete_response(request: Request) -> Response:
    return _json(await _service(request).delete(request.path_params["response_id"], _ctx(request)))


def _order(value: str | None) -> Order:
    """A list's `order` (default desc), as input_items and conversation items take it."""
    if value is None or value == "desc":
        return "desc"
    if value == "asc":
        return "asc"
    raise InvalidRequest("Invalid 'order': expected 'asc' or 'desc'.", param="order")


def _limit(value: str | None) -> int:
    if value is None:
        return 20
    try:
        limit = int(value)
    except ValueError:
        raise InvalidRequest("Invalid 'limit': expected an integer.", param="limit") from None
    if not 1 <= limit <= 100:
        raise InvalidRequest("Invalid 'limit': must be between 1 and 100.", param="limit")
    return limit


async def list_input_items(request: Request) -> Response:
    q = request.query_params
    order = _order(q.get("order"))
    page = await _service(request).list_input_items(
        request.path_params["response_id"],
        _ctx(request),
        after=q.get("after"),
        limit=_limit(q.get("limit")),
        order=order,
    )
    return _json(page)


async def chat_completions(request: Request) -> Response:
    """Pass-through to the backend serving the model (the gateway is a router too)."""
    raw = await _body(request)
    body = parse_json(raw)
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        raise InvalidRequest("Missing required parameter: 'model'.", param="model")
    state = _state(request)
    upstream = state.upstream
    backend = upstream.backend_for(body["model"])
    note_create(None, body["model"], backend.name)  # for the access line
    ctx = _ctx(request)
    slot = await state.limiter.admit(ctx.owner, stream=body.get("stream") is True)
    try:
        resp = await upstream.forward(
            backend, "POST", "/chat/completions", raw, authorization=ctx.authorization
        )
    except BaseException:
        if slot is not None:
            slot.release()
        raise
    return StreamingResponse(
        resp.iter_bytes() if slot is None else holding(slot, resp.iter_bytes()),
        status_code=resp.status,
        media_type=resp.content_type,
        background=BackgroundTask(resp.aclose),
    )


async def list_models(request: Request) -> Response:
    data = await _state(request).upstream.list_models(authorization=_ctx(request).authorization)
    return _json(orjson.dumps({"object": "list", "data": data}))


async def health(request: Request) -> Response:
    return _json(b'{"status":"ok"}')


async def ready(request: Request) -> Response:
    service = _state(request).service
    if service is None:
        return _json(orjson.dumps({"status": "ready", "store": None}))
    try:
        await service.store.ping()
    except StoreUnavailable as exc:  # the detail (addresses, driver words) only in our log
        log.warning("/ready: the %s store is unavailable: %s", service.store.backend_name, exc.detail)
        reason = {"status": "not_ready", "store": service.store.backend_name, "reason": exc.message}
        return _json(orjson.dumps(reason), 503)
    return _json(orjson.dumps({"status": "ready", "store": service.store.backend_name}))


async def metrics(request: Request) -> Response:
    body, content_type = _state(request).metrics.render()
    return Response(body, media_type=content_type)


async def openapi(request: Request) -> Response:
    """The gateway's own OpenAPI document (`api/openapi.py`); open like /health, it holds no secret."""
    state = _state(request)
    return _json(openapi_json(api_keys=state.api_keys, metrics_key=state.metrics_key))


ROUTES = [
    Route("/v1/responses", create_response, methods=["POST"]),
    Route("/v1/responses/compact", compact_response, methods=["POST"]),
    Route("/v1/responses/input_tokens", input_tokens, methods=["POST"]),
    Route("/v1/responses/{response_id}", get_response, methods=["GET"]),
    Route("/v1/responses/{response_id}", delete_response, methods=["DELETE"]),
    Route("/v1/responses/{response_id}/input_items", list_input_items, methods=["GET"]),
    Route("/v1/responses/{response_id}/cancel", cancel_response, methods=["POST"]),
    Route("/v1/conversations", conv.create_conversation, methods=["POST"]),
    Route("/v1/conversations/{conversation_id}", conv.get_conversation, methods=["GET"]),
    Route("/v1/conversations/{conversation_id}", conv.update_conversation, methods=["POST"]),
    Route("/v1/conversations/{conversation_id}", conv.delete_conversation, methods=["DELETE"]),
    Route("/v1/conversations/{conversation_id}/items", conv.add_items, methods=["POST"]),
    Route("/v1/conversations/{conversation_id}/items", conv.list_items, methods=["GET"]),
    Route("/v1/conversations/{conversation_id}/items/{item_id}", conv.get_item, methods=["GET"]),
    Route("/v1/conversations/{conversation_id}/items/{item_id}", conv.delete_item, methods=["DELETE"]),
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/health", health, methods=["GET"]),
    Route("/ready", ready, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
]
