"""The Open Responses compliance suite's compaction cases over HTTP (`compact-response`,
`compact-missing-model`), ported case for case and judged in strict-schema mode on every store.
The WebSocket compaction case (`websocket-compact-new-chain`) is in test_open_responses_ws.py."""

from __future__ import annotations

from tests.compliance.harness import (
    SuiteConfig,
    assert_passed,
    compact_object,
    has_output,
    has_output_type,
    run_http_case,
)


def test_compact_response(suite: SuiteConfig) -> None:
    """compact-response: Compacts a short conversation with prompt_cache_key and validates the
    compacted response schema."""
    body = {
        "model": suite.model,
        "prompt_cache_key": "openresponses-compact-test",
        "input": [
            {
                "type": "message",
                "role": "user",
                "content": "We agreed to launch on Tuesday and notify support first.",
            },
            {
                "type": "message",
                "role": "assistant",
                "content": "Understood. The launch is Tuesday, with support notified beforehand.",
            },
        ],
    }
    errors, _ = run_http_case(
        suite,
        body,
        [has_output, compact_object, has_output_type("compaction")],
        endpoint="/responses/compact",
        schema="CompactResource",
    )
    assert_passed(errors)


def test_compact_missing_model(suite: SuiteConfig) -> None:
    """compact-missing-model: Rejects a compact request that omits the required model field."""
    body = {"input": [{"type": "message", "role": "user", "content": "Compact this conversation."}]}
    errors, _ = run_http_case(
        suite, body, [], endpoint="/responses/compact", schema=None, expected_statuses=(400, 422)
    )
    assert_passed(errors)
