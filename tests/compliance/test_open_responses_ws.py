"""The Open Responses compliance suite's WebSocket cases (the runner's CLI-only set), ported case for
case with the `websockets` library: one socket on `/v1/responses` with the Bearer header, one
`response.create` message per turn, every event validated against the spec (an `error` as the spec's
WebSocketErrorEvent), on every store."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.compliance.harness import (
    StreamResult,
    SuiteConfig,
    assert_passed,
    completed_status,
    has_response_id,
    is_failed_turn,
    judge,
    streaming_events,
    streaming_schema,
    turn_error_code,
    ws_session,
)

STREAM_CHECKS = [streaming_events, streaming_schema, completed_status]


def _create(config: SuiteConfig, **fields: Any) -> dict[str, Any]:
    return {"type": "response.create", "model": config.model, **fields}


def _turn_errors(turn: StreamResult | None, label: str = "") -> list[str]:
    """The runner's createResponseResult for one turn: its final response judged like an HTTP one."""
    if turn is None:
        return [f"{label}turn did not run"]
    return [f"{label}{e}" for e in judge("ResponseResource", turn.final_response, STREAM_CHECKS, turn)]


def _previous_id(turns: list[StreamResult]) -> str:
    response_id = (turns[0].final_response or {}).get("id")
    if not response_id:
        raise AssertionError("First WebSocket turn did not return a response id")
    return str(response_id)


def test_websocket_response(suite: SuiteConfig) -> None:
    """websocket-response: Creates a response over WebSocket and validates returned streaming events."""
    body = _create(suite, input=[{"type": "message", "role": "user", "content": "Count from 1 to 3."}])
    [turn] = ws_session(suite, [body])
    assert_passed(_turn_errors(turn))


def test_websocket_sequential_responses(suite: SuiteConfig) -> None:
    """websocket-sequential-responses: Sends multiple response.create messages on one WebSocket
    connection and validates sequential terminal responses."""
    steps: list[Any] = [
        _create(suite, store=False, input="Reply with exactly: first"),
        _create(suite, store=False, input="Reply with exactly: second"),
    ]
    turns = ws_session(suite, steps)
    assert_passed([e for i, t in enumerate(turns) for e in _turn_errors(t, f"Turn {i + 1}: ")])


def test_websocket_continuation(suite: SuiteConfig) -> None:
    """websocket-continuation: Continues a store:false response on the active WebSocket using
    previous_response_id and only new input."""
    first = _create(suite, store=False, input="Remember the code word: cobalt. Reply with OK.")
    turns = ws_session(
        suite,
        [
            first,
            lambda done: _create(
                suite,
                store=False,
                previous_response_id=_previous_id(done),
                input="What is the code word? Reply with only the code word.",
            ),
        ],
    )
    first_errors = turns[0].errors + has_response_id(turns[0].final_response)
    assert_passed(first_errors or _turn_errors(turns[1] if len(turns) > 1 else None))


def test_websocket_reconnect_store_false_recovery(suite: SuiteConfig) -> None:
    """websocket-reconnect-store-false-recovery: Creates a store:false response, reconnects on a new
    WebSocket, validates previous_response_not_found, then starts a clean recovery response."""
    [first] = ws_session(
        suite, [_create(suite, store=False, input="Remember the code word: copper. Reply with OK.")]
    )
    first_errors = first.errors + has_response_id(first.final_response)
    assert_passed(first_errors)
    assert first.final_response is not None
    reconnect = _create(
        suite,
        store=False,
        previous_response_id=first.final_response["id"],
        input="Try to continue after reconnect. Reply with exactly: reconnected",
    )
    recovery = _create(
        suite,
        store=False,
        input=[
            {
                "type": "message",
                "role": "user",
                "content": "The previous store:false chain could not continue after reconnect. "
                "Start a new response and reply with exactly: recovered",
            }
        ],
    )
    turns = ws_session(suite, [reconnect, recovery])
    errors = list(turns[0].errors)
    code = turn_error_code(turns[0])
    if code != "previous_response_not_found":
        errors.append(
            "Expected previous_response_not_found after reconnecting a store:false chain but got "
            f"{code or 'no error code'}"
        )
    errors += _turn_errors(turns[1] if len(turns) > 1 else None, "Recovery: ")
    assert_passed(errors)


def test_websocket_previous_response_not_found(suite: SuiteConfig) -> None:
    """websocket-previous-response-not-found: Verifies store:false continuation with an uncached
    previous_response_id returns previous_response_not_found."""
    body = _create(
        suite,
        store=False,
        previous_response_id=f"resp_openresponses_missing_{int(time.time() * 1000)}",
        input="This should fail because the previous response is missing.",
    )
    [turn] = ws_session(suite, [body])
    errors = list(turn.errors)
    code = turn_error_code(turn)
    if code != "previous_response_not_found":
        errors.insert(0, f"Expected previous_response_not_found but got {code or 'no error code'}")
    assert_passed(errors)


def test_websocket_failed_continuation_evicts_cache(suite: SuiteConfig) -> None:
    """websocket-failed-continuation-evicts-cache: Fails a store:false continuation and verifies the
    referenced previous_response_id is evicted from connection-local state."""
    first = _create(suite, store=False, input="Remember the code word: ember. Reply with OK.")
    bad_output = [
        {
            "type": "function_call_output",
            "call_id": "call_openresponses_missing",
            "output": "No matching tool call exists in the previous response.",
        }
    ]
    turns = ws_session(
        suite,
        [
            first,
            lambda done: _create(
                suite, store=False, previous_response_id=_previous_id(done), input=bad_output
            ),
            lambda done: _create(
                suite,
                store=False,
                previous_response_id=_previous_id(done),
                input="Try to continue after the failed turn. Reply with exactly: stale",
            ),
        ],
    )
    errors = turns[0].errors + has_response_id(turns[0].final_response)
    failed = turns[1] if len(turns) > 1 else None
    retry = turns[2] if len(turns) > 2 else None
    if failed is None or failed.request is None:
        errors.append("Failed WebSocket continuation turn did not run")
    elif not is_failed_turn(failed):
        status = (failed.final_response or {}).get("status", "no terminal response")
        errors += [
            *failed.errors,
            f"Expected second WebSocket continuation turn to fail but got status {status}",
        ]
    if retry is None or retry.request is None:
        errors.append("Retry WebSocket continuation turn did not run")
    else:
        errors += retry.errors
        code = turn_error_code(retry)
        if code != "previous_response_not_found":
            got = code or "no error code"
            errors.append(
                f"Expected previous_response_not_found after failed continuation eviction but got {got}"
            )
    assert_passed(errors)


def test_websocket_compact_new_chain(suite: SuiteConfig) -> None:
    """websocket-compact-new-chain: Uses /responses/compact output as the base input for a new
    WebSocket response without previous_response_id."""
    compact_request = {
        "model": suite.model,
        "input": [
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Remember the compaction code word: slate."}],
            },
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "OK."}]},
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Compress this conversation for later continuation."}
                ],
            },
        ],
    }
    resp = httpx.post(
        f"{suite.base_url}/responses/compact", json=compact_request, headers=suite.headers, timeout=60
    )
    assert resp.status_code == 200, f"HTTP {resp.status_code} from /responses/compact: {resp.text}"
    output = resp.json().get("output")
    assert isinstance(output, list), "Compaction response did not include an output array"
    request = _create(
        suite,
        store=False,
        input=[
            *output,
            {
                "type": "message",
                "role": "user",
                "content": "Continue from here. Reply with exactly: compacted",
            },
        ],
        tools=[],
    )
    # the compacted window is the server's own output, passed back as-is: not checked as a request
    [turn] = ws_session(suite, [request], validate_requests=False)
    assert_passed(_turn_errors(turn))
