"""The Open Responses specification's JSON schema (its OpenAPI copy in tests/fuzz/data), as validators.

`check(component, value)` validates against `components.schemas.<component>` in strict mode: every
required key present, every type, enum and `oneOf` (exactly one branch) as the spec writes them, and
`additionalProperties` as the spec says (it leaves objects open: a key the spec does not list passes,
a listed key of the wrong shape fails). `check_event` picks the event's schema by its `type` from the
spec's streaming union, so an event type the spec does not have fails too.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema

SPEC_PATH = Path(__file__).parent.parent / "fuzz" / "data" / "open-responses-openapi.json"
SPEC: dict[str, Any] = json.loads(SPEC_PATH.read_text())
SCHEMAS: dict[str, Any] = SPEC["components"]["schemas"]


@functools.cache
def validator(component: str) -> jsonschema.Draft202012Validator:
    schema = {"$ref": f"#/components/schemas/{component}", "components": SPEC["components"]}
    return jsonschema.Draft202012Validator(schema)


def problems(component: str, value: Any) -> list[str]:
    """Every way `value` breaks the schema `component`, each with its JSON path."""
    found = []
    for err in validator(component).iter_errors(value):
        detail = err.message[:300]
        if err.context:  # a oneOf/anyOf: say why each branch failed, briefly
            detail += " | " + "; ".join(f"{e.json_path}: {e.message[:120]}" for e in err.context[:6])
        found.append(f"{err.json_path}: {detail}")
    return found


def check(component: str, value: Any) -> None:
    """Assert that `value` is a valid `component` of the spec."""
    errors = problems(component, value)
    assert not errors, f"not a valid {component}:\n  " + "\n  ".join(errors) + f"\nvalue: {value!r:.2000}"


def _event_schemas() -> dict[str, str]:
    """Event type -> its schema name, from the spec's union of stream events."""
    union = SPEC["paths"]["/responses"]["post"]["responses"]["200"]["content"]["text/event-stream"]["schema"]
    names = [branch["$ref"].rsplit("/", 1)[1] for branch in union["oneOf"]]
    table: dict[str, str] = {}
    for name in names:
        for kind in SCHEMAS[name]["properties"]["type"].get("enum", []):
            table[kind] = name
    return table


EVENT_SCHEMAS = _event_schemas()

# The one deliberate difference from the spec (docs/API.md, "Open Responses compliance"): reasoning
# text streams under OpenAI's names, which the openai SDKs and Codex read; the payload must still be
# exactly the spec's event of the other name.
OPENAI_NAMES = {
    "response.reasoning_text.delta": "response.reasoning.delta",
    "response.reasoning_text.done": "response.reasoning.done",
}


def check_event(event: dict[str, Any], *, websocket: bool = False) -> None:
    """Assert that one stream event (SSE `data`, or a WebSocket message) is valid in the spec; on a
    WebSocket an `error` is the spec's WebSocketErrorEvent."""
    kind = event.get("type")
    if websocket and kind == "error":
        check("WebSocketErrorEvent", event)
        return
    if kind in OPENAI_NAMES:
        event = {**event, "type": OPENAI_NAMES[kind]}
        kind = event["type"]
    assert kind in EVENT_SCHEMAS, f"event type {kind!r} is not in the spec ({sorted(EVENT_SCHEMAS)})"
    check(EVENT_SCHEMAS[kind], event)


def check_events(events: list[dict[str, Any]], *, websocket: bool = False) -> None:
    """Every event valid, and `sequence_number` strictly increasing from the first."""
    for event in events:
        check_event(event, websocket=websocket)
    numbers = [e["sequence_number"] for e in events if "sequence_number" in e]
    assert numbers == sorted(set(numbers)), f"sequence numbers not strictly increasing: {numbers}"
