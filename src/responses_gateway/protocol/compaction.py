"""Wire types of `POST /v1/responses/compact` and `POST /v1/responses/input_tokens`, and the parse
of a compact body (unknown fields ignored, as for a create)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from responses_gateway.protocol.errors import RequestInvalid
from responses_gateway.protocol.items import Compaction, InputItem, Message
from responses_gateway.protocol.parse import DEFAULT_LIMITS, RequestLimits, format_error, parse_json
from responses_gateway.protocol.response import Usage

__all__ = ["CompactRequest", "CompactedResponse", "InputTokenCount", "parse_compact"]


class CompactRequest(Struct, kw_only=True):
    """A compact body: what to summarise (`input`, or the chain of `previous_response_id`, or both)."""

    model: Annotated[str, Meta(min_length=1)]
    input: str | list[InputItem] | None = None
    instructions: str | None = None
    previous_response_id: Annotated[str, Meta(min_length=1)] | None = None
    # accepted and ignored: a Chat backend has no prompt cache we could key or keep
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    service_tier: str | None = None


class CompactedResponse(Struct, kw_only=True):
    """`object: "response.compaction"`: the retained user messages, then one compaction item."""

    id: str
    object: Literal["response.compaction"] = "response.compaction"
    created_at: int
    output: list[Message | Compaction]
    usage: Usage


class InputTokenCount(Struct):
    """The answer of `POST /v1/responses/input_tokens`."""

    input_tokens: int
    object: Literal["response.input_tokens"] = "response.input_tokens"


def parse_compact(raw: bytes, limits: RequestLimits = DEFAULT_LIMITS) -> CompactRequest:
    """A compact body, validated; a 400 naming the field otherwise (a missing `model` among them)."""
    body: Any = parse_json(raw, limits.depth)
    if not isinstance(body, dict):
        raise RequestInvalid("The request body must be a JSON object.")
    items = body.get("input")
    if isinstance(items, list):
        for item in items:  # clients leave `type` out of messages and item references
            if isinstance(item, dict) and "type" not in item:
                if "role" in item:
                    item["type"] = "message"
                elif item.keys() == {"id"}:
                    item["type"] = "item_reference"
        if len(items) > limits.max_input_items:
            raise RequestInvalid(
                f"Invalid 'input': at most {limits.max_input_items} items are allowed, got {len(items)}.",
                "input",
                "array_above_max_length",
            )
    try:
        return msgspec.convert(body, CompactRequest)
    except msgspec.ValidationError as exc:
        raise format_error(exc, body, limits) from None
