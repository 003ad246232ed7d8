"""ResponsesService: create / retrieve / delete / list input items. No HTTP here, no SQL.

A create is prepared once (`prepare`), then run either as a stream of events (`stream`) or as one
reply (`respond`): both drive the same translator over the backend's chunks (`_drive`), which stores
the response before a terminal event or reply leaves. If the consumer goes away mid-stream, the
backend request is closed and what was generated is stored as `cancelled` by a task the service
owns (awaited on shutdown). Only expected errors are caught here (UpstreamError, StoreUnavailable).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Protocol, cast

import msgspec

from responses_gateway.config import BackendSettings, FileInputSettings, LimitSettings, ResponseAPISettings
from responses_gateway.conversations import ConversationsService, fresh_item
from responses_gateway.crypto import CompactionCipher, ReasoningCipher
from responses_gateway.errors import (
    InvalidRequest,
    NotFound,
    PreviousResponseNotFound,
    StoreUnavailable,
    UpstreamError,
    UpstreamTimeout,
)
from responses_gateway.files import FileInputs
from responses_gateway.ids import is_item_id, is_response_id, item_id, new_response_id, response_id_of_item
from responses_gateway.protocol.chat import ChatChunk, ChatMessage, ChatRequest
from responses_gateway.protocol.errors import shown
from responses_gateway.protocol.events import Event
from responses_gateway.protocol.items import Compaction, InputItem, Item, ItemReference, Reasoning
from responses_gateway.protocol.parse import RequestLimits
from responses_gateway.protocol.request import CreateRequest
from responses_gateway.protocol.response import Deleted, Response
from responses_gateway.stores.base import ChainIncomplete, ResponseStore, StoredResponse
from responses_gateway.stores.conversations import ConversationTooLarge
from responses_gateway.telemetry import note_create
from responses_gateway.translate.compaction import restore_compactions
from responses_gateway.translate.defaults import OPENAI_DEFAULTS, Defaults
from responses_gateway.translate.items import normalize_input, open_reasoning, references, seal_payload
from responses_gateway.translate.output_items import Sealer
from responses_gateway.translate.request import (
    NO_FILES,
    Files,
    FilesNeeded,
    build_chat_request,
    check_tool_outputs,
    encode_messages,
    messages_json,
    render,
)
from responses_gateway.translate.response import conversation_ref, new_response
from responses_gateway.translate.stream import StreamTranslator
from responses_gateway.translate.tools import ToolMap

log = logging.getLogger("responses_gateway.service")

ENCRYPTED_REASONING = "reasoning.encrypted_content"
SUMMARY_MODES = frozenset({"auto", "concise", "detailed"})  # reasoning.summary values that make one
# The history a `queued` / `in_progress` (background) turn contributes until it settles: a marker, so
# that a turn chained on it is refused (it has no output yet) at no extra store read; the settled
# turn's write replaces it with the real messages.
PENDING_CHAT = b'[{"role":"system","content":"","x_gateway_pending":true}]'
UNSETTLED = frozenset({"queued", "in_progress"})
_encode = msgspec.json.Encoder().encode
_decode_item = msgspec.json.Decoder(Item).decode


class Upstream(Protocol):
    def backend_for(self, model: str) -> BackendSettings: ...

    def stream_chat(
        self, backend: BackendSettings, body: ChatRequest, *, authorization: str | None
    ) -> AsyncGenerator[ChatChunk, None]: ...


class LocalHistory(Protocol):
    """Responses kept outside the store (a WebSocket's own `store: false` turns, `api/socket_cache.py`)."""

    def chain(self, response_id: str) -> tuple[str | None, list[bytes]] | None:
        """None when `response_id` is not kept here; else the stored response the kept chain starts
        from (None: none) and the kept turns' Chat messages, oldest first. ChainIncomplete when a
        kept turn's kept parent is gone."""
        ...


@dataclass(frozen=True, slots=True)
class RequestContext:
    owner: str = ""
    authorization: str | None = None


@dataclass(slots=True)
class Prepared:
    """A validated create request, with its history read and its chat body built."""

    req: CreateRequest
    response_id: str
    input_items: list[Item]
    chat_body: ChatRequest
    backend: BackendSettings
    tools: ToolMap
    # the input as the model sees it, when it differs from `input_items` (compaction items restored)
    context: list[Item] | None = None
    files: Files = field(default_factory=dict)  # what the input_file parts became (`render`)
    defaults: Defaults = OPENAI_DEFAULTS  # the backend's, for settings the client left out

    @property
    def stream(self) -> bool:
        return bool(self.req.stream)


@dataclass(slots=True)
class _Outcome:
    """How a run ended: the settled response (and its JSON), or the backend's failure too."""

    response: Response | None = None
    body: bytes = b""
    failure: UpstreamError | None = None
    stored: asyncio.Task[None] | None = field(default=None, repr=False)
    deadline: _Deadline | None = None


class _Deadline:
    """The overall deadline of a create without streaming (server.request_timeout_seconds): one timer
    for the whole request that cancels its task when it passes. Whoever catches the CancelledError
    asks `claim()` whether it was this deadline's (then the cancellation is withdrawn)."""

    __slots__ = ("_handle", "_task", "fired", "seconds")

    def __init__(self, seconds: float) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self.seconds = seconds
        self.fired = False
        self._handle = asyncio.get_running_loop().call_later(seconds, self._fire)

    def _fire(self) -> None:
        self.fired = True
        self._task.cancel()

    def stop(self) -> None:
        self._handle.cancel()

    def claim(self) -> bool:
        if not self.fired:
            return False
        self.fired = False
        self._task.uncancel()
        return True

    def error(self) -> UpstreamTimeout:
        return UpstreamTimeout(
            f"The response did not finish within server.request_timeout_seconds ({self.seconds:g} s).",
            code="request_timeout",
        )


class ResponsesService:
    def __init__(
        self,
        store: ResponseStore,
        upstream: Upstream,
        settings: ResponseAPISettings,
        *,
        limits: LimitSettings | None = None,
        files: FileInputSettings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.upstream = upstream
        self.settings = settings
        limits = limits or LimitSettings()
        # what `protocol.parse_create` checks a create body against (routes pass it in)
        self.request_limits = RequestLimits(
            max_json_depth=limits.max_json_depth,
            max_input_items=limits.max_input_items,
            max_tools=limits.max_tools,
            max_metadata_pairs=limits.max_metadata_pairs,
            max_metadata_key_chars=limits.max_metadata_key_chars,
            max_metadata_value_chars=limits.max_metadata_value_chars,
            max_output_tokens=limits.max_output_tokens,
        )
        self.max_completion_bytes = limits.max_completion_bytes
        self._clock = clock
        self.clock = clock
        self._tasks: set[asyncio.Task[None]] = set()
        key = settings.encryption_key
        self._cipher = ReasoningCipher(key) if key else None
        self.compaction_cipher = CompactionCipher(key) if key else None
        self._warned_no_key = False
        self._spec_names = settings.reasoning_event_names == "open_responses"
        self.conversations = ConversationsService(store, clock)
        self.files = FileInputs(files or FileInputSettings())
        self._defaults: dict[str, Defaults] = {}  # backend name -> its Defaults (`defaults_for`)

    # -- create: prepare --------------------------------------------------------------------------

    async def prepare(
        self, req: CreateRequest, ctx: RequestContext, *, local: LocalHistory | None = None
    ) -> Prepared:
        """Read the history (one store call), resolve item references, build the chat body. `local`:
        where `previous_response_id` is looked up before the store (a WebSocket's own turns)."""
        backend = self.upstream.backend_for(req.model)
        defaults = self.defaults_for(backend)
        tools = ToolMap(
            req.tools, reject_hosted=self.settings.reject_hosted_tools, strict_default=defaults.strict_tools
        )
        prev = req.previous_response_id
        history = (
            await self.chain(prev, ctx, local) if prev else await self.conversation_history(req, ctx, backend)
        )
        response_id = new_response_id(prev)
        note_create(response_id, req.model, backend.name)
        items = await self.input_items(req.input, response_id, ctx)
        check_tool_outputs(items, history)
        context = self.restored(items, ctx)
        current, files = await self.rendered(context, backend)
        messages = messages_json(req.instructions, history, current)
        chat = build_chat_request(req, messages, tools, defaults)
        context_if_other = None if context is items else context
        return Prepared(req, response_id, items, chat, backend, tools, context_if_other, files, defaults)

    def defaults_for(self, backend: BackendSettings) -> Defaults:
        """What is sent and reported for settings the client left out, made once per backend."""
        defaults = self._defaults.get(backend.name)
        if defaults is None:
            s = backend.sampling_defaults
            defaults = Defaults(
                s.temperature, s.top_p, s.presence_penalty, s.frequency_penalty, backend.strict_tools_default
            )
            self._defaults[backend.name] = defaults
        return defaults

    async def input_items(
        self, raw: str | list[InputItem] | None, response_id: str, ctx: RequestContext
    ) -> list[Item]:
        """A request's `input` as items: ids given, sealed reasoning opened, references resolved."""
        raw_items = normalize_input(raw, response_id)
        if self._cipher is not None:
            open_reasoning(raw_items, self._cipher.open)
        return await self._resolve(raw_items, ctx)

    def restored(self, items: list[Item], ctx: RequestContext, param: str = "input") -> list[Item]:
        """`items` with each compaction item replaced by the summary it seals (`items` itself when
        there is none); a compaction item that cannot be opened is a 400 naming it (`param[i]`)."""
        if Compaction not in map(type, items):
            return items
        cipher = self.compaction_cipher
        opener = None if cipher is None else lambda token: cipher.open(token, ctx.owner)
        return restore_compactions(items, opener, param)

    async def rendered(
        self, items: list[Item], backend: BackendSettings, param: str = "input"
    ) -> tuple[list[ChatMessage], Files]:
        """`items` as Chat messages for `backend`; their input_file parts are read only when there are
        some (`render` raises FilesNeeded at the first one)."""
        try:
            return render(items), NO_FILES
        except FilesNeeded:
            files = await self.files.convert(items, backend.file_inputs, backend.name, param)
            return render(items, files), files

    async def chain(self, prev: str, ctx: RequestContext, local: LocalHistory | None = None) -> list[bytes]:
        """The Chat history of `prev` and its ancestors (one store call), owner-checked; `local` holds
        a socket's own `store: false` turns (WebSocket mode)."""
        if not is_response_id(prev):
            raise PreviousResponseNotFound(prev)  # not an id of ours: no store holds it, none is asked
        return await self._history(prev, ctx, local)

    async def _history(
        self, prev: str, ctx: RequestContext, local: LocalHistory | None = None
    ) -> list[bytes]:
        try:
            kept = local.chain(prev) if local is not None else None
            if kept is not None:
                root, chats = kept
                return [*(await self._history(root, ctx) if root else ()), *chats]
            history = await self.store.get_history(prev, owner=ctx.owner)
        except ChainIncomplete as exc:
            raise InvalidRequest(
                f"Previous response with id '{shown(prev)}' has an incomplete history "
                f"(an earlier turn, {shown(exc.missing_id)}, is gone: expired or evicted).",
                param="previous_response_id",
                code="previous_response_not_found",
            ) from None
        if history is None:
            raise PreviousResponseNotFound(prev)
        if history and history[-1] == PENDING_CHAT:
            raise InvalidRequest(
                f"Previous response with id '{shown(prev)}' is still in progress: a turn can continue it "
                "once it has completed (poll it with GET, or cancel it).",
                param="previous_response_id",
            )
        return history

    async def conversation_history(
        self, req: CreateRequest, ctx: RequestContext, backend: BackendSettings
    ) -> list[bytes]:
        """The items of the request's `conversation` as one history entry (none without one). Its
        input_file parts are read again (a conversation keeps items, not Chat messages)."""
        ref = conversation_ref(req)
        if ref is None:
            return []
        items = await self.conversations.history(ref.id, ctx.owner)
        if not items:
            return []
        current, _ = await self.rendered(self.restored(items, ctx, "conversation"), backend, "conversation")
        return [encode_messages(current)]

    async def _resolve(self, items: list[InputItem], ctx: RequestContext) -> list[Item]:
        """Replace each `item_reference` by its stored item; the look-ups run concurrently (one
        round trip of latency however many references a full-history client sends)."""
        refs = set(references(items))
        if not refs:
            return cast("list[Item]", items)  # no ItemReference among them
        # only ids of our shape can name a stored item: the others are not found, without a store call
        ids = sorted(i for i in refs if response_id_of_item(i) is not None)
        found = await asyncio.gather(*(self.store.get_item(i, owner=ctx.owner) for i in ids))
        by_id: dict[str, bytes | None] = dict.fromkeys(refs)
        by_id.update(zip(ids, found, strict=True))
        resolved: list[Item] = []
        for i, item in enumerate(items):
            if not isinstance(item, ItemReference):
                resolved.append(cast("Item", item))  # not a CompactionTrigger: normalize_input refuses them
                continue
            stored = by_id[item.id]
            if stored is None:
                raise InvalidRequest(f"Item with id '{shown(item.id)}' not found.", param=f"input[{i}].id")
            resolved.append(_decode_item(stored))
        return resolved

    # -- create: run ------------------------------------------------------------------------------

    def _translator(self, p: Prepared, *, events: bool) -> StreamTranslator:
        response = new_response(p.req, p.response_id, int(self._clock()), p.defaults)
        ids = p.response_id
        return StreamTranslator(
            response,
            lambda prefix, i: item_id(prefix, ids, i),
            p.tools,
            seal=self._sealer(p.req),
            events=events,
            summary=p.req.reasoning is not None and p.req.reasoning.summary in SUMMARY_MODES,
            spec_names=self._spec_names,
        )

    async def stream(self, p: Prepared, ctx: RequestContext) -> AsyncGenerator[list[Event], None]:
        """The events of one create, in batches: the events made together (the start, those of one
        backend chunk, the closing ones) come as one list, so they can be sent in one write.
        Errors before the first batch are raised, not streamed."""
        tr = self._translator(p, events=True)
        out = _Outcome()
        try:
            async for batch in self._drive(p, ctx, tr, out):
                yield batch
        except StoreUnavailable as exc:
            if not exc.logged:
                log.warning("storing %s failed: %s", p.response_id, exc.detail)
            yield [tr.error_event("store_unavailable", f"The response could not be stored. {exc.message}")]
            return
        assert out.response is not None
        yield [tr.terminal_event(out.response)]

    async def prime(self, p: Prepared, ctx: RequestContext) -> AsyncGenerator[list[Event], None]:
        """`generate: false` (WebSocket mode): the events of a response settled without calling the
        model (completed, no output), stored like any other, so that a later turn can continue it.
        Errors before the first batch are raised."""
        tr = self._translator(p, events=True)
        start = tr.start()
        response, closing = tr.finish(int(self._clock()))
        await asyncio.shield(self._store_task(p, ctx, response, _encode(response)))
        yield [*start, *closing, tr.terminal_event(response)]

    def turn_chat(self, p: Prepared, response: Response) -> bytes:
        """The Chat messages a settled turn adds to the history of its descendants (a store's `chat`)."""
        return encode_messages(render([*(p.context or p.input_items), *response.output], p.files))

    async def respond(self, p: Prepared, ctx: RequestContext, *, timeout: float | None = None) -> bytes:
        """One create without streaming: the stored response's JSON (no events are built).

        `timeout`: the backend call ends after this many seconds with UpstreamTimeout (a 504); a
        response it had begun is stored as `failed`, saying so."""
        out = _Outcome(deadline=_Deadline(timeout) if timeout is not None else None)
        try:
            async for _ in self._drive(p, ctx, self._translator(p, events=False), out):
                pass
        except asyncio.CancelledError:
            if out.deadline is None or not out.deadline.claim():
                raise
            raise out.deadline.error() from None  # before the backend's first chunk: nothing to store
        finally:
            if out.deadline is not None:
                out.deadline.stop()
        if out.failure is not None:
            raise out.failure  # stored as failed; the client gets the backend's 502 / 504
        return out.body

    async def _drive(
        self,
        p: Prepared,
        ctx: RequestContext,
        tr: StreamTranslator,
        out: _Outcome,
    ) -> AsyncGenerator[list[Event], None]:
        """Chunks -> batches of events (never empty), then the store of the settled response (before
        any terminal event)."""
        chunks = self.upstream.stream_chat(p.backend, p.chat_body, authorization=ctx.authorization)
        async with aclosing(chunks):
            first = await anext(chunks, None)  # a backend error here is an HTTP error, not an event
            limit = self.max_completion_bytes
            try:
                if events := tr.start():
                    yield events
                if first is not None:
                    if events := tr.feed(first):
                        yield events
                    if tr.completion_bytes <= limit:
                        async for chunk in chunks:
                            if events := tr.feed(chunk):
                                yield events
                            if tr.completion_bytes > limit:
                                break
                if tr.completion_bytes > limit:
                    await chunks.aclose()  # closes the backend's connection now: it stops generating
                    log.warning(
                        "%s: the completion passed limits.max_completion_bytes (%d): cut, incomplete",
                        p.response_id,
                        limit,
                    )
                    tr.cut()
                if out.deadline is not None:
                    out.deadline.stop()  # the backend is done: what is left is ours to finish
                response, closing = tr.finish(int(self._clock()))
            except UpstreamError as exc:
                if not exc.logged:  # the upstream client logged the backend's own words already
                    exc.logged = True
                    log.warning("backend failed mid-stream for %s: %s", p.response_id, exc.message)
                out.failure = exc
                response, closing = tr.fail("server_error", exc.message)
            except (asyncio.CancelledError, GeneratorExit):
                if out.deadline is None or not out.deadline.claim():
                    # the client went away: the backend request is closed by aclosing; keep what we have
                    cancelled, _ = tr.fail("cancelled", "The client disconnected.", status="cancelled")
                    self._store_task(p, ctx, cancelled, _encode(cancelled))
                    raise
                out.failure = out.deadline.error()  # the deadline passed mid-reply: failed, saying so
                out.failure.logged = True
                log.warning("%s: %s", p.response_id, out.failure.message)
                response, closing = tr.fail("server_error", out.failure.message)
            out.response, out.body = response, _encode(response)
            try:
                if closing:
                    yield closing
            except (asyncio.CancelledError, GeneratorExit):
                self._store_task(p, ctx, response, out.body)  # settled: keep it even so
                raise
        # shielded: a client leaving now does not cancel a write that may already be applied
        await asyncio.shield(self._store_task(p, ctx, response, out.body))

    def _sealer(self, req: CreateRequest) -> Sealer | None:
        """Seal reasoning items when the request asks for it and a key is configured (docs/API.md)."""
        if ENCRYPTED_REASONING not in (req.include or ()):
            return None
        cipher = self._cipher
        if cipher is None:
            if not self._warned_no_key:
                self._warned_no_key = True
                log.warning(
                    "include %s asked for but response_api.encryption_key is not set: reasoning "
                    "items carry no encrypted_content",
                    ENCRYPTED_REASONING,
                )
            return None

        def seal(item: Reasoning) -> str:
            return cipher.seal(seal_payload(item))

        return seal

    # -- create: store ----------------------------------------------------------------------------

    def _record(self, p: Prepared, ctx: RequestContext, response: Response, body: bytes) -> StoredResponse:
        """The stored turn: the response's JSON, its input items, and its Chat messages rendered once."""
        return StoredResponse(
            id=p.response_id,
            previous_response_id=p.req.previous_response_id,
            response=body,
            input_items=_encode(p.input_items),
            chat=PENDING_CHAT if response.status in UNSETTLED else self.turn_chat(p, response),
            owner=ctx.owner,
            created_at=response.created_at,
        )

    async def _store(self, p: Prepared, ctx: RequestContext, response: Response, body: bytes) -> None:
        if response.store:
            await self.store.put(self._record(p, ctx, response, body))
        if response.conversation is not None and response.status in ("completed", "incomplete"):
            await self._append_turn(p, ctx, response, response.conversation.id)

    async def _append_turn(self, p: Prepared, ctx: RequestContext, response: Response, cid: str) -> None:
        """The turn's input and output items, appended to its conversation as one unit. Items keep
        the ids minted for this response; others (a client's own ids, which may repeat) get fresh ones."""
        mine = p.response_id
        turn: list[tuple[str, bytes]] = []
        for item in (*p.input_items, *response.output):
            if item.id and response_id_of_item(item.id) == mine:
                turn.append((item.id, _encode(item)))
            else:
                turn.append(fresh_item(msgspec.structs.replace(item)))
        try:
            appended = await self.conversations.append(cid, turn, ctx.owner)
        except ConversationTooLarge as exc:  # the response stands; the conversation stays as it was
            log.warning("%s: the turn was not added to conversation %s: %s", mine, cid, exc)
            return
        if not appended:
            log.warning("%s: conversation %s is gone: the turn was not added to it", mine, cid)

    def _store_task(
        self, p: Prepared, ctx: RequestContext, response: Response, body: bytes
    ) -> asyncio.Task[None]:
        """The write of a response as a task the service owns (awaited on shutdown by `drain`), so
        the cancellation of the request that waits for it cannot interrupt it."""
        task = asyncio.get_running_loop().create_task(self._store(p, ctx, response, body))
        self._tasks.add(task)
        task.add_done_callback(self._store_done)
        return task

    def _store_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        if isinstance(exc, StoreUnavailable):
            exc.logged = True
            log.warning("storing a response failed: %s", exc.detail)
        else:
            log.error("storing a response failed", exc_info=exc)

    async def settled(self, timeout: float) -> None:
        """Wait at most `timeout` s for the writes of responses already settled (never cancels them)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)

    async def drain(self) -> None:
        """Wait for stores of cancelled responses still in flight (on shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- read / delete ----------------------------------------------------------------------------

    async def get(self, response_id: str, ctx: RequestContext) -> bytes:
        """The stored Response JSON, byte for byte."""
        record = await self.store.get(_checked(response_id), owner=ctx.owner)
        if record is None:
            raise _not_found(response_id)
        return record.response

    @staticmethod
    def check_id(response_id: str) -> None:
        """The unknown-id 404 for an id not of our shape (before any store access)."""
        _checked(response_id)

    async def delete(self, response_id: str, ctx: RequestContext) -> Deleted:
        if not await self.store.delete(_checked(response_id), owner=ctx.owner):
            raise _not_found(response_id)
        return Deleted(response_id)

    async def list_input_items(
        self, response_id: str, ctx: RequestContext, *, after: str | None, limit: int, order: str
    ) -> ItemPage:
        checked = _checked(response_id)
        if after is not None and not is_item_id(after):
            raise _after_not_found(after)
        record = await self.store.get(checked, owner=ctx.owner)
        if record is None:
            raise _not_found(response_id)
        items = _decode_items(record.input_items)
        if order != "asc":
            items.reverse()
        if after is not None:
            ids = [it.id for it in items]
            if after not in ids:
                raise _after_not_found(after)
            items = items[ids.index(after) + 1 :]
        page = items[:limit]
        return ItemPage(
            data=page,
            first_id=page[0].id if page else None,
            last_id=page[-1].id if page else None,
            has_more=len(items) > limit,
        )


def _not_found(response_id: str) -> NotFound:
    return NotFound(f"Response with id '{shown(response_id)}' not found.", param="response_id")


def _after_not_found(after: str) -> InvalidRequest:
    return InvalidRequest(f"Item with id '{shown(after)}' not found in the input items.", param="after")


def _checked(response_id: str) -> str:
    """`response_id` when it has the shape of our ids; otherwise the unknown-id 404, before any
    store access (so nothing else becomes part of a store key)."""
    if not is_response_id(response_id):
        raise _not_found(response_id)
    return response_id


class ItemPage(msgspec.Struct, kw_only=True):
    """A page of `GET /v1/responses/{id}/input_items`."""

    object: str = "list"
    data: list[Item]
    first_id: str | None
    last_id: str | None
    has_more: bool


_decode_items = msgspec.json.Decoder(list[Item]).decode
