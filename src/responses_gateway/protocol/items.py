"""Input and output items of the Responses API, and their content parts, as tagged msgspec Structs.

Items and parts are tagged unions on `type`: decoding picks the class and validates in one pass.
Optional fields default to None and are left out when encoded (`omit_defaults`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

Role = Literal["user", "system", "developer", "assistant"]
Phase = Literal["commentary", "final_answer"]
NonEmpty = Annotated[str, Meta(min_length=1)]


class _Part(Struct, tag_field="type", omit_defaults=True):
    pass


class InputText(_Part, tag="input_text"):
    text: str


class OutputText(_Part, tag="output_text"):
    text: str
    annotations: list[dict[str, Any]] | None = None  # open: citation objects we pass through
    logprobs: list[dict[str, Any]] | None = None


class PlainText(_Part, tag="text"):
    text: str


class SummaryText(_Part, tag="summary_text"):
    text: str


class ReasoningText(_Part, tag="reasoning_text"):
    text: str


class Refusal(_Part, tag="refusal"):
    refusal: str


class InputImage(_Part, tag="input_image"):
    image_url: str | None = None
    file_id: str | None = None
    detail: str | None = None


class InputFile(Struct, tag_field="type", tag="input_file", omit_defaults=True, frozen=True):
    """Frozen, so hashable: a part is the key of what it became for the backend (`render`)."""

    file_id: str | None = None
    file_data: str | None = None
    file_url: str | None = None
    filename: str | None = None


ContentPart = InputText | OutputText | PlainText | SummaryText | Refusal | InputImage | InputFile


class _Item(Struct, tag_field="type", omit_defaults=True):
    pass


class Message(_Item, tag="message"):
    role: Role
    content: str | list[ContentPart] = ""
    id: str | None = None
    status: str | None = None
    phase: Phase | None = None  # an assistant message's label; kept and listed, never sent to a backend


class FunctionCall(_Item, tag="function_call"):
    call_id: str
    name: str
    arguments: str
    id: str | None = None
    status: str | None = None
    namespace: str | None = None


class FunctionCallOutput(_Item, tag="function_call_output"):
    call_id: str
    output: str | list[ContentPart]
    id: str | None = None
    status: str | None = None


class CustomToolCall(_Item, tag="custom_tool_call"):
    call_id: str
    name: str
    input: str
    id: str | None = None
    status: str | None = None


class CustomToolCallOutput(_Item, tag="custom_tool_call_output"):
    call_id: str
    output: str | list[ContentPart]
    id: str | None = None
    status: str | None = None


class ToolSearchCall(_Item, tag="tool_search_call"):
    call_id: str
    arguments: Any = None  # open: the search arguments the model chose
    execution: str | None = None
    id: str | None = None
    status: str | None = None


class ToolSearchOutput(_Item, tag="tool_search_output"):
    call_id: str | None = None
    tools: list[dict[str, Any]] | None = None  # open: tool definitions found by the client
    execution: str | None = None
    id: str | None = None
    status: str | None = None


class Reasoning(_Item, tag="reasoning"):
    id: str | None = None
    summary: list[SummaryText] | None = None
    content: list[ReasoningText] | None = None
    encrypted_content: str | None = None
    status: str | None = None


class Compaction(_Item, tag="compaction"):
    """A summary of earlier context sealed by `POST /v1/responses/compact` (`compaction.py`)."""

    encrypted_content: NonEmpty
    id: str | None = None
    created_by: str | None = None


class CompactionTrigger(_Item, tag="compaction_trigger"):
    """ "Compact the context here": the last input item of a create that is a compaction turn."""

    id: str | None = None


class ItemReference(_Item, tag="item_reference"):
    id: NonEmpty


Item = (
    Message
    | FunctionCall
    | FunctionCallOutput
    | CustomToolCall
    | CustomToolCallOutput
    | ToolSearchCall
    | ToolSearchOutput
    | Reasoning
    | Compaction
)
InputItem = Item | ItemReference | CompactionTrigger
OutputItem = Message | FunctionCall | CustomToolCall | ToolSearchCall | Reasoning | Compaction
CallItem = FunctionCall | CustomToolCall | ToolSearchCall
