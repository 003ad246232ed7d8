"""Validation of a create request: the field policy, in one table. Pure; raises InvalidRequest."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from responses_gateway.errors import InvalidRequest, NotImplementedFeature

log = logging.getLogger("responses_gateway.validate")

Check = Callable[[str, Any], None]


def _type_error(name: str, expected: str, value: Any) -> InvalidRequest:
    got = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
        type(None): "null",
    }.get(type(value), type(value).__name__)
    return InvalidRequest(
        f"Invalid type for '{name}': expected {expected}, but got {got} instead.", param=name
    )


def _string(name: str, v: Any) -> None:
    if not isinstance(v, str):
        raise _type_error(name, "a string", v)


def _bool(name: str, v: Any) -> None:
    if not isinstance(v, bool):
        raise _type_error(name, "a boolean", v)


def _number(lo: float, hi: float) -> Check:
    def check(name: str, v: Any) -> None:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise _type_error(name, "a number", v)
        if not lo <= v <= hi:
            raise InvalidRequest(f"Invalid '{name}': must be between {lo:g} and {hi:g}, got {v}.", param=name)

    return check


def _int(lo: int, hi: int = 2**31 - 1) -> Check:
    def check(name: str, v: Any) -> None:
        if isinstance(v, bool) or not isinstance(v, int):
            raise _type_error(name, "an integer", v)
        if not lo <= v <= hi:
            raise InvalidRequest(f"Invalid '{name}': must be between {lo} and {hi}, got {v}.", param=name)

    return check


def _nonempty(name: str, v: Any) -> None:
    _string(name, v)
    if not v:
        raise InvalidRequest(f"Invalid '{name}': empty string.", param=name)


def _object(name: str, v: Any) -> None:
    if not isinstance(v, dict):
        raise _type_error(name, "an object", v)


def _array(name: str, v: Any) -> None:
    if not isinstance(v, list):
        raise _type_error(name, "an array", v)


def _metadata(name: str, v: Any) -> None:
    _object(name, v)
    if len(v) > 16:
        raise InvalidRequest(f"Invalid '{name}': at most 16 key-value pairs, got {len(v)}.", param=name)
    for key, value in v.items():
        if len(key) > 64:
            raise InvalidRequest(
                f"Invalid '{name}': keys are at most 64 characters ('{key[:20]}…').", param=name
            )
        if not isinstance(value, str):
            raise _type_error(f"{name}.{key}", "a string", value)
        if len(value) > 512:
            raise InvalidRequest(f"Invalid '{name}.{key}': values are at most 512 characters.", param=name)


def _input(name: str, v: Any) -> None:
    if not isinstance(v, str | list):
        raise _type_error(name, "a string or an array of input items", v)


def _tool_choice(name: str, v: Any) -> None:
    if isinstance(v, str):
        if v not in ("auto", "none", "required"):
            raise InvalidRequest(f"Invalid value for '{name}': '{v}'.", param=name)
    elif not isinstance(v, dict):
        raise _type_error(name, "a string or an object", v)


def _truncation(name: str, v: Any) -> None:
    if v not in ("auto", "disabled"):
        raise InvalidRequest(f"Invalid value for '{name}': expected 'auto' or 'disabled'.", param=name)


def _text(name: str, v: Any) -> None:
    _object(name, v)
    fmt = v.get("format")
    if fmt is None:
        return
    _object(f"{name}.format", fmt)
    ftype = fmt.get("type")
    if ftype not in ("text", "json_object", "json_schema"):
        raise InvalidRequest(
            f"Invalid value for '{name}.format.type': '{ftype}'.", param=f"{name}.format.type"
        )
    if ftype == "json_schema":
        if not isinstance(fmt.get("name"), str):
            raise InvalidRequest(
                f"Missing required parameter: '{name}.format.name'.", param=f"{name}.format.name"
            )
        if not isinstance(fmt.get("schema"), dict):
            raise InvalidRequest(
                f"Missing required parameter: '{name}.format.schema'.", param=f"{name}.format.schema"
            )


def _include(name: str, v: Any) -> None:
    _array(name, v)
    for x in v:
        _string(f"{name}[]", x)


def _reasoning(name: str, v: Any) -> None:
    _object(name, v)
    effort = v.get("effort")
    if effort is not None and effort not in ("none", "minimal", "low", "medium", "high", "xhigh"):
        raise InvalidRequest(f"Invalid value for '{name}.effort': '{effort}'.", param=f"{name}.effort")


FIELDS: dict[str, Check] = {
    "model": _nonempty,
    "input": _input,
    "instructions": _string,
    "previous_response_id": _nonempty,
    "store": _bool,
    "stream": _bool,
    "stream_options": _object,
    "tools": _array,
    "tool_choice": _tool_choice,
    "parallel_tool_calls": _bool,
    "temperature": _number(0, 2),
    "top_p": _number(0, 1),
    "presence_penalty": _number(-2, 2),
    "frequency_penalty": _number(-2, 2),
    "max_output_tokens": _int(1),
    "max_tool_calls": _int(1),
    "top_logprobs": _int(0, 20),
    "metadata": _metadata,
    "text": _text,
    "reasoning": _reasoning,
    "user": _string,
    "include": _include,
    "truncation": _truncation,
    # hints a Chat backend cannot use: accepted, echoed, best effort (docs/API.md)
    "prompt_cache_key": _string,
    "prompt_cache_retention": _string,
    "safety_identifier": _string,
    "service_tier": _string,
    "background": _bool,
}

# fields that would change the result and that we cannot honour: a 400 naming them
UNSUPPORTED: dict[str, Callable[[Any], bool]] = {
    "background": lambda v: v is True,
    "conversation": lambda v: v is not None,
    "prompt": lambda v: v is not None,
}


def validate_create(body: Any) -> dict[str, Any]:
    """Check a create body; returns the fields we know (unknown top-level fields are dropped)."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    req: dict[str, Any] = {}
    for key, value in body.items():
        check = FIELDS.get(key)
        if check is None:
            if key in UNSUPPORTED:
                if UNSUPPORTED[key](value):
                    raise NotImplementedFeature(f"'{key}' is not supported by this gateway.", param=key)
                continue
            log.debug("ignoring unknown request field %r", key)
            continue
        if value is None:
            continue
        check(key, value)
        if key in UNSUPPORTED and UNSUPPORTED[key](value):
            raise NotImplementedFeature(
                f"'{key}: {str(value).lower()}' is not supported by this gateway.", param=key
            )
        req[key] = value
    if "model" not in req:
        raise InvalidRequest("Missing required parameter: 'model'.", param="model")
    if "input" not in req and "previous_response_id" not in req:
        req["input"] = []
    return req
