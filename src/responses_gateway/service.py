"""ResponsesService: create / retrieve / delete / list input items. No HTTP here, no SQL.

Create is one async generator of events (`run`); the non-streaming reply folds it (`fold`). The
response is stored before its terminal event is yielded, so a follow-up on any replica finds it.
If the consumer goes away mid-stream, the backend request is closed and what was generated is
stored as `cancelled` by a task the service owns (awaited on shutdown).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Protocol

from responses_gateway.config import BackendSettings, ResponseAPISettings
from responses_gateway.crypto import ReasoningCipher
from responses_gateway.errors import (
    InvalidRequest,
    NotFound,
    PreviousResponseNotFound,
    StoreUnavailable,
    UpstreamError,
)
from responses_gateway.ids import item_id, new_response_id
from responses_gateway.stores.base import ChainIncomplete, ResponseStore, StoredResponse
from responses_gateway.translate.items import normalize_input, open_reasoning, references
from responses_gateway.translate.request import build_chat_request, build_messages, check_tool_outputs
from responses_gateway.translate.response import new_response
from responses_gateway.translate.stream import Event, Sealer, StreamTranslator
from responses_gateway.translate.tools import ToolMap
from responses_gateway.translate.validate import validate_create

log = logging.getLogger("responses_gateway.service")

Item = dict[str, Any]
ENCRYPTED_REASONING = "reasoning.encrypted_content"


class Upstream(Protocol):
    def backend_for(self, model: str) -> BackendSettings: ...

    def stream_chat(
        self, backend: BackendSettings, body: dict[str, Any], *, authorization: str | None
    ) -> AsyncGenerator[dict[str, Any], None]: ...


@dataclass(frozen=True, slots=True)
class RequestContext:
    owner: str = ""
    authorization: str | None = None


@dataclass(slots=True)
class Prepared:
    """A validated create request, with its history read and its chat body built."""

    req: dict[str, Any]
    response_id: str
    input_items: list[Item]
    chat_body: dict[str, Any]
    backend: BackendSettings
    tools: ToolMap

    @property
    def stream(self) -> bool:
        return bool(self.req.get("stream"))


class ResponsesService:
    def __init__(
        self,
        store: ResponseStore,
        upstream: Upstream,
        settings: ResponseAPISettings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.upstream = upstream
        self.settings = settings
        self._clock = clock
        self._tasks: set[asyncio.Task[None]] = set()
        self._cipher = ReasoningCipher(settings.encryption_key) if settings.encryption_key else None
        self._warned_no_key = False

    # -- create -----------------------------------------------------------------------------------

    async def prepare(self, body: Any, ctx: RequestContext) -> Prepared:
        """Validate, read the chain (one store call), resolve item references, build the chat body."""
        req = validate_create(body)
        tools = ToolMap(req.get("tools"), reject_hosted=self.settings.reject_hosted_tools)
        backend = self.upstream.backend_for(req["model"])
        prev = req.get("previous_response_id")
        history: Sequence[StoredResponse] = ()
        if prev:
            try:
                chain = await self.store.get_chain(prev, owner=ctx.owner)
            except ChainIncomplete as exc:
                raise InvalidRequest(
                    f"Previous response with id '{prev}' has an incomplete history "
                    f"(an earlier turn, {exc.missing_id}, expired).",
                    param="previous_response_id",
                    code="previous_response_not_found",
                ) from None
            if chain is None:
                raise PreviousResponseNotFound(prev)
            history = chain
        response_id = new_response_id(prev)
        items = normalize_input(req.get("input", []), response_id)
        if self._cipher is not None:
            open_reasoning(items, self._cipher.open)
        if references(items):
            items = await self._resolve(items, ctx)
        context: list[Item] = []
        for record in history:
            context += record.input_items
            context += record.output_items
        context += items
        check_tool_outputs(context)
        messages = build_messages(req.get("instructions"), context, tools)
        return Prepared(req, response_id, items, build_chat_request(req, messages, tools), backend, tools)

    async def _resolve(self, items: list[Item], ctx: RequestContext) -> list[Item]:
        """Replace each `item_reference` by its stored item; the look-ups run concurrently (one
        round trip of latency however many references a full-history client sends)."""
        ids = sorted({it["id"] for it in items if it["type"] == "item_reference"})
        found = await asyncio.gather(*(self.store.get_item(i, owner=ctx.owner) for i in ids))
        by_id = dict(zip(ids, found, strict=True))
        resolved: list[Item] = []
        for item in items:
            if item["type"] != "item_reference":
                resolved.append(item)
                continue
            stored = by_id[item["id"]]
            if stored is None:
                raise InvalidRequest(f"Item with id '{item['id']}' not found.", param="input")
            resolved.append(stored)
        return resolved

    async def run(self, p: Prepared, ctx: RequestContext) -> AsyncGenerator[Event, None]:
        """The event stream of one create. Errors before the first event are raised, not streamed."""
        response = new_response(p.req, p.response_id, int(self._clock()))
        tr = StreamTranslator(
            response, lambda prefix, i: item_id(prefix, p.response_id, i), p.tools, seal=self._sealer(p.req)
        )
        chunks = self.upstream.stream_chat(p.backend, p.chat_body, authorization=ctx.authorization)
        failure: UpstreamError | None = None
        async with aclosing(chunks):
            first = await anext(chunks, None)  # a backend error here is an HTTP error, not an event
            try:
                for ev in tr.start():
                    yield ev
                if first is not None:
                    for ev in tr.feed(first):
                        yield ev
                    async for chunk in chunks:
                        for ev in tr.feed(chunk):
                            yield ev
                for ev in tr.finish(int(self._clock())):
                    yield ev
            except UpstreamError as exc:
                log.warning("backend failed mid-stream for %s: %s", p.response_id, exc.message)
                failure = exc
            except Exception as exc:  # a chunk of a shape the translator cannot read
                log.warning("backend sent a malformed chunk for %s: %r", p.response_id, exc)
                failure = UpstreamError(f"The backend sent a malformed stream chunk ({type(exc).__name__}).")
            except (asyncio.CancelledError, GeneratorExit):
                # the client went away: the backend request is closed by aclosing; keep what we have
                tr.fail("cancelled", "The client disconnected.", status="cancelled")
                self._store_task(p, ctx, response)
                raise
            if failure is not None:
                closing = tr.fail("server_error", f"The backend failed mid-stream: {failure.message}")
                try:
                    for ev in closing:
                        yield ev
                except (asyncio.CancelledError, GeneratorExit):
                    self._store_task(p, ctx, response)  # settled as failed: keep it even so
                    raise
        try:
            # shielded: a client leaving now does not cancel a write that may already be applied
            await asyncio.shield(self._store_task(p, ctx, response))
        except Exception as exc:
            message = exc.message if isinstance(exc, StoreUnavailable) else f"{type(exc).__name__}: {exc}"
            yield tr.error_event("store_unavailable", f"The response could not be stored: {message}")
            return
        if failure is not None and not p.stream:
            raise failure  # stored as failed; a non-streaming client gets the backend's 502 / 504
        yield tr.terminal_event()

    def _sealer(self, req: dict[str, Any]) -> Sealer | None:
        """Seal reasoning items when the request asks for it and a key is configured (docs/API.md)."""
        if ENCRYPTED_REASONING not in (req.get("include") or ()):
            return None
        if self._cipher is None:
            if not self._warned_no_key:
                self._warned_no_key = True
                log.warning(
                    "include %s asked for but response_api.encryption_key is not set: reasoning "
                    "items carry no encrypted_content",
                    ENCRYPTED_REASONING,
                )
            return None
        return self._cipher.seal

    def _record(self, p: Prepared, ctx: RequestContext, response: dict[str, Any]) -> StoredResponse:
        return StoredResponse(
            owner=ctx.owner,
            id=p.response_id,
            previous_response_id=p.req.get("previous_response_id"),
            input_items=p.input_items,
            response=response,
            created_at=int(response["created_at"]),
        )

    async def _store(self, p: Prepared, ctx: RequestContext, response: dict[str, Any]) -> None:
        if response.get("store", True):
            await self.store.put(self._record(p, ctx, response))

    def _store_task(self, p: Prepared, ctx: RequestContext, response: dict[str, Any]) -> asyncio.Task[None]:
        """The write of a response as a task the service owns (awaited on shutdown by `drain`), so
        the cancellation of the request that waits for it cannot interrupt it."""
        task = asyncio.get_running_loop().create_task(self._store(p, ctx, response))
        self._tasks.add(task)
        task.add_done_callback(self._store_done)
        return task

    def _store_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("storing a response failed: %s", task.exception())

    async def drain(self) -> None:
        """Wait for stores of cancelled responses still in flight (on shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- read / delete ----------------------------------------------------------------------------

    async def get(self, response_id: str, ctx: RequestContext) -> dict[str, Any]:
        record = await self.store.get(response_id, owner=ctx.owner)
        if record is None:
            raise NotFound(f"Response with id '{response_id}' not found.", param="response_id")
        return record.response

    async def delete(self, response_id: str, ctx: RequestContext) -> dict[str, Any]:
        if not await self.store.delete(response_id, owner=ctx.owner):
            raise NotFound(f"Response with id '{response_id}' not found.", param="response_id")
        return {"id": response_id, "object": "response", "deleted": True}

    async def list_input_items(
        self, response_id: str, ctx: RequestContext, *, after: str | None, limit: int, order: str
    ) -> dict[str, Any]:
        record = await self.store.get(response_id, owner=ctx.owner)
        if record is None:
            raise NotFound(f"Response with id '{response_id}' not found.", param="response_id")
        items = record.input_items if order == "asc" else record.input_items[::-1]
        if after is not None:
            ids = [it.get("id") for it in items]
            if after not in ids:
                raise InvalidRequest(f"Item with id '{after}' not found in the input items.", param="after")
            items = items[ids.index(after) + 1 :]
        page = items[:limit]
        return {
            "object": "list",
            "data": page,
            "first_id": page[0].get("id") if page else None,
            "last_id": page[-1].get("id") if page else None,
            "has_more": len(items) > limit,
        }


async def fold(events: AsyncIterator[Event]) -> dict[str, Any]:
    """The non-streaming reply: the response carried by the terminal event."""
    final: dict[str, Any] | None = None
    async for ev in events:
        etype = ev["type"]
        if etype in ("response.completed", "response.incomplete", "response.failed"):
            final = ev["response"]
        elif etype == "error":
            raise StoreUnavailable(ev["message"])
    if final is None:
        raise UpstreamError("The response ended without a result.")
    if final["status"] == "failed":
        raise UpstreamError((final.get("error") or {}).get("message") or "The backend failed.")
    return final
