"""The create request (`POST /v1/responses`) as one Struct; unknown top-level fields are ignored."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

from responses_gateway.protocol.items import InputItem
from responses_gateway.protocol.tools import Tool, ToolChoice

Int32 = 2**31 - 1
# Its counts and lengths are checked against the configured limits (`parse.check_limits`).
Metadata = dict[str, str]


class FormatText(Struct, tag_field="type", tag="text"):
    pass


class FormatJSONObject(Struct, tag_field="type", tag="json_object"):
    pass


class FormatJSONSchema(Struct, tag_field="type", tag="json_schema", omit_defaults=True):
    name: str
    schema: dict[str, Any]  # open: a JSON schema
    strict: bool | None = None
    description: str | None = None


TextFormat = FormatText | FormatJSONObject | FormatJSONSchema


class TextConfig(Struct, omit_defaults=True):
    format: TextFormat | None = None
    verbosity: str | None = None


class ConversationRef(Struct):
    """`conversation: {"id": ...}` of a create request, and of the Response object."""

    id: Annotated[str, Meta(min_length=1)]


Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]


class ReasoningConfig(Struct):
    effort: Effort | None = None
    summary: str | None = None


class CreateRequest(Struct, kw_only=True):
    """Every field of a create request the gateway knows; null means absent."""

    model: Annotated[str, Meta(min_length=1)]
    input: str | list[InputItem] | None = None
    instructions: str | None = None
    previous_response_id: Annotated[str, Meta(min_length=1)] | None = None
    store: bool | None = None
    stream: bool | None = None
    stream_options: dict[str, Any] | None = None  # open: only echoed by OpenAI, unused here
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    temperature: Annotated[float, Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    presence_penalty: Annotated[float, Meta(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Meta(ge=-2, le=2)] | None = None
    max_output_tokens: Annotated[int, Meta(ge=1, le=Int32)] | None = None
    max_tool_calls: Annotated[int, Meta(ge=1, le=Int32)] | None = None
    top_logprobs: Annotated[int, Meta(ge=0, le=20)] | None = None
    metadata: Metadata | None = None
    text: TextConfig | None = None
    reasoning: ReasoningConfig | None = None
    user: str | None = None
    include: list[str] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    # hints a Chat backend cannot use: accepted, echoed, best effort (docs/API.md)
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    safety_identifier: str | None = None
    service_tier: str | None = None
    # would change the result and cannot be honoured: parsed so that a set value is a 400
    background: bool | None = None
    conversation: Annotated[str, Meta(min_length=1)] | ConversationRef | None = None
    prompt: dict[str, Any] | None = None  # open: prompt templates are not supported
