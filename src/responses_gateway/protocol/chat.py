"""The Chat Completions subset the gateway sends (request, messages) and receives (stream chunks).

Chunks are decoded leniently where backends differ: `usage` is kept raw and read separately, so a
malformed usage is dropped (not a failed response); any other malformed field fails the chunk.
"""

from __future__ import annotations

from typing import Any, Literal

from msgspec import Raw, Struct


class ImageURL(Struct, omit_defaults=True):
    url: str
    detail: str | None = None


class ChatText(Struct, tag_field="type", tag="text"):
    text: str


class ChatImage(Struct, tag_field="type", tag="image_url"):
    image_url: ImageURL


class ChatFileData(Struct, omit_defaults=True):
    file_data: str | None = None  # a data URL (`data:application/pdf;base64,...`)
    filename: str | None = None


class ChatFile(Struct, tag_field="type", tag="file"):
    """A file for a backend that reads them itself (`backends[].file_inputs: passthrough`)."""

    file: ChatFileData


UserPart = ChatText | ChatImage | ChatFile


class ChatFunction(Struct):
    name: str
    arguments: str


class ChatToolCall(Struct):
    """Encoded as `{"id":…,"type":"function","function":{…}}`: `id` first, which `has_call` relies on."""

    id: str
    function: ChatFunction
    type: Literal["function"] = "function"


class SystemMessage(Struct, tag_field="role", tag="system"):
    content: str


class UserMessage(Struct, tag_field="role", tag="user"):
    content: str | list[UserPart]


class AssistantMessage(Struct, tag_field="role", tag="assistant", omit_defaults=True):
    content: str | None
    tool_calls: list[ChatToolCall] | None = None


class ToolMessage(Struct, tag_field="role", tag="tool"):
    tool_call_id: str
    content: str


ChatMessage = SystemMessage | UserMessage | AssistantMessage | ToolMessage


class ChatFunctionDef(Struct, omit_defaults=True):
    name: str
    parameters: dict[str, Any]  # open: a JSON schema
    description: str | None = None
    strict: bool | None = None


class ChatTool(Struct, tag_field="type", tag="function"):
    function: ChatFunctionDef


class ChatFunctionName(Struct):
    name: str


class ChatNamedToolChoice(Struct, tag_field="type", tag="function"):
    function: ChatFunctionName


class ChatJSONSchema(Struct, omit_defaults=True):
    name: str
    schema: dict[str, Any]  # open: a JSON schema
    strict: bool | None = None
    description: str | None = None


class FormatJSONObject(Struct, tag_field="type", tag="json_object"):
    pass


class FormatJSONSchema(Struct, tag_field="type", tag="json_schema"):
    json_schema: ChatJSONSchema


class ChatRequest(Struct, omit_defaults=True):
    """The body sent upstream; `messages` is a JSON array already encoded (history joined as bytes)."""

    model: str
    messages: Raw
    stream: bool  # no default: omit_defaults would leave a default out of the JSON
    stream_options: dict[str, bool] | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    user: str | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    response_format: FormatJSONObject | FormatJSONSchema | None = None
    reasoning_effort: str | None = None
    tools: list[ChatTool] | None = None
    tool_choice: str | ChatNamedToolChoice | None = None
    parallel_tool_calls: bool | None = None


class TokenizeRequest(Struct, omit_defaults=True):
    """A chat request to count, as vLLM's `POST /tokenize` takes it (answered with `{"count": N, ...}`)."""

    model: str
    messages: Raw
    add_generation_prompt: bool  # no default: omit_defaults would leave it out
    tools: list[ChatTool] | None = None


class TokenizeAnswer(Struct):
    count: int


_ABSENT = Raw(b"")


def present(raw: Raw) -> bool:
    """Whether a raw field of a chunk was sent with a value (not absent, not null)."""
    return bool(raw) and bytes(raw) != b"null"


# -- what comes back ------------------------------------------------------------------------------


class FunctionDelta(Struct):
    name: str | None = None
    arguments: str | None = None


class ToolCallDelta(Struct):
    index: int | None = None
    id: str | None = None
    type: str | None = None
    function: FunctionDelta | None = None


class Delta(Struct):
    role: str | None = None
    content: str | None = None
    refusal: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    tool_calls: list[ToolCallDelta] | None = None


class ChunkChoice(Struct):
    index: int = 0
    delta: Delta | None = None
    message: Delta | None = None  # a whole completion from a backend that ignored stream:true
    finish_reason: str | None = None


class PromptDetails(Struct):
    cached_tokens: int | None = None


class CompletionDetails(Struct):
    reasoning_tokens: int | None = None


class ChatUsage(Struct):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    prompt_tokens_details: PromptDetails | None = None
    completion_tokens_details: CompletionDetails | None = None


class ChatChunk(Struct):
    id: str | None = None
    object: str | None = None
    model: str | None = None
    choices: list[ChunkChoice] | None = None
    # kept raw (empty when absent; msgspec's Raw cannot be in a union): usage is read leniently
    # by `read_usage`; error and message are an in-stream error (message: vLLM's older shape)
    usage: Raw = _ABSENT
    error: Raw = _ABSENT
    message: Raw = _ABSENT
