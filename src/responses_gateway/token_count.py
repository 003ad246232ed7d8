"""Input token counts (`POST /v1/responses/input_tokens`): the create request translated exactly
as a create would be (history of `previous_response_id` or `conversation`, instructions, tools,
compaction items restored), then counted by the backend's own tokenizer. No HTTP here."""

from __future__ import annotations

from typing import Protocol

import msgspec

from responses_gateway.compaction import is_compaction_turn
from responses_gateway.config import BackendSettings
from responses_gateway.protocol.chat import ChatRequest
from responses_gateway.protocol.compaction import InputTokenCount
from responses_gateway.protocol.request import CreateRequest
from responses_gateway.service import RequestContext, ResponsesService

__all__ = ["Tokenizer", "count_input_tokens"]


class Tokenizer(Protocol):
    async def count_tokens(
        self, backend: BackendSettings, body: ChatRequest, *, authorization: str | None
    ) -> int: ...


async def count_input_tokens(
    service: ResponsesService, tokenizer: Tokenizer, req: CreateRequest, ctx: RequestContext
) -> InputTokenCount:
    """The prompt tokens the backend would see for `req` (nothing is generated or stored); for a
    compaction turn, those of the context it would compact."""
    if is_compaction_turn(req):
        assert isinstance(req.input, list)
        req = msgspec.structs.replace(req, input=req.input[:-1])
    prepared = await service.prepare(req, ctx)
    count = await tokenizer.count_tokens(
        prepared.backend, prepared.chat_body, authorization=ctx.authorization
    )
    return InputTokenCount(count)
