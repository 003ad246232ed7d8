"""The edge: request bytes -> a validated CreateRequest, in one call, or one RequestInvalid.

`format_error` is the one formatter of validation failures: it turns msgspec's message into the
OpenAI wording and sets `param` to the exact path of the field at fault.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import orjson

from responses_gateway.protocol.errors import RequestInvalid
from responses_gateway.protocol.items import InputFile, InputImage, Message
from responses_gateway.protocol.request import CreateRequest

__all__ = ["MAX_DEPTH", "format_error", "parse_create", "parse_json"]

MAX_DEPTH = 128  # orjson reads deeper JSON than it can write back (254 levels): refuse it up front
_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The OpenAI API expects a JSON payload.)"
)
_ROLES = "Supported values are: 'user', 'system', 'developer' and 'assistant'."


def parse_json(raw: bytes) -> Any:
    """Any JSON body (depth-limited); a 400 when it is not JSON."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RequestInvalid(_BAD_JSON) from None
    # cheap test first: only a body with that many brackets can be that deep
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and _too_deep(body, MAX_DEPTH):
        raise RequestInvalid(f"The JSON body is nested deeper than {MAX_DEPTH} levels.")
    return body


_decode_create = msgspec.json.Decoder(CreateRequest).decode


def parse_create(raw: bytes) -> CreateRequest:
    """Parse and validate a create body; unknown top-level fields are ignored.

    One typed decode validates the whole body in one pass. A body it refuses (invalid, or items
    without `type`, which clients leave out) is read again by `_slow`, which infers the missing
    types and words the error; bodies that might be too deep go there first.
    """
    req: CreateRequest | None = None
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        try:
            req = _decode_create(raw)
        except msgspec.DecodeError:
            pass
    if req is None:
        req = _slow(raw)
    _check_supported(req)
    return req


def _slow(raw: bytes) -> CreateRequest:
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise RequestInvalid("The request body must be a JSON object.")
    items = body.get("input")
    if isinstance(items, list):
        _infer_types(items)
    try:
        return msgspec.convert(body, CreateRequest)
    except msgspec.ValidationError as exc:
        raise format_error(exc, body) from None


def _infer_types(items: list[Any]) -> None:
    """Clients leave `type` out of messages (`{"role": …}`) and item references (`{"id": …}`)."""
    for item in items:
        if isinstance(item, dict) and "type" not in item:
            if "role" in item:
                item["type"] = "message"
            elif item.keys() == {"id"}:
                item["type"] = "item_reference"


def _check_supported(req: CreateRequest) -> None:
    for name, value in (("background", req.background), ("conversation", req.conversation)):
        if value is True:
            raise RequestInvalid(f"'{name}: true' is not supported by this gateway.", name, _UNSUPPORTED)
        if value is not None and value is not False:
            raise RequestInvalid(f"'{name}' is not supported by this gateway.", name, _UNSUPPORTED)
    if req.prompt is not None:
        raise RequestInvalid("'prompt' is not supported by this gateway.", "prompt", _UNSUPPORTED)
    if not isinstance(req.input, list):
        return
    for i, item in enumerate(req.input):
        if not isinstance(item, Message) or isinstance(item.content, str):
            continue
        for j, part in enumerate(item.content):
            where = f"input[{i}].content[{j}]"
            if isinstance(part, InputFile):
                raise RequestInvalid(
                    f"'{where}': input_file parts are not supported by this gateway's backends.", where
                )
            if isinstance(part, InputImage) and not part.image_url:
                raise RequestInvalid(
                    "input_image parts need an image_url (file_id is not supported).", f"{where}.image_url"
                )


_UNSUPPORTED = "unsupported_parameter"

# -- the formatter ---------------------------------------------------------------------------------

_MESSAGE = re.compile(r"^(?P<msg>.*?)(?: - at `(?P<key>key` in `)?\$(?P<path>[^`]*)`)?$", re.S)
_TOKEN = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[\.\.\.\]")
_KINDS = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean",
    "array": "an array",
    "object": "an object",
    "null": "null",
}
_EXPECTED = {"input": "a string or an array of input items", "tool_choice": "a string or an object"}


def _got(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _walk(body: Any, path: str) -> tuple[Any, str]:
    """The value at a msgspec path, and the path as a param (`input[3].content[0]`)."""
    value, param = body, ""
    for m in _TOKEN.finditer(path):
        name, index = m.group(1), m.group(2)
        if name is not None:
            value = value.get(name) if isinstance(value, dict) else None
            param = f"{param}.{name}" if param else name
        elif index is not None:
            value = value[int(index)] if isinstance(value, list) and int(index) < len(value) else None
            param = f"{param}[{index}]"
        else:  # a dict value whose key msgspec does not name: the first that is not a short string
            bad = [k for k, v in value.items() if not isinstance(v, str) or len(v) > 512]
            if isinstance(value, dict) and bad:
                value, param = value[bad[0]], f"{param}.{bad[0]}"
    return value, param


def format_error(exc: msgspec.ValidationError, body: Any) -> RequestInvalid:
    """One msgspec validation failure -> the OpenAI message, with `param` the exact path."""
    m = _MESSAGE.match(str(exc))
    assert m is not None  # the pattern matches any string
    msg, path = m.group("msg"), m.group("path") or ""
    value, param = _walk(body, path)
    if missing := re.match(r"Object missing required field `(\w+)`", msg):
        field = f"{param}.{missing.group(1)}" if param else missing.group(1)
        hint = ""
        if re.fullmatch(r"tools\[\d+\]\.name", field) and isinstance(value, dict) and "function" in value:
            hint = (
                ' (tools use the flat Responses shape {"type": "function", "name": ..., "parameters": ...})'
            )
        return RequestInvalid(f"Missing required parameter: '{field}'{hint}.", field)
    if m.group("key"):
        return RequestInvalid(f"Invalid '{param}': keys are at most 64 characters.", param)
    if typed := re.match(r"Expected `([^`]+)`, got `\w+`", msg):
        kinds = [_KINDS.get(k, k) for k in typed.group(1).split(" | ") if k != "null"]
        expected = _EXPECTED.get(param) or " or ".join(kinds)
        return RequestInvalid(
            f"Invalid type for '{param}': expected {expected}, but got {_got(value)} instead.", param
        )
    if length := re.match(r"Expected `(\w+)` of length ([<>]=) (\d+)", msg):
        return _length_error(param, value, length.group(1), length.group(2), int(length.group(3)))
    if re.match(r"Expected `\w+` [<>]=", msg):
        lo, hi = _bounds(param)
        return RequestInvalid(
            f"Invalid '{param}': must be between {_num(lo)} and {_num(hi)}, got {value}.", param
        )
    if bad := re.match(r"Invalid (?:enum )?value (.*)$", msg):
        return _value_error(param, bad.group(1))
    return RequestInvalid(f"Invalid '{param}': {msg}.", param or None)


def _length_error(param: str, value: Any, kind: str, op: str, n: int) -> RequestInvalid:
    if op == ">=" and kind == "str":
        return RequestInvalid(f"Invalid '{param}': empty string.", param)
    if param == "metadata":
        return RequestInvalid(f"Invalid 'metadata': at most {n} key-value pairs, got {len(value)}.", param)
    if param.startswith("metadata."):
        return RequestInvalid(f"Invalid '{param}': values are at most {n} characters.", param)
    unit = "characters" if kind == "str" else "items"
    return RequestInvalid(
        f"Invalid '{param}': expected {'at most' if op == '<=' else 'at least'} {n} {unit}.", param
    )


def _value_error(param: str, shown: str) -> RequestInvalid:
    tool = re.fullmatch(r"(tools\[\d+\])\.type", param)
    if tool:
        return RequestInvalid(f"Unsupported tool type {shown} in '{tool.group(1)}'.", tool.group(1))
    if param == "truncation":
        return RequestInvalid("Invalid value for 'truncation': expected 'auto' or 'disabled'.", param)
    suffix = f" {_ROLES}" if param.endswith(".role") else ""
    return RequestInvalid(f"Invalid value for '{param}': {shown}.{suffix}", param)


def _num(x: float) -> str:
    return str(int(x)) if x.is_integer() else f"{x:g}"


def _bounds(param: str) -> tuple[float, float]:
    """The (ge, le) of a bounded top-level field of CreateRequest, read from its type."""
    info = msgspec.inspect.type_info(CreateRequest)
    assert isinstance(info, msgspec.inspect.StructType)
    for field in info.fields:
        if field.encode_name != param:
            continue
        ftype = field.type
        options = ftype.types if isinstance(ftype, msgspec.inspect.UnionType) else (ftype,)
        for t in options:
            if isinstance(t, msgspec.inspect.IntType | msgspec.inspect.FloatType):
                return float(t.ge if t.ge is not None else "-inf"), float(t.le if t.le is not None else "inf")
    return float("-inf"), float("inf")


def _too_deep(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, dict | list))
    return False
