"""Chat Completions chunks -> Responses stream events: an explicit state machine.

Per output item: `output_item.added` → its deltas → its `.done` events → `output_item.done`.
Reasoning comes first, then the message (text or refusal), then each tool call. Every event dict is
new when emitted (nothing emitted is mutated later), so callers may serialise lazily.
The terminal event is made separately (`terminal_event`) so the service can store first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from responses_gateway.translate.response import Response, map_usage
from responses_gateway.translate.tools import ToolMap, custom_input, parse_arguments

log = logging.getLogger("responses_gateway.stream")

Event = dict[str, Any]
IdFactory = Callable[[str, int], str]
Sealer = Callable[[dict[str, Any]], str]

_PREFIX = {"function_call": "fc", "custom_tool_call": "ctc", "tool_search_call": "tsc"}


class _Call:
    __slots__ = ("args", "call_id", "chat_name", "index", "item_id", "kind", "name", "namespace")

    def __init__(self, index: int, item_id: str, call_id: str, chat_name: str, tools: ToolMap) -> None:
        target = tools.target(chat_name)
        self.index = index
        self.item_id = item_id
        self.call_id = call_id
        self.chat_name = chat_name
        self.kind = target.kind
        self.name = target.name
        self.namespace = target.namespace
        self.args: list[str] = []

    def item(self, status: str) -> dict[str, Any]:
        args = "".join(self.args)
        if self.kind == "custom_tool_call":
            return {
                "id": self.item_id,
                "type": "custom_tool_call",
                "status": status,
                "call_id": self.call_id,
                "name": self.name,
                "input": custom_input(args) if status else "",
            }
        if self.kind == "tool_search_call":
            return {
                "id": self.item_id,
                "type": "tool_search_call",
                "status": status,
                "call_id": self.call_id,
                "execution": "client",
                "arguments": parse_arguments(args),
            }
        item: dict[str, Any] = {
            "id": self.item_id,
            "type": "function_call",
            "status": status,
            "call_id": self.call_id,
            "name": self.name,
            "arguments": args,
        }
        if self.namespace:
            item["namespace"] = self.namespace
        return item


class StreamTranslator:
    """Feeds on chat chunks and returns the Responses events they make."""

    def __init__(
        self, response: Response, item_id: IdFactory, tools: ToolMap, *, seal: Sealer | None = None
    ) -> None:
        self.response = response
        self._item_id = item_id
        self._tools = tools
        self._seal = seal  # set when the request asked for reasoning.encrypted_content
        self._seq = 0
        self._output: list[dict[str, Any]] = []
        self._open: str | None = None  # "reasoning" | "message" | "call"
        self._index = -1
        self._text: list[str] = []
        self._part = "output_text"
        self._calls: dict[int, _Call] = {}
        self._call: _Call | None = None
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None

    def _ev(self, etype: str, **fields: Any) -> Event:
        ev = {"type": etype, "sequence_number": self._seq, **fields}
        self._seq += 1
        return ev

    def _snapshot(self, status: str | None = None) -> Response:
        snap = dict(self.response)
        snap["output"] = list(self._output)
        if status:
            snap["status"] = status
        return snap

    def start(self) -> list[Event]:
        return [
            self._ev("response.created", response=self._snapshot()),
            self._ev("response.in_progress", response=self._snapshot()),
        ]

    # -- opening and closing items ----------------------------------------------------------------

    def _close(self, status: str = "completed") -> list[Event]:
        kind, self._open = self._open, None
        if kind is None:
            return []
        idx = self._index
        evs: list[Event] = []
        if kind == "reasoning":
            text = "".join(self._text)
            rid = self._item_id("rs", idx)
            part: dict[str, Any] = {"type": "reasoning_text", "text": text}
            evs.append(
                self._ev(
                    "response.reasoning_text.done", item_id=rid, output_index=idx, content_index=0, text=text
                )
            )
            evs.append(
                self._ev(
                    "response.content_part.done", item_id=rid, output_index=idx, content_index=0, part=part
                )
            )
            item: dict[str, Any] = {
                "id": rid,
                "type": "reasoning",
                "status": status,
                "summary": [],
                "content": [dict(part)],
            }
            if self._seal is not None:
                item["encrypted_content"] = self._seal(item)
        elif kind == "message":
            text = "".join(self._text)
            mid = self._item_id("msg", idx)
            if self._part == "refusal":
                part = {"type": "refusal", "refusal": text}
                evs.append(
                    self._ev(
                        "response.refusal.done", item_id=mid, output_index=idx, content_index=0, refusal=text
                    )
                )
            else:
                part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
                evs.append(
                    self._ev(
                        "response.output_text.done",
                        item_id=mid,
                        output_index=idx,
                        content_index=0,
                        text=text,
                        logprobs=[],
                    )
                )
            evs.append(
                self._ev(
                    "response.content_part.done",
                    item_id=mid,
                    output_index=idx,
                    content_index=0,
                    part=dict(part),
                )
            )
            item = {"id": mid, "type": "message", "status": status, "role": "assistant", "content": [part]}
        else:
            call = self._call
            assert call is not None
            self._call = None
            item = call.item(status)
            args = "".join(call.args)
            if call.kind == "custom_tool_call":
                value = item["input"]
                if value:
                    evs.append(
                        self._ev(
                            "response.custom_tool_call_input.delta",
                            item_id=call.item_id,
                            output_index=idx,
                            delta=value,
                        )
                    )
                evs.append(
                    self._ev(
                        "response.custom_tool_call_input.done",
                        item_id=call.item_id,
                        output_index=idx,
                        input=value,
                    )
                )
            elif call.kind == "function_call":
                evs.append(
                    self._ev(
                        "response.function_call_arguments.done",
                        item_id=call.item_id,
                        output_index=idx,
                        name=call.name,
                        arguments=args,
                    )
                )
        self._output.append(item)
        evs.append(self._ev("response.output_item.done", output_index=idx, item=item))
        self._text = []
        return evs

    def _open_item(self, kind: str) -> list[Event]:
        evs = self._close()
        self._open = kind
        self._index = len(self._output)
        idx = self._index
        if kind == "reasoning":
            rid = self._item_id("rs", idx)
            evs.append(
                self._ev(
                    "response.output_item.added",
                    output_index=idx,
                    item={
                        "id": rid,
                        "type": "reasoning",
                        "status": "in_progress",
                        "summary": [],
                        "content": [],
                    },
                )
            )
            evs.append(
                self._ev(
                    "response.content_part.added",
                    item_id=rid,
                    output_index=idx,
                    content_index=0,
                    part={"type": "reasoning_text", "text": ""},
                )
            )
        elif kind == "message":
            mid = self._item_id("msg", idx)
            evs.append(
                self._ev(
                    "response.output_item.added",
                    output_index=idx,
                    item={
                        "id": mid,
                        "type": "message",
                        "status": "in_progress",
                        "role": "assistant",
                        "content": [],
                    },
                )
            )
            part: dict[str, Any] = (
                {"type": "refusal", "refusal": ""}
                if self._part == "refusal"
                else {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            )
            evs.append(
                self._ev(
                    "response.content_part.added", item_id=mid, output_index=idx, content_index=0, part=part
                )
            )
        return evs

    def _open_call(self, tc: dict[str, Any], key: int) -> list[Event]:
        evs = self._close()
        self._open = "call"
        self._index = len(self._output)
        fn = tc.get("function") or {}
        chat_name = str(fn.get("name") or "")
        target = self._tools.target(chat_name)
        call_id = str(tc.get("id") or self._item_id("call", self._index))
        call = _Call(
            self._index, self._item_id(_PREFIX[target.kind], self._index), call_id, chat_name, self._tools
        )
        self._calls[key] = call
        self._call = call
        evs.append(
            self._ev("response.output_item.added", output_index=self._index, item=call.item("in_progress"))
        )
        return evs

    # -- feeding ----------------------------------------------------------------------------------

    def feed(self, chunk: dict[str, Any]) -> list[Event]:
        evs: list[Event] = []
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            # a whole `message` instead of a `delta`: a backend that answered a stream request with JSON
            delta = choice.get("delta") or choice.get("message") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning:
                if self._open != "reasoning":
                    evs += self._open_item("reasoning")
                self._text.append(reasoning)
                evs.append(
                    self._ev(
                        "response.reasoning_text.delta",
                        item_id=self._item_id("rs", self._index),
                        output_index=self._index,
                        content_index=0,
                        delta=reasoning,
                    )
                )
            for key, part in (("content", "output_text"), ("refusal", "refusal")):
                piece = delta.get(key)
                if not piece:
                    continue
                if self._open != "message" or self._part != part:
                    self._part = part
                    evs += self._open_item("message")
                self._text.append(piece)
                mid = self._item_id("msg", self._index)
                if part == "refusal":
                    evs.append(
                        self._ev(
                            "response.refusal.delta",
                            item_id=mid,
                            output_index=self._index,
                            content_index=0,
                            delta=piece,
                        )
                    )
                else:
                    evs.append(
                        self._ev(
                            "response.output_text.delta",
                            item_id=mid,
                            output_index=self._index,
                            content_index=0,
                            delta=piece,
                            logprobs=[],
                        )
                    )
            for pos, tc in enumerate(delta.get("tool_calls") or ()):
                evs += self._feed_call(tc, pos)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return evs

    def _feed_call(self, tc: dict[str, Any], pos: int) -> list[Event]:
        """One tool-call delta. Calls are keyed by their `index` (by position when it is missing); a
        new `id` at a known index is a new call (backends that number every call 0)."""
        index = tc.get("index")
        key = index if isinstance(index, int) else pos
        call = self._calls.get(key)
        evs: list[Event] = []
        named = bool((tc.get("function") or {}).get("name"))
        if call is None or (named and tc.get("id") and tc["id"] != call.call_id):
            evs += self._open_call(tc, key)
            call = self._call
            assert call is not None
        piece = (tc.get("function") or {}).get("arguments") or ""
        if not piece:
            return evs
        if call is not self._call:
            # its item is already done (and sent): interleaved arguments cannot be streamed in order
            log.warning(
                "dropping arguments for tool call %s: they arrived after the next item began", call.call_id
            )
            return evs
        call.args.append(piece)
        if call.kind == "function_call":
            evs.append(
                self._ev(
                    "response.function_call_arguments.delta",
                    item_id=call.item_id,
                    output_index=call.index,
                    delta=piece,
                )
            )
        return evs

    # -- the end ----------------------------------------------------------------------------------

    def finish(self, completed_at: int) -> list[Event]:
        """Close every open item and settle the final response (the terminal event comes later)."""
        incomplete = self._finish in ("length", "content_filter")
        evs = self._close("incomplete" if incomplete else "completed")
        r = self.response
        r["output"] = list(self._output)
        r["usage"] = map_usage(self._usage)
        if incomplete:
            r["status"] = "incomplete"
            reason = "max_output_tokens" if self._finish == "length" else "content_filter"
            r["incomplete_details"] = {"reason": reason}
        else:
            r["status"] = "completed"
            r["completed_at"] = completed_at
        return evs

    def fail(self, code: str, message: str, status: str = "failed") -> list[Event]:
        """The backend died or the client left: close items as incomplete, settle as failed/cancelled."""
        evs = self._close("incomplete")
        r = self.response
        r["output"] = list(self._output)
        r["usage"] = map_usage(self._usage)
        r["status"] = status
        if status == "failed":
            r["error"] = {"code": code, "message": message}
        return evs

    def terminal_event(self) -> Event:
        status = self.response["status"]
        etype = {"completed": "response.completed", "incomplete": "response.incomplete"}.get(
            status, "response.failed"
        )
        return self._ev(etype, response=self._snapshot())

    def error_event(self, code: str, message: str) -> Event:
        return self._ev("error", code=code, message=message, param=None)
