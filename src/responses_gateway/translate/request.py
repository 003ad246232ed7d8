"""Responses request + stored history -> Chat Completions request. Pure: no I/O, no clock."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from responses_gateway.errors import InvalidRequest
from responses_gateway.translate.tools import ToolMap

Item = dict[str, Any]
Message = dict[str, Any]

_TEXT_PARTS = frozenset({"input_text", "output_text", "text"})


def _text_of(content: Any) -> str:
    """The plain text of a message's content (string or parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text") or p.get("refusal") or "") for p in content if isinstance(p, dict))
    return ""


def _user_content(content: Any) -> str | list[dict[str, Any]]:
    """Responses content parts -> Chat content (a plain string when it is all text)."""
    if isinstance(content, str):
        return content
    parts: list[dict[str, Any]] = []
    for part in content:
        ptype = part.get("type")
        if ptype in _TEXT_PARTS:
            parts.append({"type": "text", "text": part.get("text", "")})
        elif ptype == "input_image":
            url = part.get("image_url")
            if not url:
                raise InvalidRequest(
                    "input_image parts need an image_url (file_id is not supported).", param="input"
                )
            image: dict[str, Any] = {"url": url}
            if part.get("detail") and part["detail"] != "auto":
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        elif ptype == "refusal":
            parts.append({"type": "text", "text": part.get("refusal", "")})
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts) if len(parts) <= 1 else parts
    return parts


def _tool_output(output: Any) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return "".join(str(p.get("text", "")) for p in output if isinstance(p, dict))
    return str(output)


class _Builder:
    """Accumulates chat messages, merging consecutive assistant text and tool calls."""

    def __init__(self, tool_map: ToolMap) -> None:
        self.messages: list[Message] = []
        self._tools = tool_map

    def _last_assistant(self) -> Message | None:
        if self.messages and self.messages[-1]["role"] == "assistant":
            return self.messages[-1]
        return None

    def add(self, item: Item) -> None:
        itype = item.get("type", "message")
        if itype == "message":
            role = item.get("role")
            if role == "assistant":
                text = _text_of(item.get("content"))
                last = self._last_assistant()
                if last is not None and "tool_calls" not in last and isinstance(last.get("content"), str):
                    last["content"] += text
                else:
                    self.messages.append({"role": "assistant", "content": text})
            elif role in ("system", "developer"):
                self.messages.append({"role": "system", "content": _text_of(item.get("content"))})
            else:
                self.messages.append({"role": "user", "content": _user_content(item.get("content", ""))})
        elif itype in ("function_call", "custom_tool_call", "tool_search_call"):
            name, arguments = self._tools.to_chat_call(item)
            call = {
                "id": item["call_id"],
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
            last = self._last_assistant()
            if last is None:
                last = {"role": "assistant", "content": None}
                self.messages.append(last)
            last.setdefault("tool_calls", []).append(call)
        elif itype in ("function_call_output", "custom_tool_call_output"):
            self.messages.append(
                {"role": "tool", "tool_call_id": item["call_id"], "content": _tool_output(item.get("output"))}
            )
        elif itype == "tool_search_output" and item.get("call_id"):
            content = orjson.dumps(item.get("tools") or []).decode()
            self.messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": content})
        # reasoning items are not sent back to Chat backends (documented in docs/API.md)


def _merge_leading_system(messages: list[Message]) -> list[Message]:
    """Chat templates often allow one system message, first: merge the leading run into one."""
    n = 0
    while n < len(messages) and messages[n]["role"] == "system":
        n += 1
    if n <= 1:
        return messages
    merged = "\n\n".join(str(m["content"]) for m in messages[:n] if m["content"])
    return [{"role": "system", "content": merged}, *messages[n:]]


def check_tool_outputs(items: Sequence[Item]) -> None:
    """A tool output must answer a call made earlier in the same context."""
    calls: set[str] = set()
    for item in items:
        itype = item.get("type")
        if itype in ("function_call", "custom_tool_call"):
            calls.add(item["call_id"])
        elif itype in ("function_call_output", "custom_tool_call_output") and item["call_id"] not in calls:
            raise InvalidRequest(
                f"No tool call found for function call output with call_id {item['call_id']}.",
                param="input",
            )


def build_messages(instructions: str | None, context: Iterable[Item], tool_map: ToolMap) -> list[Message]:
    """The chat messages: this request's instructions, then every context item in order."""
    builder = _Builder(tool_map)
    if instructions:
        builder.messages.append({"role": "system", "content": instructions})
    for item in context:
        builder.add(item)
    return _merge_leading_system(builder.messages)


def _response_format(text: dict[str, Any] | None) -> dict[str, Any] | None:
    fmt = (text or {}).get("format") or {}
    ftype = fmt.get("type", "text")
    if ftype == "json_object":
        return {"type": "json_object"}
    if ftype == "json_schema":
        schema: dict[str, Any] = {"name": fmt.get("name", "response"), "schema": fmt.get("schema", {})}
        if "strict" in fmt and fmt["strict"] is not None:
            schema["strict"] = fmt["strict"]
        if fmt.get("description"):
            schema["description"] = fmt["description"]
        return {"type": "json_schema", "json_schema": schema}
    return None


def build_chat_request(req: dict[str, Any], messages: list[Message], tool_map: ToolMap) -> dict[str, Any]:
    """The Chat Completions body for a validated Responses request."""
    body: dict[str, Any] = {"model": req["model"], "messages": messages, "stream": True}
    for src, dst in (
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("max_output_tokens", "max_tokens"),
        ("user", "user"),
        ("presence_penalty", "presence_penalty"),
        ("frequency_penalty", "frequency_penalty"),
    ):
        value = req.get(src)
        if value is not None:
            body[dst] = value
    fmt = _response_format(req.get("text"))
    if fmt is not None:
        body["response_format"] = fmt
    effort = (req.get("reasoning") or {}).get("effort")
    if effort:
        body["reasoning_effort"] = effort
    chat_tools = tool_map.chat_tools()
    choice = tool_map.chat_tool_choice(req.get("tool_choice"))  # a named tool not in tools is a 400
    if chat_tools:
        body["tools"] = chat_tools
        if choice is not None:
            body["tool_choice"] = choice
        if req.get("parallel_tool_calls") is not None:
            body["parallel_tool_calls"] = req["parallel_tool_calls"]
    return body
