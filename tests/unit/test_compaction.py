"""Compaction's pure parts: the two ciphers cannot open each other's tokens (own HKDF info, own
associated data), a compaction token is bound to its tenant, and restoring names the bad item."""

from __future__ import annotations

import msgspec
import pytest

from responses_gateway.crypto import CompactionCipher, ReasoningCipher
from responses_gateway.errors import InvalidRequest
from responses_gateway.protocol.chat import AssistantMessage, UserMessage
from responses_gateway.protocol.items import Compaction, InputText, Message
from responses_gateway.translate.compaction import (
    RESTORED_PREFIX,
    Sealed,
    restore_compactions,
    retained_user_messages,
)

SECRET = "unit-test secret"


def test_tokens_of_one_kind_do_not_open_as_the_other() -> None:
    reasoning, compaction = ReasoningCipher(SECRET), CompactionCipher(SECRET)
    r_token = reasoning.seal(b"payload")
    c_token = compaction.seal(b"payload", "team-a")
    assert reasoning.open(r_token) == b"payload" and compaction.open(c_token, "team-a") == b"payload"
    assert compaction.open(r_token, "team-a") is None and reasoning.open(c_token) is None
    # the prefix swapped does not help: the keys (HKDF info) differ
    assert compaction.open(CompactionCipher.PREFIX + r_token[len(ReasoningCipher.PREFIX) :], "team-a") is None
    assert reasoning.open(ReasoningCipher.PREFIX + c_token[len(CompactionCipher.PREFIX) :]) is None


def test_a_compaction_token_is_bound_to_its_tenant_and_its_key() -> None:
    token = CompactionCipher(SECRET).seal(b"x", "team-a")
    assert CompactionCipher(SECRET).open(token, "team-b") is None
    assert CompactionCipher(SECRET).open(token, "") is None
    assert CompactionCipher("another secret").open(token, "team-a") is None


def _sealed(cipher: CompactionCipher, summary: str) -> str:
    return cipher.seal(msgspec.json.encode(Sealed(summary=summary, model="m", created_at=1)), "")


def test_restore_replaces_compactions_and_names_a_bad_one() -> None:
    cipher = CompactionCipher(SECRET)
    user = Message(role="user", content=[InputText("hi")])
    items = [user, Compaction(encrypted_content=_sealed(cipher, "S"), id="cmp_1")]
    restored = restore_compactions(items, lambda t: cipher.open(t, ""))
    assert restored[0] is user
    assert restored[1] == Message(
        role="user", content=[InputText(RESTORED_PREFIX + "S")], id="cmp_1", status="completed"
    )
    # a token sealing something that is not our payload is refused like a forged one
    odd = Compaction(encrypted_content=cipher.seal(b'{"other": 1}', ""))
    for bad in (odd, Compaction(encrypted_content="rgwc1:AAAA")):
        with pytest.raises(InvalidRequest) as exc:
            restore_compactions([user, user, bad], lambda t: cipher.open(t, ""), "conversation")
        assert exc.value.param == "conversation[2].encrypted_content"
    with pytest.raises(InvalidRequest, match="encryption_key"):
        restore_compactions([bad], None)


def test_retained_user_messages_skip_restored_summaries() -> None:
    history = [
        msgspec.json.encode([UserMessage("one"), AssistantMessage("echo: one")]),
        msgspec.json.encode([UserMessage(RESTORED_PREFIX + "old summary"), UserMessage("two")]),
    ]
    items = [
        Message(role="user", content=[InputText("three")], id="msg_x"),
        Message(role="assistant", content="a"),
    ]
    kept = retained_user_messages(history, items, "resp_" + "1" * 48)
    assert [m.content[0].text for m in kept] == ["one", "two", "three"]  # type: ignore[index,union-attr]
    assert kept[0].id and kept[0].id.startswith("msg_") and kept[2].id == "msg_x"
