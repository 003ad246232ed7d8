"""The helpers that keep secrets and client input out of messages: masking, and echoing cut short."""

from __future__ import annotations

import pytest

from responses_gateway.errors import PreviousResponseNotFound, StoreUnavailable
from responses_gateway.protocol.errors import shown
from responses_gateway.redaction import mask_secrets, mask_url


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("https://user:pw@host/v1", "https://***@host/v1"),
        ("redis://user:pw@10.0.0.1:6379/0", "redis://***@10.0.0.1:6379/0"),
        ("rediss://:only-password@cache:6380", "rediss://***@cache:6380"),
        ("http://host:8000/v1 (no user info)", "http://host:8000/v1 (no user info)"),
        ("host:6379", "host:6379"),
    ],
)
def test_mask_url(text: str, masked: str) -> None:
    assert mask_url(text) == masked


def test_mask_secrets() -> None:
    text = (
        "invalid credential: Bearer abc.DEF-123_x, key sk-proj-ABCDEFGH12345678, "
        "configured my-own-backend-key, url https://u:p@h/x, Basic dXNlcjpwdw=="
    )
    out = mask_secrets(text, ["my-own-backend-key", None, ""])
    for secret in ("abc.DEF-123_x", "sk-proj-ABCDEFGH12345678", "my-own-backend-key", "u:p@", "dXNlcjpwdw"):
        assert secret not in out
    assert out.startswith("invalid credential: Bearer ***, key ***, configured ***, url https://***@h/x")


def test_shown_cuts_client_values_short() -> None:
    assert shown("short") == "short"
    assert shown("x" * 64) == "x" * 64
    assert shown("x" * 8_000_000) == "x" * 64 + "…"
    assert shown(12) == "12"
    message = PreviousResponseNotFound("resp_" + "z" * 8_000_000).message
    assert len(message) < 120 and message.endswith("…' not found.")


def test_store_unavailable_keeps_its_detail_off_the_wire() -> None:
    exc = StoreUnavailable("Error 111 connecting to 127.0.0.1:18820. Connection refused.", retry_after=2)
    assert exc.to_dict()["error"]["message"] == "The response store is unavailable."
    assert exc.headers == {"Retry-After": "2"}
    assert "127.0.0.1" in exc.detail and "127.0.0.1" in str(exc)  # for our log and the CLI
