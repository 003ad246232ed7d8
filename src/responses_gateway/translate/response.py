"""The Response object of a create, filled from the request; Chat usage -> Responses usage."""

from __future__ import annotations

import logging

import msgspec

from responses_gateway.protocol.chat import ChatUsage, present
from responses_gateway.protocol.request import (
    ConversationRef,
    CreateRequest,
    FormatText,
    ReasoningConfig,
    TextConfig,
)
from responses_gateway.protocol.response import InputTokensDetails, OutputTokensDetails, Response, Usage
from responses_gateway.protocol.tools import FunctionTool, Tool

log = logging.getLogger("responses_gateway.usage")
_decode_usage = msgspec.json.Decoder(ChatUsage).decode
_warned = False


def new_response(req: CreateRequest, response_id: str, created_at: int) -> Response:
    """The `in_progress` snapshot of a response, echoing the request's settings."""
    text = req.text or TextConfig()
    reasoning = req.reasoning or ReasoningConfig()
    return Response(
        id=response_id,
        created_at=created_at,
        background=req.background is True,
        instructions=req.instructions,
        max_output_tokens=req.max_output_tokens,
        max_tool_calls=req.max_tool_calls,
        model=req.model,
        output=[],
        parallel_tool_calls=req.parallel_tool_calls if req.parallel_tool_calls is not None else True,
        previous_response_id=req.previous_response_id,
        conversation=conversation_ref(req),
        prompt_cache_key=req.prompt_cache_key,
        prompt_cache_retention=req.prompt_cache_retention,
        reasoning=ReasoningConfig(reasoning.effort, reasoning.summary),
        safety_identifier=req.safety_identifier,
        service_tier=req.service_tier or "default",
        store=req.store if req.store is not None else True,
        temperature=req.temperature if req.temperature is not None else 1.0,
        text=TextConfig(text.format or FormatText(), text.verbosity),
        tool_choice=req.tool_choice or "auto",
        tools=reported_tools(req.tools) if req.tools else [],
        top_logprobs=req.top_logprobs or 0,
        top_p=req.top_p if req.top_p is not None else 1.0,
        truncation=req.truncation or "disabled",
        presence_penalty=req.presence_penalty or 0.0,
        frequency_penalty=req.frequency_penalty or 0.0,
        user=req.user,
        metadata=req.metadata or {},
    )


def reported_tools(tools: list[Tool]) -> list[Tool]:
    """The request's tools as the Response reports them: a function tool always carries `strict`.

    The backend got the client's `strict` as sent, and nothing when it was omitted, which Chat
    backends take as non-strict; so an omitted `strict` is reported as `false`, what was applied
    (docs/API.md, "Function tools and strict")."""
    return [
        FunctionTool(t.name, t.description, t.parameters, False)
        if isinstance(t, FunctionTool) and t.strict is None
        else t
        for t in tools
    ]


def conversation_ref(req: CreateRequest) -> ConversationRef | None:
    """The request's `conversation` (an id or `{"id": ...}`) as the Response object's `{"id": ...}`."""
    conv = req.conversation
    return ConversationRef(conv) if isinstance(conv, str) else conv


def read_usage(raw: msgspec.Raw) -> Usage | None:
    """Chat `usage` -> Responses `usage`. A malformed usage is dropped (logged once): losing a
    token count is better than failing a response the backend finished."""
    global _warned
    if not present(raw):
        return None
    try:
        usage = _decode_usage(raw)
    except msgspec.ValidationError as exc:
        if not _warned:
            _warned = True
            log.warning("ignoring a malformed usage from the backend (logged once): %s", exc)
        return None
    prompt = usage.prompt_tokens or 0
    completion = usage.completion_tokens or 0
    cached = (usage.prompt_tokens_details.cached_tokens or 0) if usage.prompt_tokens_details else 0
    details = usage.completion_tokens_details
    reasoning = (details.reasoning_tokens or 0) if details else 0
    return Usage(
        input_tokens=prompt,
        input_tokens_details=InputTokensDetails(cached),
        output_tokens=completion,
        output_tokens_details=OutputTokensDetails(reasoning),
        total_tokens=usage.total_tokens or prompt + completion,
    )
