"""The edge: request bytes -> a validated CreateRequest, in one call, or one RequestInvalid.

`format_error` is the one formatter of validation failures: it turns msgspec's message into the
OpenAI wording and sets `param` to the exact path of the field at fault. `RequestLimits` are what one
request may contain (the `limits` settings, passed in: this package reads no config); each one
exceeded is a 400 naming the limit and the `param`. Client values are echoed through `shown` only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson

from responses_gateway.protocol.errors import ECHO_CHARS, RequestInvalid, shown
from responses_gateway.protocol.items import (
    CustomToolCallOutput,
    FunctionCallOutput,
    InputFile,
    InputImage,
    Message,
)
from responses_gateway.protocol.request import CreateRequest

__all__ = ["DEFAULT_LIMITS", "MAX_DEPTH", "RequestLimits", "format_error", "parse_create", "parse_json"]

# The hard cap of `max_json_depth`: orjson reads deeper JSON than it can write back (254 levels).
MAX_DEPTH = 128


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """What one create request may contain; the defaults are those of the `limits` settings."""

    max_json_depth: int = 64
    max_input_items: int = 10_000
    max_tools: int = 256
    max_metadata_pairs: int = 16
    max_metadata_key_chars: int = 64
    max_metadata_value_chars: int = 512
    max_output_tokens: int = 1_000_000

    @property
    def depth(self) -> int:
        """The nesting depth enforced: `max_json_depth`, at most MAX_DEPTH."""
        return min(self.max_json_depth, MAX_DEPTH)


DEFAULT_LIMITS = RequestLimits()
_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The OpenAI API expects a JSON payload.)"
)
_ROLES = "Supported values are: 'user', 'system', 'developer' and 'assistant'."


def _too_deep_error(depth: int) -> RequestInvalid:
    return RequestInvalid(
        f"The JSON body is nested deeper than {depth} levels (the limit of this gateway).",
        None,
        "json_too_deep",
    )


def _may_be_too_deep(raw: bytes, depth: int) -> bool:
    """Cheap test first: only a body with more brackets than `depth` can be that deep."""
    return raw.count(b"[") + raw.count(b"{") > depth


def parse_json(raw: bytes, depth: int = MAX_DEPTH) -> Any:
    """Any JSON body, at most `depth` levels deep; a 400 when it is not JSON or deeper.

    orjson stops by itself at 1024 levels (a 100,000-deep `[[[…` fails in microseconds, without
    recursion in Python); shallower bodies are measured by `_too_deep`, an explicit stack."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc) or "recursion" in str(exc):
            raise _too_deep_error(depth) from None
        raise RequestInvalid(_BAD_JSON) from None
    if _may_be_too_deep(raw, depth) and _too_deep(body, depth):
        raise _too_deep_error(depth)
    return body


_decode_create = msgspec.json.Decoder(CreateRequest).decode


def parse_create(raw: bytes, limits: RequestLimits = DEFAULT_LIMITS) -> CreateRequest:
    """Parse and validate a create body against `limits`; unknown top-level fields are ignored.

    One typed decode validates the whole body in one pass. A body that might be too deep is
    measured first (nothing recursive reads it before). A body the decode refuses (invalid, or
    items without `type`, which clients leave out) is read again by `_slow`, which infers the
    missing types and words the error.
    """
    depth = limits.depth
    body: Any = None
    if _may_be_too_deep(raw, depth):
        body = parse_json(raw, depth)  # a 400 when too deep; the typed decode below is then safe
    try:
        req = _decode_create(raw)
    except msgspec.DecodeError:
        req = _slow(raw if body is None else body, limits)
    _check_supported(req)
    check_limits(req, limits)
    return req


def _slow(source: bytes | Any, limits: RequestLimits) -> CreateRequest:
    body = parse_json(source, limits.depth) if isinstance(source, bytes) else source
    if not isinstance(body, dict):
        raise RequestInvalid("The request body must be a JSON object.")
    items = body.get("input")
    if isinstance(items, list):
        _infer_types(items)
    try:
        return msgspec.convert(body, CreateRequest)
    except msgspec.ValidationError as exc:
        raise format_error(exc, body, limits) from None


def check_limits(req: CreateRequest, limits: RequestLimits) -> None:
    """The counts and sizes of a valid request against `limits`: a 400 naming the limit and param."""
    if isinstance(req.input, list) and len(req.input) > limits.max_input_items:
        raise RequestInvalid(
            f"Invalid 'input': at most {limits.max_input_items} items are allowed, got {len(req.input)}.",
            "input",
            "array_above_max_length",
        )
    if req.tools is not None and len(req.tools) > limits.max_tools:
        raise RequestInvalid(
            f"Invalid 'tools': at most {limits.max_tools} tools are allowed, got {len(req.tools)}.",
            "tools",
            "array_above_max_length",
        )
    if req.max_output_tokens is not None and req.max_output_tokens > limits.max_output_tokens:
        raise RequestInvalid(
            f"Invalid 'max_output_tokens': must be between 1 and {limits.max_output_tokens}, "
            f"got {req.max_output_tokens}.",
            "max_output_tokens",
            "integer_above_max_value",
        )
    if req.metadata:
        _check_metadata(req.metadata, limits)


def _check_metadata(metadata: dict[str, str], limits: RequestLimits) -> None:
    if len(metadata) > limits.max_metadata_pairs:
        raise RequestInvalid(
            f"Invalid 'metadata': at most {limits.max_metadata_pairs} key-value pairs, got {len(metadata)}.",
            "metadata",
            "object_above_max_properties",
        )
    for key, value in metadata.items():
        if len(key) > limits.max_metadata_key_chars:
            raise RequestInvalid(
                f"Invalid 'metadata': keys are at most {limits.max_metadata_key_chars} characters "
                f"(got one of {len(key)}: '{shown(key)}').",
                "metadata",
                "string_above_max_length",
            )
        if len(value) > limits.max_metadata_value_chars:
            param = f"metadata.{shown(key)}"
            raise RequestInvalid(
                f"Invalid '{param}': values are at most {limits.max_metadata_value_chars} characters.",
                param,
                "string_above_max_length",
            )


def _infer_types(items: list[Any]) -> None:
    """Clients leave `type` out of messages (`{"role": …}`) and item references (`{"id": …}`)."""
    for item in items:
        if isinstance(item, dict) and "type" not in item:
            if "role" in item:
                item["type"] = "message"
            elif item.keys() == {"id"}:
                item["type"] = "item_reference"


def _check_supported(req: CreateRequest) -> None:
    if req.conversation is not None and req.previous_response_id is not None:
        raise RequestInvalid(
            "Mutually exclusive parameters. Ensure you are only providing one of: "
            "'previous_response_id' or 'conversation'.",
            None,
            "mutually_exclusive_parameters",
        )
    if req.background is True and req.store is False:
        raise RequestInvalid("background can only be used when `store` is true", "background")
    if req.prompt is not None:
        raise RequestInvalid("'prompt' is not supported by this gateway.", "prompt", _UNSUPPORTED)
    if not isinstance(req.input, list):
        return
    for i, item in enumerate(req.input):
        if not isinstance(item, Message):
            if isinstance(item, _OUTPUTS) and not isinstance(item.output, str):
                for j, part in enumerate(item.output):
                    if isinstance(part, InputFile):
                        _check_file(part, f"input[{i}].output[{j}]", "user")
            continue
        if isinstance(item.content, str):
            continue
        for j, part in enumerate(item.content):
            where = f"input[{i}].content[{j}]"
            if isinstance(part, InputFile):
                _check_file(part, where, item.role)
            if isinstance(part, InputImage) and not part.image_url:
                raise RequestInvalid(
                    "input_image parts need an image_url (file_id is not supported).", f"{where}.image_url"
                )


def _check_file(part: InputFile, where: str, role: str) -> None:
    """An `input_file` names its file one way: `file_data` or `file_url` (docs/API.md)."""
    if part.file_id is not None:
        raise RequestInvalid(
            f"Invalid '{where}.file_id': this gateway has no file store, so files cannot be referenced "
            "by id; send the file's content as `file_data` (a base64 data URL) or a `file_url`.",
            f"{where}.file_id",
            _UNSUPPORTED,
        )
    if role != "user":
        raise RequestInvalid(
            f"Invalid '{where}': input_file parts are accepted in user messages and tool outputs only.",
            where,
        )
    if (part.file_data is None) == (part.file_url is None):
        raise RequestInvalid(
            f"Invalid '{where}': an input_file needs exactly one of 'file_data' or 'file_url'.", where
        )


_UNSUPPORTED = "unsupported_parameter"
_OUTPUTS = (FunctionCallOutput, CustomToolCallOutput)  # tool outputs: their parts may hold files

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
        elif isinstance(value, dict):  # a dict value whose key msgspec does not name: the first not a string
            bad = [k for k, v in value.items() if not isinstance(v, str)]
            if bad:
                value, param = value[bad[0]], f"{param}.{bad[0]}"
    return value, param


def format_error(
    exc: msgspec.ValidationError, body: Any, limits: RequestLimits = DEFAULT_LIMITS
) -> RequestInvalid:
    """One msgspec validation failure -> the OpenAI message, with `param` the exact path."""
    m = _MESSAGE.match(str(exc))
    assert m is not None  # the pattern matches any string
    msg, path = m.group("msg"), m.group("path") or ""
    value, param = _walk(body, path)
    param = shown(param, 2 * ECHO_CHARS)  # a path holds client keys (`metadata.<key>`)
    if missing := re.match(r"Object missing required field `(\w+)`", msg):
        field = f"{param}.{missing.group(1)}" if param else missing.group(1)
        hint = ""
        if re.fullmatch(r"tools\[\d+\]\.name", field) and isinstance(value, dict) and "function" in value:
            hint = (
                ' (tools use the flat Responses shape {"type": "function", "name": ..., "parameters": ...})'
            )
        return RequestInvalid(f"Missing required parameter: '{field}'{hint}.", field)
    if m.group("key"):
        return RequestInvalid(f"Invalid key in '{param}': {shown(msg)}.", param)
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
        if param == "max_output_tokens":
            hi = min(hi, float(limits.max_output_tokens))
        return RequestInvalid(
            f"Invalid '{param}': must be between {_num(lo)} and {_num(hi)}, got {shown(value)}.", param
        )
    if bad := re.match(r"Invalid (?:enum )?value (.*)$", msg, re.S):
        return _value_error(param, shown(bad.group(1)))
    return RequestInvalid(f"Invalid '{param}': {shown(msg, 2 * ECHO_CHARS)}.", param or None)


def _length_error(param: str, value: Any, kind: str, op: str, n: int) -> RequestInvalid:
    if op == ">=" and kind == "str":
        return RequestInvalid(f"Invalid '{param}': empty string.", param)
    unit = "characters" if kind == "str" else "items"
    return RequestInvalid(
        f"Invalid '{param}': expected {'at most' if op == '<=' else 'at least'} {n} {unit}.", param
    )


def _value_error(param: str, value: str) -> RequestInvalid:
    tool = re.fullmatch(r"(tools\[\d+\])\.type", param)
    if tool:
        return RequestInvalid(f"Unsupported tool type {value} in '{tool.group(1)}'.", tool.group(1))
    if param == "truncation":
        return RequestInvalid("Invalid value for 'truncation': expected 'auto' or 'disabled'.", param)
    suffix = f" {_ROLES}" if param.endswith(".role") else ""
    return RequestInvalid(f"Invalid value for '{param}': {value}.{suffix}", param)


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
