"""Drive the typed translators from plain dicts, as unit tests write requests and chunks."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from responses_gateway.protocol import CreateRequest, parse_create
from responses_gateway.protocol.chat import ChatChunk
from responses_gateway.protocol.items import InputItem, Item, ItemReference
from responses_gateway.translate.items import normalize_input
from responses_gateway.translate.output_items import Sealer
from responses_gateway.translate.request import (
    build_chat_request,
    check_tool_outputs,
    encode_messages,
    messages_json,
    render,
)
from responses_gateway.translate.response import new_response
from responses_gateway.translate.stream import StreamTranslator
from responses_gateway.translate.tools import ToolMap

RID = "resp_" + "cd" * 24


def parse(body: dict[str, Any]) -> CreateRequest:
    return parse_create(orjson.dumps(body))


def items(raw: list[dict[str, Any]] | str, rid: str = RID) -> list[InputItem]:
    return normalize_input(parse({"model": "m", "input": raw}).input, rid)


def tool_map(tools: list[dict[str, Any]] | None, *, reject_hosted: bool = False) -> ToolMap:
    return ToolMap(parse({"model": "m", "tools": tools}).tools, reject_hosted=reject_hosted)


def chat_tool_names(tm: ToolMap) -> list[str]:
    return [t.function.name for t in tm.chat_tools()]


def chat(body: dict[str, Any], history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The Chat body (as a dict) for a create body, after `history` items stored as one turn."""
    req = parse(body)
    tools = ToolMap(req.tools)
    turns = [encode_messages(render(_plain(items(history))))] if history else []
    current = _plain(normalize_input(req.input, RID))
    check_tool_outputs(current, turns)
    messages = messages_json(req.instructions, turns, render(current))
    result: dict[str, Any] = orjson.loads(msgspec.json.encode(build_chat_request(req, messages, tools)))
    return result


def _plain(found: list[InputItem]) -> list[Item]:
    return [it for it in found if not isinstance(it, ItemReference)]


def translate(
    chunks: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None = None,
    *,
    seal: Sealer | None = None,
    events: bool = True,
    created_at: int = 100,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Events (as dicts, the terminal one last) and the settled response for a list of chunks."""
    req = parse({"model": "m", "tools": tools})
    tr = StreamTranslator(
        new_response(req, RID, created_at),
        lambda p, i: f"{p}_{i}",
        ToolMap(req.tools),
        seal=seal,
        events=events,
    )
    evs = list(tr.start())
    for c in chunks:
        evs += tr.feed(msgspec.convert(_raw_fields(c), ChatChunk))
    response, closing = tr.finish(created_at + 1)
    evs += closing
    evs.append(tr.terminal_event(response))
    as_dicts = [orjson.loads(msgspec.json.encode(e)) for e in evs]
    return as_dicts, orjson.loads(msgspec.json.encode(response))


def _raw_fields(chunk: dict[str, Any]) -> dict[str, Any]:
    """msgspec cannot convert Python values into Raw fields: encode those first."""
    out = dict(chunk)
    for key in ("usage", "error", "message"):
        if key in out:
            out[key] = msgspec.Raw(orjson.dumps(out[key]))
    return out
