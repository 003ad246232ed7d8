"""The Conversations API's wire types (`/v1/conversations…`) and the parse of its request bodies.

Field names and objects follow the openai SDK's `types/conversations`. Items are the Responses API's
own Item types; stored items are sent back as they were stored (`msgspec.Raw`, not decoded again).
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

import msgspec
from msgspec import Struct

from responses_gateway.protocol.errors import RequestInvalid
from responses_gateway.protocol.items import Item
from responses_gateway.protocol.parse import (
    DEFAULT_LIMITS,
    RequestLimits,
    _check_metadata,
    _infer_types,
    format_error,
    parse_json,
)
from responses_gateway.protocol.request import Metadata

__all__ = [
    "MAX_ITEMS_PER_ADD",
    "AddItems",
    "Conversation",
    "ConversationDeleted",
    "ConversationItemList",
    "CreateConversation",
    "UpdateConversation",
    "parse_body",
]

MAX_ITEMS_PER_ADD = 20  # OpenAI's: "You may add up to 20 items at a time."


class CreateConversation(Struct, kw_only=True):
    items: list[Item] | None = None
    metadata: Metadata | None = None


class UpdateConversation(Struct, kw_only=True):
    metadata: Metadata


class AddItems(Struct, kw_only=True):
    items: list[Item]


class Conversation(Struct, kw_only=True):
    id: str
    object: Literal["conversation"] = "conversation"
    created_at: int
    metadata: msgspec.Raw  # the stored JSON object


class ConversationDeleted(Struct, kw_only=True):
    id: str
    object: Literal["conversation.deleted"] = "conversation.deleted"
    deleted: bool = True


class ConversationItemList(Struct, kw_only=True):
    object: Literal["list"] = "list"
    data: list[msgspec.Raw]  # stored item JSON, as stored
    first_id: str | None
    last_id: str | None
    has_more: bool


T = TypeVar("T", CreateConversation, UpdateConversation, AddItems)


def parse_body(raw: bytes, kind: type[T], limits: RequestLimits = DEFAULT_LIMITS) -> T:
    """A Conversations API body -> its Struct, or one RequestInvalid (400) naming the param."""
    body: Any = parse_json(raw, limits.depth)
    if not isinstance(body, dict):
        raise RequestInvalid("The request body must be a JSON object.")
    items = body.get("items")
    if isinstance(items, list):
        _infer_types(items)
    try:
        req = msgspec.convert(body, kind)
    except msgspec.ValidationError as exc:
        raise format_error(exc, body, limits) from None
    items_got = getattr(req, "items", None)
    if items_got is not None and len(items_got) > MAX_ITEMS_PER_ADD:
        raise RequestInvalid(
            f"Invalid 'items': at most {MAX_ITEMS_PER_ADD} items can be added at a time, "
            f"got {len(items_got)}.",
            "items",
            "array_above_max_length",
        )
    metadata = getattr(req, "metadata", None)
    if metadata:
        _check_metadata(metadata, limits)
    return req
