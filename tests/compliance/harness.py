"""A Python port of the Open Responses compliance runner (openresponses/openresponses,
`src/lib/compliance-tests.ts` and `sse-parser.ts`): how it sends a case, reads SSE and WebSocket
streams, and judges the answer. Schema checks are strict (tests/support/open_responses.py): the suite's
zod schemas, generated from the same OpenAPI document, are what it validates with.

A case fails with every error it found, as the runner lists them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.support.open_responses import check_event, problems

TURN_TIMEOUT = 30.0  # the runner's per-turn WebSocket timer
TERMINAL = ("response.completed", "response.failed", "response.incomplete")
Body = dict[str, Any]


@dataclass(frozen=True)
class SuiteConfig:
    """The runner's TestConfig: `--base-url` (with /v1), `--api-key` (Bearer), `--model`."""

    base_url: str
    api_key: str
    model: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json", "Authorization": f"Bearer {self.api_key}"}

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + "/responses"


@dataclass
class StreamResult:
    """What one SSE stream or one WebSocket turn gave: its events, their validation errors, and the
    response of its terminal event (or the error event's code)."""

    events: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    final_response: dict[str, Any] | None = None
    error_code: str | None = None
    error_event: dict[str, Any] | None = None
    request: Body | None = None


Validator = Callable[[dict[str, Any], StreamResult | None], list[str]]


# -- validators (the runner's, one for one) ---------------------------------------------------------


def has_output(response: dict[str, Any], _: StreamResult | None) -> list[str]:
    return [] if response.get("output") else ["Response has no output items"]


def has_output_type(kind: str) -> Validator:
    def validate(response: dict[str, Any], _: StreamResult | None) -> list[str]:
        found = any(item.get("type") == kind for item in response.get("output") or [])
        return [] if found else [f'Expected output item of type "{kind}" but none found']

    return validate


def has_assistant_message_phase(phase: str) -> Validator:
    def validate(response: dict[str, Any], _: StreamResult | None) -> list[str]:
        found = any(
            item.get("type") == "message" and item.get("role") == "assistant" and item.get("phase") == phase
            for item in response.get("output") or []
        )
        return [] if found else [f'Expected assistant output message with phase "{phase}" but none found']

    return validate


def completed_status(response: dict[str, Any], _: StreamResult | None) -> list[str]:
    if "status" not in response:
        return ['Expected a standard response object with a "status" field']
    status = response["status"]
    return [] if status == "completed" else [f'Expected status "completed" but got "{status}"']


def compact_object(response: dict[str, Any], _: StreamResult | None) -> list[str]:
    kind = response.get("object")
    return (
        [] if kind == "response.compaction" else [f'Expected object "response.compaction" but got "{kind}"']
    )


def streaming_events(_: dict[str, Any], stream: StreamResult | None) -> list[str]:
    return [] if stream is not None and stream.events else ["No streaming events received"]


def streaming_schema(_: dict[str, Any], stream: StreamResult | None) -> list[str]:
    return list(stream.errors) if stream is not None else []


def judge(
    component: str, data: Any, validators: list[Validator], stream: StreamResult | None = None
) -> list[str]:
    """Schema first (the runner's zod parse), then the case's validators on the parsed answer."""
    errors = [*(stream.errors if stream else [])]
    found = problems(component, data)
    if found:
        return errors + found
    return [e for v in validators for e in v(data, stream) if e not in errors] + errors


def assert_passed(errors: list[str]) -> None:
    assert not errors, "compliance case failed:\n  " + "\n  ".join(errors)


# -- HTTP ---------------------------------------------------------------------------------------------


def post(config: SuiteConfig, endpoint: str, body: Body, *, stream: bool = False) -> httpx.Response:
    payload = {**body, "stream": True} if stream else body
    return httpx.post(f"{config.base_url}{endpoint}", json=payload, headers=config.headers, timeout=60)


def _validated(data: Any, result: StreamResult, *, websocket: bool) -> None:
    """One event: validated against its schema; a terminal one gives the final response."""
    result.events.append(data)
    try:
        check_event(data, websocket=websocket)
    except AssertionError as exc:
        result.errors.append(f"Event validation failed for {data.get('type')}: {exc}")
    if data.get("type") in TERMINAL and isinstance(data.get("response"), dict):
        result.final_response = data["response"]


def parse_sse(resp: httpx.Response) -> StreamResult:
    """The runner's parseSSEStream: `event:`/`data:` blocks; `[DONE]` ignored; bad JSON an error."""
    result = StreamResult()
    for block in resp.text.split("\n\n"):
        lines = [line for line in block.split("\n") if line.startswith("data:")]
        if not lines:
            continue
        raw = "\n".join(line[5:].lstrip() for line in lines)
        if raw == "[DONE]":
            continue
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            result.errors.append(f"Failed to parse event data: {raw[:200]}")
            continue
        _validated(data, result, websocket=False)
    return result


def run_http_case(
    config: SuiteConfig,
    body: Body,
    validators: list[Validator],
    *,
    streaming: bool = False,
    endpoint: str = "/responses",
    schema: str | None = "ResponseResource",
    expected_statuses: tuple[int, ...] = (200,),
) -> tuple[list[str], Any]:
    """The runner's runTest for an HTTP case: (errors, the parsed answer)."""
    resp = post(config, endpoint, body, stream=streaming)
    if resp.status_code not in expected_statuses:
        return [f"HTTP {resp.status_code}: {resp.text}"], resp.text
    if schema is None:
        return [], resp.text
    if streaming:
        result = parse_sse(resp)
        return judge(schema, result.final_response, validators, result), result.final_response
    data = resp.json()
    return judge(schema, data, validators), data


# -- WebSocket ----------------------------------------------------------------------------------------

Step = Body | Callable[[list[StreamResult]], Body]


def _error_code(data: Any) -> str | None:
    error = data.get("error") if isinstance(data, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


def turn_error_code(turn: StreamResult | None) -> str | None:
    if turn is None:
        return None
    return turn.error_code or _error_code(turn.final_response)


def is_failed_turn(turn: StreamResult | None) -> bool:
    return turn is not None and (
        turn.error_event is not None
        or turn_error_code(turn) is not None
        or (turn.final_response or {}).get("status") == "failed"
    )


def ws_session(
    config: SuiteConfig, steps: list[Step], *, validate_requests: bool = True
) -> list[StreamResult]:
    """The runner's makeWebSocketSession: one socket, one `response.create` per step, each sent after
    the previous turn ended (a terminal response event, or an error event)."""
    turns = [StreamResult() for _ in steps]
    with connect(config.ws_url, additional_headers=config.headers, open_timeout=10) as ws:
        for index, step in enumerate(steps):
            turn = turns[index]
            body = step(turns[:index]) if callable(step) else step
            if validate_requests:
                bad = problems("WebSocketResponseCreateEvent", body)
                if bad:
                    raise AssertionError(f"Request {index + 1}: WebSocket request " + "; ".join(bad))
            turn.request = body
            ws.send(json.dumps(body))
            if not _read_turn(ws, turn):
                return turns
    return turns


def _read_turn(ws: Any, turn: StreamResult) -> bool:
    """Messages until this turn ends; False when the socket closed or timed out first."""
    while True:
        try:
            message = ws.recv(timeout=TURN_TIMEOUT)
        except TimeoutError:
            turn.errors.append("Timed out waiting for terminal WebSocket response event")
            return False
        except ConnectionClosed:
            if turn.final_response is None and turn.error_code is None:
                turn.errors.append("WebSocket closed before a terminal response event")
            return False
        text = message.decode() if isinstance(message, bytes) else message
        if text == "[DONE]":
            if turn.final_response is None and turn.error_code is None:
                turn.errors.append("Received [DONE] before a terminal WebSocket event")
            return True
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            turn.errors.append(f"Failed to parse WebSocket event data: {text[:200]}")
            continue
        _validated(data, turn, websocket=True)
        if turn.final_response is not None and data.get("type") in TERMINAL:
            return True
        code = _error_code(data)
        if data.get("type") == "error" or code:
            turn.error_code = code
            turn.error_event = data
            if not code:
                turn.errors.append(f"WebSocket error event: {json.dumps(data)}")
            return True


def has_response_id(response: dict[str, Any] | None) -> list[str]:
    found = problems("ResponseResource", response)
    if found:
        return found
    assert response is not None
    return [] if response.get("id") else ["Warmup response did not include an id"]
