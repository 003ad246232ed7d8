"""Compaction (`POST /v1/responses/compact`): the backend model summarises a context, the gateway
seals the summary. No HTTP here; the WebSocket mode calls `compact` as the HTTP route does.

The context is the chain of `previous_response_id` (owner-checked), or a socket's own history, then
the `input` items; the backend model gets it with our summarising prompt as the last user message.
The summary is sealed (AES-256-GCM, `crypto.CompactionCipher`: its own key, bound to the tenant) in
a `compaction` item, returned after the context's user messages. Passing that item back as input
restores the summary as a user message (`ResponsesService.restored`). Without
`response_api.encryption_key` compaction is refused (400 `compaction_unavailable`): an unsealed
summary presented as sealed would be worse. The compacted response is not stored (a new chain starts
from its output, sent back as input), so its id cannot be retrieved.

A create whose last input item is a `compaction_trigger` (how Codex compacts with a provider it
treats as OpenAI) is a compaction turn (`compaction_turn`): the same summary, answered as a
completed, unstored response whose one output item is the compaction item.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import aclosing
from dataclasses import dataclass

import msgspec

from responses_gateway.config import BackendSettings
from responses_gateway.errors import InvalidRequest, UpstreamError
from responses_gateway.ids import item_id, new_response_id
from responses_gateway.protocol.chat import ChatRequest, UserMessage
from responses_gateway.protocol.compaction import CompactedResponse, CompactRequest
from responses_gateway.protocol.events import (
    Event,
    OutputItemAdded,
    OutputItemDone,
    ResponseCompleted,
    ResponseCreated,
    ResponseInProgress,
)
from responses_gateway.protocol.items import Compaction, CompactionTrigger, Message
from responses_gateway.protocol.request import CreateRequest
from responses_gateway.protocol.response import InputTokensDetails, OutputTokensDetails, Usage
from responses_gateway.service import RequestContext, ResponsesService
from responses_gateway.translate.compaction import (
    SUMMARY_PROMPT,
    Sealed,
    chunk_text,
    retained_user_messages,
)
from responses_gateway.translate.request import messages_json
from responses_gateway.translate.response import new_response, read_usage

__all__ = ["compact", "compaction_turn", "is_compaction_turn"]

_encode = msgspec.json.Encoder().encode


@dataclass(slots=True)
class _Compacted:
    response_id: str
    created_at: int
    retained: list[Message]
    item: Compaction
    usage: Usage


async def compact(
    service: ResponsesService,
    req: CompactRequest,
    ctx: RequestContext,
    *,
    history: Sequence[bytes] | None = None,
) -> CompactedResponse:
    """Summarise a context and seal the summary in a compaction item.

    Args:
        history: the Chat history `previous_response_id` stands for, when the caller already has it
            (a WebSocket's own `store: false` turns); None reads it from the store (owner-checked).
    """
    done = await _compact(service, req, ctx, history)
    output: list[Message | Compaction] = [*done.retained, done.item]
    return CompactedResponse(id=done.response_id, created_at=done.created_at, output=output, usage=done.usage)


def is_compaction_turn(req: CreateRequest) -> bool:
    """A create whose last input item is a `compaction_trigger` (Codex's remote compaction)."""
    items = req.input
    return isinstance(items, list) and bool(items) and isinstance(items[-1], CompactionTrigger)


async def compaction_turn(
    service: ResponsesService,
    req: CreateRequest,
    ctx: RequestContext,
    *,
    history: Sequence[bytes] | None = None,
) -> bytes | list[Event]:
    """A create ending with a `compaction_trigger`: the context before it compacted, answered as a
    completed response whose one output item is the compaction item (events when streamed). The
    context is the chain, or the `conversation`'s items (the turn is not added to it), then the input.
    Its tools are not offered to the summarising model; it is never stored (`store: false` in it)."""
    assert isinstance(req.input, list)
    if history is None and req.conversation is not None:
        history = await service.conversation_history(req, ctx, service.upstream.backend_for(req.model))
    inner = CompactRequest(
        model=req.model,
        input=req.input[:-1],
        instructions=req.instructions,
        previous_response_id=req.previous_response_id,
    )
    done = await _compact(service, inner, ctx, history)
    response = new_response(req, done.response_id, done.created_at)
    response.store = False
    started = msgspec.structs.replace(response)  # the `in_progress` snapshot the first events carry
    response.status, response.completed_at = "completed", done.created_at
    response.output, response.usage = [done.item], done.usage
    if not req.stream:
        return _encode(response)
    return [
        ResponseCreated(sequence_number=0, response=started),
        ResponseInProgress(sequence_number=1, response=started),
        OutputItemAdded(sequence_number=2, output_index=0, item=done.item),
        OutputItemDone(sequence_number=3, output_index=0, item=done.item),
        ResponseCompleted(sequence_number=4, response=response),
    ]


async def _compact(
    service: ResponsesService, req: CompactRequest, ctx: RequestContext, history: Sequence[bytes] | None
) -> _Compacted:
    cipher = service.compaction_cipher
    if cipher is None:
        raise InvalidRequest(
            "Compaction is not available on this gateway: it needs response_api.encryption_key "
            "to seal summaries.",
            code="compaction_unavailable",
        )
    backend = service.upstream.backend_for(req.model)  # an unknown model is a 404 before any store read
    prev = req.previous_response_id
    if history is None:
        history = await service.chain(prev, ctx) if prev else []
    response_id = new_response_id(prev)
    items = await service.input_items(req.input, response_id, ctx)
    if not history and not items:
        raise InvalidRequest(
            "Nothing to compact: give 'input' items or a 'previous_response_id'.", param="input"
        )
    current, _ = await service.rendered(service.restored(items, ctx), backend)
    messages = messages_json(req.instructions, history, [*current, UserMessage(SUMMARY_PROMPT)])
    body = ChatRequest(model=req.model, messages=msgspec.Raw(messages), stream=True)
    summary, usage = await _summarise(service, backend, body, ctx)
    created_at = int(service.clock())
    token = cipher.seal(_encode(Sealed(summary=summary, model=req.model, created_at=created_at)), ctx.owner)
    item = Compaction(encrypted_content=token, id=item_id("cmp", response_id, 0))
    retained = retained_user_messages(history, items, response_id)
    return _Compacted(response_id, created_at, retained, item, usage)


async def _summarise(
    service: ResponsesService, backend: BackendSettings, body: ChatRequest, ctx: RequestContext
) -> tuple[str, Usage]:
    """The backend's summary (at most `limits.max_completion_bytes`) and the usage it reported."""
    backend_name = backend.name
    limit = service.max_completion_bytes
    parts: list[str] = []
    size = 0
    usage: Usage | None = None
    chunks = service.upstream.stream_chat(backend, body, authorization=ctx.authorization)
    async with aclosing(chunks):
        async for chunk in chunks:
            text = chunk_text(chunk)
            if text:
                parts.append(text)
                size += len(text.encode())
                if size > limit:
                    raise UpstreamError(
                        f"Backend '{backend_name}' wrote a summary longer than "
                        f"limits.max_completion_bytes ({limit})."
                    )
            usage = read_usage(chunk.usage) or usage
    summary = "".join(parts).strip()
    if not summary:
        raise UpstreamError(f"Backend '{backend_name}' returned an empty summary.")
    return summary, usage or Usage(0, InputTokensDetails(), 0, OutputTokensDetails(), 0)
