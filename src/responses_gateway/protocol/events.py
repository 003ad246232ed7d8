"""Stream events of a create (`event: <type>` + `data: <json>`), each a Struct tagged by `type`."""

from __future__ import annotations

from typing import Any, Literal

from msgspec import Struct

from responses_gateway.protocol.items import OutputItem, OutputText, ReasoningText, Refusal, SummaryText
from responses_gateway.protocol.response import Response


class _Event(Struct, tag_field="type", kw_only=True):
    sequence_number: int


class _Lifecycle(_Event):
    response: Response


class ResponseCreated(_Lifecycle, tag="response.created"):
    pass


class ResponseInProgress(_Lifecycle, tag="response.in_progress"):
    pass


class ResponseCompleted(_Lifecycle, tag="response.completed"):
    pass


class ResponseIncomplete(_Lifecycle, tag="response.incomplete"):
    pass


class ResponseFailed(_Lifecycle, tag="response.failed"):
    pass


class OutputItemAdded(_Event, tag="response.output_item.added"):
    output_index: int
    item: OutputItem


class OutputItemDone(_Event, tag="response.output_item.done"):
    output_index: int
    item: OutputItem


class _PartEvent(_Event):
    item_id: str
    output_index: int
    content_index: int


class ContentPartAdded(_PartEvent, tag="response.content_part.added"):
    part: OutputText | Refusal | ReasoningText


class ContentPartDone(_PartEvent, tag="response.content_part.done"):
    part: OutputText | Refusal | ReasoningText


class OutputTextDelta(_PartEvent, tag="response.output_text.delta"):
    delta: str
    logprobs: list[dict[str, Any]]


class OutputTextDone(_PartEvent, tag="response.output_text.done"):
    text: str
    logprobs: list[dict[str, Any]]


class RefusalDelta(_PartEvent, tag="response.refusal.delta"):
    delta: str


class RefusalDone(_PartEvent, tag="response.refusal.done"):
    refusal: str


class ReasoningTextDelta(_PartEvent, tag="response.reasoning_text.delta"):
    delta: str


class ReasoningTextDone(_PartEvent, tag="response.reasoning_text.done"):
    text: str


class ReasoningDelta(_PartEvent, tag="response.reasoning.delta"):
    """`ReasoningTextDelta` under the Open Responses spec's name
    (`response_api.reasoning_event_names: open_responses`)."""

    delta: str


class ReasoningDone(_PartEvent, tag="response.reasoning.done"):
    """`ReasoningTextDone` under the Open Responses spec's name."""

    text: str


class _SummaryEvent(_Event):
    item_id: str
    output_index: int
    summary_index: int


class ReasoningSummaryPartAdded(_SummaryEvent, tag="response.reasoning_summary_part.added"):
    part: SummaryText


class ReasoningSummaryPartDone(_SummaryEvent, tag="response.reasoning_summary_part.done", omit_defaults=True):
    part: SummaryText
    status: Literal["incomplete"] | None = None  # set when the reasoning was cut short


class ReasoningSummaryTextDelta(_SummaryEvent, tag="response.reasoning_summary_text.delta"):
    delta: str


class ReasoningSummaryTextDone(_SummaryEvent, tag="response.reasoning_summary_text.done"):
    text: str


class _ItemEvent(_Event):
    item_id: str
    output_index: int


class FunctionCallArgumentsDelta(_ItemEvent, tag="response.function_call_arguments.delta"):
    delta: str


class FunctionCallArgumentsDone(_ItemEvent, tag="response.function_call_arguments.done"):
    name: str
    arguments: str


class CustomToolCallInputDelta(_ItemEvent, tag="response.custom_tool_call_input.delta"):
    delta: str


class CustomToolCallInputDone(_ItemEvent, tag="response.custom_tool_call_input.done"):
    input: str


class ErrorPayload(Struct):
    type: str
    code: str | None
    message: str
    param: str | None


class ErrorEvent(_Event, tag="error"):
    """OpenAI's error event (`code`, `message`, `param` at the top, as its SDKs read them) that also
    carries the Open Responses spec's `error` object with the same values."""

    code: str
    message: str
    param: str | None = None
    error: ErrorPayload | None = None

    def __post_init__(self) -> None:
        if self.error is None:  # every error event on a stream is the server's (the request was valid)
            self.error = ErrorPayload("server_error", self.code, self.message, self.param)


Event = (
    ResponseCreated
    | ResponseInProgress
    | ResponseCompleted
    | ResponseIncomplete
    | ResponseFailed
    | OutputItemAdded
    | OutputItemDone
    | ContentPartAdded
    | ContentPartDone
    | OutputTextDelta
    | OutputTextDone
    | RefusalDelta
    | RefusalDone
    | ReasoningTextDelta
    | ReasoningTextDone
    | ReasoningDelta
    | ReasoningDone
    | ReasoningSummaryPartAdded
    | ReasoningSummaryPartDone
    | ReasoningSummaryTextDelta
    | ReasoningSummaryTextDone
    | FunctionCallArgumentsDelta
    | FunctionCallArgumentsDone
    | CustomToolCallInputDelta
    | CustomToolCallInputDone
    | ErrorEvent
)
TERMINAL = (ResponseCompleted, ResponseIncomplete, ResponseFailed)


def event_type(event: Event) -> str:
    """The `type` of an event (its tag)."""
    return str(type(event).__struct_config__.tag)
