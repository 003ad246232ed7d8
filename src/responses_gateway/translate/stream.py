"""Chat Completions chunks -> Responses stream events: one small class per kind of output item.

Each item kind (`ReasoningItem`, `MessageItem`, `CallItem`) emits its own `added`, deltas and
`done` events; the translator opens and closes them in order (reasoning, message, each tool call).
`finish()` / `fail()` return the settled Response; the terminal event is made separately
(`terminal_event`) so the service can store first. With `events=False` (a non-streaming create) no
event is built at all: the items only accumulate their text.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import msgspec

from responses_gateway.protocol.chat import ChatChunk, Delta, ToolCallDelta
from responses_gateway.protocol.events import (
    ErrorEvent,
    Event,
    OutputItemDone,
    ResponseCompleted,
    ResponseCreated,
    ResponseFailed,
    ResponseIncomplete,
    ResponseInProgress,
)
from responses_gateway.protocol.items import (
    OutputItem,
)
from responses_gateway.protocol.response import IncompleteDetails, Response, ResponseError, Status, Usage
from responses_gateway.translate.output_items import (
    CallItem,
    MessageItem,
    OpenItem,
    Out,
    ReasoningItem,
    Sealer,
)
from responses_gateway.translate.response import read_usage
from responses_gateway.translate.tools import ToolMap

log = logging.getLogger("responses_gateway.stream")

IdFactory = Callable[[str, int], str]
_PREFIX = {"function_call": "fc", "custom_tool_call": "ctc", "tool_search_call": "tsc"}


class StreamTranslator:
    """Feeds on chat chunks and returns the Responses events they make."""

    def __init__(
        self,
        response: Response,
        item_id: IdFactory,
        tools: ToolMap,
        *,
        seal: Sealer | None = None,
        events: bool = True,
        summary: bool = False,
        spec_names: bool = False,
    ) -> None:
        self._base = response
        self._item_id = item_id
        self._tools = tools
        self._seal = seal  # set when the request asked for reasoning.encrypted_content
        self._summary = summary  # the request asked for reasoning.summary: reasoning is also its summary
        self._spec_names = spec_names  # reasoning events under the Open Responses spec's names
        self._out = Out(events)
        self._output: list[OutputItem] = []
        self._open: OpenItem | None = None
        self._calls: dict[int, CallItem] = {}
        self._finish: str | None = None
        self._usage: Usage | None = None
        # UTF-8 bytes of text, refusal, reasoning and tool arguments received: what
        # `limits.max_completion_bytes` bounds (the service stops reading beyond it, then `cut()`s)
        self.completion_bytes = 0

    def _snapshot(self, status: Status | None = None) -> Response:
        return msgspec.structs.replace(
            self._base, output=list(self._output), status=status or self._base.status
        )

    def start(self) -> list[Event]:
        if not self._out.on:
            return []
        return [
            ResponseCreated(sequence_number=self._out.next(), response=self._snapshot()),
            ResponseInProgress(sequence_number=self._out.next(), response=self._snapshot()),
        ]

    def _close(self, status: str = "completed") -> None:
        item, self._open = self._open, None
        if item is not None:
            done = item.done(status, self._out)
            self._output.append(done)
            if self._out.on:
                self._out.events.append(
                    OutputItemDone(sequence_number=self._out.next(), output_index=item.index, item=done)
                )

    def _begin(self, item: OpenItem) -> None:
        self._close()
        self._open = item
        item.added(self._out)

    # -- feeding ----------------------------------------------------------------------------------

    def feed(self, chunk: ChatChunk) -> list[Event]:
        usage = read_usage(chunk.usage)
        if usage is not None:
            self._usage = usage
        for choice in chunk.choices or ():
            if choice.index != 0:
                continue
            delta = choice.delta or choice.message
            if delta is not None:
                self._feed_delta(delta)
            if choice.finish_reason:
                self._finish = choice.finish_reason
        return self._out.take()

    def _feed_delta(self, delta: Delta) -> None:
        reasoning = delta.reasoning_content or delta.reasoning
        if reasoning:
            self.completion_bytes += _size(reasoning)
            if not isinstance(self._open, ReasoningItem):
                index = len(self._output) + (self._open is not None)
                self._begin(
                    ReasoningItem(
                        index, self._item_id("rs", index), self._seal, self._summary, self._spec_names
                    )
                )
            assert isinstance(self._open, ReasoningItem)
            self._open.delta(reasoning, self._out)
        for piece, refusal in ((delta.content, False), (delta.refusal, True)):
            if not piece:
                continue
            self.completion_bytes += _size(piece)
            if not isinstance(self._open, MessageItem) or self._open.refusal != refusal:
                index = len(self._output) + (self._open is not None)
                self._begin(MessageItem(index, self._item_id("msg", index), refusal))
            assert isinstance(self._open, MessageItem)
            self._open.delta(piece, self._out)
        for pos, tc in enumerate(delta.tool_calls or ()):
            self._feed_call(tc, pos)

    def _feed_call(self, tc: ToolCallDelta, pos: int) -> None:
        """One tool-call delta. Calls are keyed by their `index` (by position when it is missing); a
        new `id` at a known index is a new call (backends that number every call 0)."""
        key = tc.index if tc.index is not None else pos
        call = self._calls.get(key)
        fn = tc.function
        if call is None or (fn is not None and fn.name and tc.id and tc.id != call.call_id):
            index = len(self._output) + (self._open is not None)
            target = self._tools.target((fn.name if fn else None) or "")
            call_id = tc.id or self._item_id("call", index)
            call = CallItem(index, self._item_id(_PREFIX[target.kind], index), call_id, target)
            self._calls[key] = call
            self._begin(call)
        piece = (fn.arguments if fn else None) or ""
        if not piece:
            return
        self.completion_bytes += _size(piece)
        if call is not self._open:
            # its item is already done (and sent): interleaved arguments cannot be streamed in order
            log.warning(
                "dropping arguments for tool call %s: they arrived after the next item began", call.call_id
            )
            return
        call.delta(piece, self._out)

    # -- the end ----------------------------------------------------------------------------------

    def cut(self) -> None:
        """The completion reached its size limit and the backend was left: the response settles as
        `incomplete` (reason `max_output_tokens`), as when the backend itself stops at a length."""
        self._finish = "length"

    def finish(self, completed_at: int) -> tuple[Response, list[Event]]:
        """Close every open item; the settled response and the events that closed them."""
        incomplete = self._finish in ("length", "content_filter")
        self._close("incomplete" if incomplete else "completed")
        response = self._snapshot("incomplete" if incomplete else "completed")
        response.usage = self._usage
        if incomplete:
            reason = "max_output_tokens" if self._finish == "length" else "content_filter"
            response.incomplete_details = IncompleteDetails(reason)
        else:
            response.completed_at = completed_at
        return response, self._out.take()

    def fail(self, code: str, message: str, status: Status = "failed") -> tuple[Response, list[Event]]:
        """The backend died or the client left: close items as incomplete, settle as failed/cancelled."""
        self._close("incomplete")
        response = self._snapshot(status)
        response.usage = self._usage
        if status == "failed":
            response.error = ResponseError(code, message)
        return response, self._out.take()

    def terminal_event(self, response: Response) -> Event:
        seq = self._out.next()
        if response.status == "completed":
            return ResponseCompleted(sequence_number=seq, response=response)
        if response.status == "incomplete":
            return ResponseIncomplete(sequence_number=seq, response=response)
        return ResponseFailed(sequence_number=seq, response=response)

    def error_event(self, code: str, message: str) -> Event:
        return ErrorEvent(sequence_number=self._out.next(), code=code, message=message)


def _size(text: str) -> int:
    """UTF-8 length of `text` (without encoding it when it is ASCII, the common case)."""
    return len(text) if text.isascii() else len(text.encode())
