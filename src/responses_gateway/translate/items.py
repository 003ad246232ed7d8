"""Input items: given ids, string content turned into parts, sealed reasoning opened. Pure."""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from responses_gateway.errors import InvalidRequest
from responses_gateway.ids import INPUT_INDEX_BASE, item_id
from responses_gateway.protocol.items import (
    Compaction,
    CompactionTrigger,
    CustomToolCall,
    CustomToolCallOutput,
    FunctionCall,
    FunctionCallOutput,
    InputItem,
    InputText,
    Item,
    ItemReference,
    Message,
    OutputText,
    Reasoning,
    ReasoningText,
    SummaryText,
    ToolSearchCall,
    ToolSearchOutput,
)

_ID_PREFIX: dict[type[Item], str] = {
    Message: "msg",
    FunctionCall: "fc",
    FunctionCallOutput: "fco",
    CustomToolCall: "ctc",
    CustomToolCallOutput: "ctco",
    ToolSearchCall: "tsc",
    ToolSearchOutput: "tso",
    Reasoning: "rs",
    Compaction: "cmp",
}


# item types whose listed form has a `status` (a reasoning item's is optional, and left as sent)
_WITH_STATUS = (
    Message,
    FunctionCall,
    FunctionCallOutput,
    CustomToolCall,
    CustomToolCallOutput,
    ToolSearchCall,
    ToolSearchOutput,
)


class Sealed(msgspec.Struct):
    """What `encrypted_content` carries: a reasoning item's text."""

    content: list[ReasoningText] = []
    summary: list[SummaryText] = []


def normalize_input(raw: str | list[InputItem] | None, response_id: str) -> list[InputItem]:
    """The request's `input` as a list of items, each with an id (the client's, or ours)."""
    if raw is None:
        return []
    if isinstance(raw, str):
        raw = [Message(role="user", content=raw)]
    for i, item in enumerate(raw):
        if isinstance(item, ItemReference):
            continue
        if isinstance(item, Message):
            if isinstance(item.content, str):
                text = item.content
                item.content = [OutputText(text, []) if item.role == "assistant" else InputText(text)]
        if isinstance(item, _WITH_STATUS):  # listed, they carry a status, as the spec's items require
            item.status = item.status or "completed"
        elif isinstance(item, CompactionTrigger):  # a final one was taken away (`compaction.py`)
            raise InvalidRequest(
                "A compaction_trigger item must be the final input item.", param=f"input[{i}]"
            )
        if not item.id:
            item.id = item_id(_ID_PREFIX[type(item)], response_id, INPUT_INDEX_BASE + i)
    return raw


def item_prefix(item: Item) -> str:
    """The id prefix of an item's type (`msg`, `fc`, ...)."""
    return _ID_PREFIX[type(item)]


def references(items: list[InputItem]) -> list[str]:
    return [it.id for it in items if isinstance(it, ItemReference)]


def open_reasoning(items: list[InputItem], open_token: Callable[[str], bytes | None]) -> None:
    """Stateless clients send earlier reasoning back sealed, with `content: null`: restore its text
    (in place) when the token is one of ours. Tokens we cannot open are kept as they are: reasoning
    is not sent to the backend, so nothing the model sees depends on them."""
    for item in items:
        if not isinstance(item, Reasoning) or not item.encrypted_content or item.content:
            continue
        payload = open_token(item.encrypted_content)
        if payload is None:
            continue
        try:
            opened = msgspec.json.decode(payload, type=Sealed)
        except msgspec.ValidationError:
            continue
        item.content = opened.content
        if not item.summary:
            item.summary = opened.summary


def seal_payload(item: Reasoning) -> bytes:
    """The plaintext sealed into a reasoning item's `encrypted_content`."""
    return msgspec.json.encode(Sealed(item.content or [], item.summary or []))
