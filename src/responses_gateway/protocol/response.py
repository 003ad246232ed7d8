"""The Response object: every key the Open Responses schema requires, in one Struct."""

from __future__ import annotations

from typing import Literal

from msgspec import Struct

from responses_gateway.protocol.items import OutputItem
from responses_gateway.protocol.request import ConversationRef, Metadata, ReasoningConfig, TextConfig
from responses_gateway.protocol.tools import Tool, ToolChoice

Status = Literal["completed", "incomplete", "failed", "in_progress", "cancelled", "queued"]


class InputTokensDetails(Struct):
    cached_tokens: int = 0


class OutputTokensDetails(Struct):
    reasoning_tokens: int = 0


class Usage(Struct):
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int


class ResponseError(Struct):
    code: str
    message: str


class IncompleteDetails(Struct):
    reason: str


class Response(Struct, kw_only=True):
    id: str
    object: Literal["response"] = "response"
    created_at: int
    completed_at: int | None = None
    status: Status = "in_progress"
    background: bool = False
    error: ResponseError | None = None
    incomplete_details: IncompleteDetails | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    max_tool_calls: int | None = None
    model: str
    output: list[OutputItem]
    parallel_tool_calls: bool = True
    previous_response_id: str | None = None
    conversation: ConversationRef | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    reasoning: ReasoningConfig
    safety_identifier: str | None = None
    service_tier: str = "default"
    store: bool = True
    temperature: float = 1.0
    text: TextConfig
    tool_choice: ToolChoice = "auto"
    tools: list[Tool]
    top_logprobs: int = 0
    top_p: float = 1.0
    truncation: Literal["auto", "disabled"] = "disabled"
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    usage: Usage | None = None
    user: str | None = None
    metadata: Metadata


class Deleted(Struct):
    id: str
    object: Literal["response"] = "response"
    deleted: bool = True
