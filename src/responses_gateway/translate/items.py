"""Input items: validated and normalised into the shape we store and list. Pure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from responses_gateway.errors import InvalidRequest
from responses_gateway.ids import INPUT_INDEX_BASE, item_id

Item = dict[str, Any]

ROLES = frozenset({"user", "system", "developer", "assistant"})
_PART_TYPES = frozenset({"input_text", "output_text", "input_image", "refusal", "text", "summary_text"})
_ID_PREFIX = {
    "message": "msg",
    "function_call": "fc",
    "function_call_output": "fco",
    "custom_tool_call": "ctc",
    "custom_tool_call_output": "ctco",
    "tool_search_call": "tsc",
    "tool_search_output": "tso",
    "reasoning": "rs",
}
# Fields each item type must carry, as strings (`output` may also be a list of parts).
_REQUIRED = {
    "function_call": ("call_id", "name", "arguments"),
    "function_call_output": ("call_id", "output"),
    "custom_tool_call": ("call_id", "name", "input"),
    "custom_tool_call_output": ("call_id", "output"),
    "tool_search_call": ("call_id",),
}
_MAY_BE_PARTS = frozenset({"output"})


def _content(where: str, role: str, content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        if role == "assistant":
            return [{"type": "output_text", "text": content, "annotations": []}]
        return [{"type": "input_text", "text": content}]
    if not isinstance(content, list):
        raise InvalidRequest(
            f"Invalid type for '{where}.content': expected a string or an array.", param=f"{where}.content"
        )
    for j, part in enumerate(content):
        ptype = part.get("type") if isinstance(part, dict) else None
        if not isinstance(ptype, str):
            raise InvalidRequest(
                f"Invalid value for '{where}.content[{j}]': expected an object with a string 'type'.",
                param=f"{where}.content",
            )
        if ptype == "input_file":
            raise InvalidRequest(
                f"'{where}.content[{j}]': input_file parts are not supported by this gateway's backends.",
                param=f"{where}.content",
            )
        if ptype not in _PART_TYPES:
            raise InvalidRequest(
                f"Invalid value for '{where}.content[{j}].type': '{ptype}'.", param=f"{where}.content"
            )
        if ptype in ("input_text", "output_text", "text") and not isinstance(part.get("text"), str):
            raise InvalidRequest(
                f"Missing required parameter: '{where}.content[{j}].text'.", param=f"{where}.content"
            )
    return content


def normalize_input(raw: str | list[Any], response_id: str) -> list[Item]:
    """The request's `input` as a list of typed items, each with an id (the client's, or ours)."""
    if isinstance(raw, str):
        raw = [{"type": "message", "role": "user", "content": raw}]
    items: list[Item] = []
    for i, entry in enumerate(raw):
        where = f"input[{i}]"
        if not isinstance(entry, dict):
            raise InvalidRequest(f"Invalid type for '{where}': expected an object.", param="input")
        itype = entry.get("type") or ("message" if "role" in entry else None)
        if itype is None and set(entry) == {"id"}:
            itype = "item_reference"  # `type` is optional on an item reference
        if not isinstance(itype, str):
            raise InvalidRequest(f"Invalid value for '{where}.type': expected a string.", param="input")
        if itype == "item_reference":
            if not isinstance(entry.get("id"), str):
                raise InvalidRequest(f"Missing required parameter: '{where}.id'.", param="input")
            items.append({"type": "item_reference", "id": entry["id"]})
            continue
        if itype not in _ID_PREFIX:
            raise InvalidRequest(f"Invalid value for '{where}.type': '{itype}'.", param="input")
        item = dict(entry)
        item["type"] = itype
        for key in _REQUIRED.get(itype, ()):
            if key not in item:
                raise InvalidRequest(f"Missing required parameter: '{where}.{key}'.", param="input")
            if not isinstance(item[key], str) and not (key in _MAY_BE_PARTS and isinstance(item[key], list)):
                raise InvalidRequest(f"Invalid type for '{where}.{key}': expected a string.", param="input")
        if "id" in item and item["id"] is not None and not isinstance(item["id"], str):
            raise InvalidRequest(f"Invalid type for '{where}.id': expected a string.", param="input")
        if itype == "message":
            role = item.get("role")
            if not isinstance(role, str) or role not in ROLES:
                raise InvalidRequest(
                    f"Invalid value for '{where}.role': '{role}'. Supported values are: "
                    "'user', 'system', 'developer' and 'assistant'.",
                    param="input",
                )
            item["content"] = _content(where, role, item.get("content", ""))
            item.setdefault("status", "completed")
        if not isinstance(item.get("id"), str) or not item["id"]:
            item["id"] = item_id(_ID_PREFIX[itype], response_id, INPUT_INDEX_BASE + i)
        items.append(item)
    return items


def references(items: list[Item]) -> list[str]:
    return [it["id"] for it in items if it["type"] == "item_reference"]


def open_reasoning(items: list[Item], open_token: Callable[[str], dict[str, Any] | None]) -> None:
    """Stateless clients send earlier reasoning back sealed, with `content: null`: restore its text
    (in place) when the token is one of ours. Tokens we cannot open are kept as they are: reasoning
    is not sent to the backend, so nothing the model sees depends on them."""
    for item in items:
        token = item.get("encrypted_content")
        if item["type"] != "reasoning" or not token or item.get("content"):
            continue
        opened = open_token(token)
        if opened is not None:
            item["content"] = opened.get("content") or []
            if not item.get("summary"):
                item["summary"] = opened.get("summary") or []
