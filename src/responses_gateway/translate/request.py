"""Responses request + stored history -> Chat Completions request. Pure: no I/O, no clock.

Each turn's items are rendered to Chat messages once (`render`); the history of a chained request
arrives as the stored, already encoded messages of earlier turns and is joined as bytes
(`messages_json`): only a leading system message of the first turn is ever decoded again.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping, Sequence

import msgspec

from responses_gateway.errors import InvalidRequest
from responses_gateway.protocol.chat import (
    AssistantMessage,
    ChatFunction,
    ChatImage,
    ChatJSONSchema,
    ChatMessage,
    ChatRequest,
    ChatText,
    ChatToolCall,
    FormatJSONObject,
    FormatJSONSchema,
    ImageURL,
    SystemMessage,
    ToolMessage,
    UserMessage,
    UserPart,
)
from responses_gateway.protocol.errors import shown
from responses_gateway.protocol.items import (
    ContentPart,
    CustomToolCall,
    CustomToolCallOutput,
    FunctionCall,
    FunctionCallOutput,
    InputFile,
    InputImage,
    Item,
    Message,
    Refusal,
    ToolSearchCall,
    ToolSearchOutput,
)
from responses_gateway.protocol.request import CreateRequest
from responses_gateway.protocol.request import FormatJSONObject as JSONObjectFormat
from responses_gateway.protocol.request import FormatJSONSchema as JSONSchemaFormat
from responses_gateway.translate.tools import ToolMap, to_chat_call

_encode = msgspec.json.Encoder().encode
_decode_messages = msgspec.json.Decoder(list[ChatMessage]).decode
# What each `input_file` part became for the backend (extracted text, or a Chat `file` part)
Files = Mapping[InputFile, UserPart]
NO_FILES: Files = {}  # shared, never written


class FilesNeeded(Exception):
    """`render` met an `input_file` part it has no conversion for: convert the items' files, then
    render again. Requests without files never pay for looking for them."""


def _text_of(content: str | list[ContentPart]) -> str:
    """The plain text of a message's content (string or parts)."""
    if isinstance(content, str):
        return content
    return "".join(p.refusal if isinstance(p, Refusal) else getattr(p, "text", "") for p in content)


def _user_content(content: str | list[ContentPart], files: Files) -> str | list[UserPart]:
    """Responses content parts -> Chat content (a plain string when it is one text)."""
    if isinstance(content, str):
        return content
    parts: list[UserPart] = []
    for part in content:
        if isinstance(part, InputImage):
            assert part.image_url  # checked at the edge
            detail = part.detail if part.detail and part.detail != "auto" else None
            parts.append(ChatImage(ImageURL(part.image_url, detail)))
        elif isinstance(part, Refusal):
            parts.append(ChatText(part.refusal))
        elif hasattr(part, "text"):
            parts.append(ChatText(part.text))
        elif isinstance(part, InputFile):  # last: text parts pay nothing for it
            converted = files.get(part)
            if converted is None:
                raise FilesNeeded
            parts.append(converted)
    if all(isinstance(p, ChatText) for p in parts) and len(parts) <= 1:
        return parts[0].text if parts and isinstance(parts[0], ChatText) else ""
    return parts


def _tool_output(output: str | list[ContentPart], files: Files) -> str:
    """A tool message's text: the text of the parts, and a file's extracted text (a tool message
    holds text only: a file there is always extracted, `files` maps it to a text part)."""
    if isinstance(output, str):
        return output
    texts: list[str] = []
    for part in output:
        if isinstance(part, InputFile):
            converted = files.get(part)
            if converted is None:
                raise FilesNeeded
            texts.append(converted.text if isinstance(converted, ChatText) else "")
        else:
            texts.append(getattr(part, "text", ""))
    return "".join(texts)


def render(items: Iterable[Item], files: Files = NO_FILES) -> list[ChatMessage]:
    """Chat messages for items in order, merging consecutive assistant text and tool calls.
    Reasoning items are not sent back to Chat backends (docs/API.md). An `input_file` part becomes
    what `files` maps it to (FilesNeeded when it is not there)."""
    out: list[ChatMessage] = []
    for item in items:
        last = out[-1] if out and isinstance(out[-1], AssistantMessage) else None
        if isinstance(item, Message):
            if item.role == "assistant":
                text = _text_of(item.content)
                if last is not None and last.tool_calls is None and last.content is not None:
                    last.content += text
                else:
                    out.append(AssistantMessage(text))
            elif item.role in ("system", "developer"):
                out.append(SystemMessage(_text_of(item.content)))
            else:
                out.append(UserMessage(_user_content(item.content, files)))
        elif isinstance(item, FunctionCall | CustomToolCall | ToolSearchCall):
            name, arguments = to_chat_call(item)
            call = ChatToolCall(item.call_id, ChatFunction(name, arguments))
            if last is None:
                last = AssistantMessage(None)
                out.append(last)
            if last.tool_calls is None:
                last.tool_calls = []
            last.tool_calls.append(call)
        elif isinstance(item, FunctionCallOutput | CustomToolCallOutput):
            out.append(ToolMessage(item.call_id, _tool_output(item.output, files)))
        elif isinstance(item, ToolSearchOutput) and item.call_id:
            out.append(ToolMessage(item.call_id, _encode(item.tools or []).decode()))
    return out


def encode_messages(messages: Sequence[ChatMessage]) -> bytes:
    return _encode(messages)


def has_call(history: bytes, call_id: str) -> bool:
    """Whether encoded Chat messages hold a tool call with this id. `"id":` is a key only in
    tool calls, and a quote inside a string is always escaped, so a match is never inside text."""
    return b'"id":' + _encode(call_id) in history


def check_tool_outputs(items: Sequence[Item], history: Sequence[bytes] = ()) -> None:
    """A tool output must answer a call made earlier in the context (the stored turns' Chat
    messages, searched as bytes, or this input)."""
    calls: set[str] = set()
    for i, item in enumerate(items):
        if isinstance(item, FunctionCall | CustomToolCall):
            calls.add(item.call_id)
        elif isinstance(item, FunctionCallOutput | CustomToolCallOutput):
            # newest turn first: the call answered is nearly always in the turn just before
            if item.call_id not in calls and not any(has_call(t, item.call_id) for t in reversed(history)):
                raise InvalidRequest(
                    f"No tool call found for function call output with call_id {shown(item.call_id)}.",
                    param=f"input[{i}].call_id",
                )


def _leading_system(messages: Sequence[ChatMessage]) -> int:
    n = 0
    while n < len(messages) and isinstance(messages[n], SystemMessage):
        n += 1
    return n


_inner = operator.itemgetter(slice(1, -1))


def join_turns(turns: Sequence[bytes]) -> bytes:
    """The messages of encoded arrays joined, without brackets: `[a,b]`, `[]`, `[c]` -> `a,b,c`.
    map/filter/join run in C: a few hundred nanoseconds per turn, no Python code per turn."""
    return b",".join(filter(None, map(_inner, turns)))


def messages_json(instructions: str | None, history: Sequence[bytes], current: list[ChatMessage]) -> bytes:
    """The `messages` array: instructions, the stored turns (joined as bytes), this turn's messages.
    A leading run of system messages is merged into one (chat templates often allow one only)."""
    head: list[ChatMessage] = [SystemMessage(instructions)] if instructions else []
    k = 0
    # decode only turns that open with a system message, and only while the run goes on
    while k < len(history) and history[k].startswith(b'[{"role":"system"'):
        decoded = _decode_messages(history[k])
        head += decoded
        k += 1
        if _leading_system(decoded) < len(decoded):
            break
    if k == len(history):
        head += current
        current = []
    n = _leading_system(head)
    if n > 1:
        merged = "\n\n".join(str(m.content) for m in head[:n] if m.content)
        head = [SystemMessage(merged), *head[n:]]
    parts = (_encode(head)[1:-1], join_turns(history[k:]), _encode(current)[1:-1])
    return b"[" + b",".join(filter(None, parts)) + b"]"


def _response_format(req: CreateRequest) -> FormatJSONObject | FormatJSONSchema | None:
    fmt = req.text.format if req.text is not None else None
    if isinstance(fmt, JSONObjectFormat):
        return FormatJSONObject()
    if isinstance(fmt, JSONSchemaFormat):
        return FormatJSONSchema(ChatJSONSchema(fmt.name, fmt.schema, fmt.strict, fmt.description or None))
    return None


def build_chat_request(req: CreateRequest, messages: bytes, tool_map: ToolMap) -> ChatRequest:
    """The Chat Completions body for a validated Responses request."""
    chat_tools = tool_map.chat_tools()
    choice = tool_map.chat_tool_choice(req.tool_choice)  # a named tool not in tools is a 400
    return ChatRequest(
        model=req.model,
        messages=msgspec.Raw(messages),
        stream=True,
        stream_options={"include_usage": True},
        temperature=req.temperature,
        top_p=req.top_p,
        max_tokens=req.max_output_tokens,
        user=req.user,
        presence_penalty=req.presence_penalty,
        frequency_penalty=req.frequency_penalty,
        response_format=_response_format(req),
        reasoning_effort=req.reasoning.effort if req.reasoning is not None else None,
        tools=chat_tools or None,
        tool_choice=choice if chat_tools else None,
        parallel_tool_calls=req.parallel_tool_calls if chat_tools else None,
    )
