"""The output items of a stream, one small class per kind: each emits its own `added`, deltas and
`done` events (or builds none when events are off) and makes its final item."""

from __future__ import annotations

from collections.abc import Callable

from responses_gateway.protocol.events import (
    ContentPartAdded,
    ContentPartDone,
    CustomToolCallInputDelta,
    CustomToolCallInputDone,
    Event,
    FunctionCallArgumentsDelta,
    FunctionCallArgumentsDone,
    OutputItemAdded,
    OutputTextDelta,
    OutputTextDone,
    ReasoningDelta,
    ReasoningDone,
    ReasoningSummaryPartAdded,
    ReasoningSummaryPartDone,
    ReasoningSummaryTextDelta,
    ReasoningSummaryTextDone,
    ReasoningTextDelta,
    ReasoningTextDone,
    RefusalDelta,
    RefusalDone,
)
from responses_gateway.protocol.items import (
    CustomToolCall,
    FunctionCall,
    Message,
    OutputItem,
    OutputText,
    Reasoning,
    ReasoningText,
    Refusal,
    SummaryText,
    ToolSearchCall,
)
from responses_gateway.translate.tools import ToolTarget, custom_input, parse_arguments

Sealer = Callable[[Reasoning], str]


class Out:
    """Where items put their events: numbered in order, or not built at all when `on` is False."""

    __slots__ = ("events", "on", "seq")

    def __init__(self, on: bool) -> None:
        self.on = on
        self.seq = 0
        self.events: list[Event] = []

    def next(self) -> int:
        self.seq += 1
        return self.seq - 1

    def take(self) -> list[Event]:
        events, self.events = self.events, []
        return events


class TextItem:
    """An item made of one streamed text part (reasoning or an assistant message)."""

    __slots__ = ("id", "index", "text")

    def __init__(self, index: int, item_id: str) -> None:
        self.index = index
        self.id = item_id
        self.text: list[str] = []


class ReasoningItem(TextItem):
    """The backend's reasoning as a `reasoning_text` part; with `summary` (the request asked for
    `reasoning.summary`) the same text is also its one `summary_text` part, streamed alongside:
    each delta is a summary delta then a reasoning_text delta (docs/API.md "Reasoning summaries")."""

    __slots__ = ("delta_event", "done_event", "seal", "summary")

    def __init__(
        self, index: int, item_id: str, seal: Sealer | None, summary: bool = False, spec_names: bool = False
    ) -> None:
        super().__init__(index, item_id)
        self.seal = seal
        self.summary = summary
        # OpenAI's event names by default; the Open Responses spec's with `spec_names`
        self.delta_event: type[ReasoningTextDelta | ReasoningDelta] = (
            ReasoningDelta if spec_names else ReasoningTextDelta
        )
        self.done_event: type[ReasoningTextDone | ReasoningDone] = (
            ReasoningDone if spec_names else ReasoningTextDone
        )

    def added(self, out: Out) -> None:
        if out.on:
            item = Reasoning(id=self.id, summary=[], content=[], status="in_progress")
            out.events.append(OutputItemAdded(sequence_number=out.next(), output_index=self.index, item=item))
            if self.summary:
                out.events.append(
                    ReasoningSummaryPartAdded(
                        sequence_number=out.next(),
                        item_id=self.id,
                        output_index=self.index,
                        summary_index=0,
                        part=SummaryText(""),
                    )
                )
            out.events.append(self._part(ContentPartAdded, out, ReasoningText("")))

    def _part(self, cls: type[ContentPartAdded | ContentPartDone], out: Out, part: ReasoningText) -> Event:
        return cls(
            sequence_number=out.next(), item_id=self.id, output_index=self.index, content_index=0, part=part
        )

    def delta(self, piece: str, out: Out) -> None:
        self.text.append(piece)
        if out.on:
            if self.summary:
                out.events.append(
                    ReasoningSummaryTextDelta(
                        sequence_number=out.next(),
                        item_id=self.id,
                        output_index=self.index,
                        summary_index=0,
                        delta=piece,
                    )
                )
            out.events.append(
                self.delta_event(
                    sequence_number=out.next(),
                    item_id=self.id,
                    output_index=self.index,
                    content_index=0,
                    delta=piece,
                )
            )

    def done(self, status: str, out: Out) -> OutputItem:
        text = "".join(self.text)
        summary = [SummaryText(text)] if self.summary else []
        item = Reasoning(id=self.id, summary=summary, content=[ReasoningText(text)], status=status)
        if self.seal is not None:
            item.encrypted_content = self.seal(item)
        if out.on:
            if self.summary:
                self._summary_done(text, status, out)
            out.events.append(
                self.done_event(
                    sequence_number=out.next(),
                    item_id=self.id,
                    output_index=self.index,
                    content_index=0,
                    text=text,
                )
            )
            out.events.append(self._part(ContentPartDone, out, ReasoningText(text)))
        return item

    def _summary_done(self, text: str, status: str, out: Out) -> None:
        out.events.append(
            ReasoningSummaryTextDone(
                sequence_number=out.next(),
                item_id=self.id,
                output_index=self.index,
                summary_index=0,
                text=text,
            )
        )
        out.events.append(
            ReasoningSummaryPartDone(
                sequence_number=out.next(),
                item_id=self.id,
                output_index=self.index,
                summary_index=0,
                part=SummaryText(text),
                status="incomplete" if status == "incomplete" else None,
            )
        )


class MessageItem(TextItem):
    __slots__ = ("refusal",)

    def __init__(self, index: int, item_id: str, refusal: bool) -> None:
        super().__init__(index, item_id)
        self.refusal = refusal

    def _new_part(self, text: str) -> OutputText | Refusal:
        return Refusal(text) if self.refusal else OutputText(text, [], [])

    def added(self, out: Out) -> None:
        if out.on:
            item = Message(role="assistant", content=[], id=self.id, status="in_progress")
            out.events.append(OutputItemAdded(sequence_number=out.next(), output_index=self.index, item=item))
            out.events.append(
                ContentPartAdded(
                    sequence_number=out.next(),
                    item_id=self.id,
                    output_index=self.index,
                    content_index=0,
                    part=self._new_part(""),
                )
            )

    def delta(self, piece: str, out: Out) -> None:
        self.text.append(piece)
        if not out.on:
            return
        seq, idx = out.next(), self.index
        if self.refusal:
            out.events.append(
                RefusalDelta(
                    sequence_number=seq, item_id=self.id, output_index=idx, content_index=0, delta=piece
                )
            )
        else:
            out.events.append(
                OutputTextDelta(
                    sequence_number=seq,
                    item_id=self.id,
                    output_index=idx,
                    content_index=0,
                    delta=piece,
                    logprobs=[],
                )
            )

    def done(self, status: str, out: Out) -> OutputItem:
        text = "".join(self.text)
        if out.on:
            seq, idx = out.next(), self.index
            if self.refusal:
                out.events.append(
                    RefusalDone(
                        sequence_number=seq, item_id=self.id, output_index=idx, content_index=0, refusal=text
                    )
                )
            else:
                out.events.append(
                    OutputTextDone(
                        sequence_number=seq,
                        item_id=self.id,
                        output_index=idx,
                        content_index=0,
                        text=text,
                        logprobs=[],
                    )
                )
            out.events.append(
                ContentPartDone(
                    sequence_number=out.next(),
                    item_id=self.id,
                    output_index=idx,
                    content_index=0,
                    part=self._new_part(text),
                )
            )
        return Message(role="assistant", content=[self._new_part(text)], id=self.id, status=status)


class CallItem:
    __slots__ = ("args", "call_id", "id", "index", "target")

    def __init__(self, index: int, item_id: str, call_id: str, target: ToolTarget) -> None:
        self.index = index
        self.id = item_id
        self.call_id = call_id
        self.target = target
        self.args: list[str] = []

    def item(self, status: str) -> OutputItem:
        args, t = "".join(self.args), self.target
        if t.kind == "custom_tool_call":
            value = custom_input(args) if status != "in_progress" else ""
            return CustomToolCall(call_id=self.call_id, name=t.name, input=value, id=self.id, status=status)
        if t.kind == "tool_search_call":
            return ToolSearchCall(
                call_id=self.call_id,
                arguments=parse_arguments(args),
                execution="client",
                id=self.id,
                status=status,
            )
        return FunctionCall(
            call_id=self.call_id,
            name=t.name,
            arguments=args,
            id=self.id,
            status=status,
            namespace=t.namespace,
        )

    def added(self, out: Out) -> None:
        if out.on:
            item = self.item("in_progress")
            out.events.append(OutputItemAdded(sequence_number=out.next(), output_index=self.index, item=item))

    def delta(self, piece: str, out: Out) -> None:
        self.args.append(piece)
        if out.on and self.target.kind == "function_call":
            out.events.append(
                FunctionCallArgumentsDelta(
                    sequence_number=out.next(), item_id=self.id, output_index=self.index, delta=piece
                )
            )

    def done(self, status: str, out: Out) -> OutputItem:
        item = self.item(status)
        if not out.on:
            return item
        idx = self.index
        if isinstance(item, CustomToolCall):
            if item.input:
                out.events.append(
                    CustomToolCallInputDelta(
                        sequence_number=out.next(), item_id=self.id, output_index=idx, delta=item.input
                    )
                )
            out.events.append(
                CustomToolCallInputDone(
                    sequence_number=out.next(), item_id=self.id, output_index=idx, input=item.input
                )
            )
        elif isinstance(item, FunctionCall):
            out.events.append(
                FunctionCallArgumentsDone(
                    sequence_number=out.next(),
                    item_id=self.id,
                    output_index=idx,
                    name=item.name,
                    arguments=item.arguments,
                )
            )
        return item


OpenItem = ReasoningItem | MessageItem | CallItem
