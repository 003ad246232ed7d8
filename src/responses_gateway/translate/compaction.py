"""Compaction, the pure part: the summarising request, the sealed payload, the retained user
messages, and compaction items restored as context. No I/O; ids, clock and cipher are passed in."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgspec

from responses_gateway.errors import InvalidRequest
from responses_gateway.ids import item_id
from responses_gateway.protocol.chat import ChatChunk, ChatImage, ChatMessage, ChatText, UserMessage
from responses_gateway.protocol.items import Compaction, ContentPart, InputImage, InputText, Item, Message

__all__ = [
    "RESTORED_PREFIX",
    "SUMMARY_PROMPT",
    "Sealed",
    "chunk_text",
    "restore_compactions",
    "retained_user_messages",
]

SUMMARY_PROMPT = (
    "Stop here and write a summary of the conversation above, to replace it: another assistant will "
    "continue from your summary alone, so keep every fact it needs. Include the user's goals and "
    "constraints, decisions made and why, what has been done (files, commands, tool calls and their "
    "results), open questions, and the next steps. Quote identifiers, names, numbers and error texts "
    "exactly. Write only the summary, in the language of the conversation, without a preamble."
)
# The restored summary, as the model sees it: a user message opening with this line.
RESTORED_PREFIX = "Summary of the earlier part of this conversation (compacted):\n\n"

_decode_messages = msgspec.json.Decoder(list[ChatMessage]).decode


class Sealed(msgspec.Struct, kw_only=True):
    """What a compaction item's `encrypted_content` carries."""

    summary: str
    model: str
    created_at: int


def chunk_text(chunk: ChatChunk) -> str:
    """The answer's text in one chunk, streamed (`delta`) or whole (`message`); reasoning left out."""
    parts: list[str] = []
    for choice in chunk.choices or ():
        delta = choice.delta or choice.message
        if delta is not None and delta.content:
            parts.append(delta.content)
    return "".join(parts)


def _restored_message(summary: str, item: Compaction) -> Message:
    return Message(
        role="user", content=[InputText(RESTORED_PREFIX + summary)], id=item.id, status="completed"
    )


def restore_compactions(
    items: list[Item], open_token: Callable[[str], bytes | None] | None, param: str = "input"
) -> list[Item]:
    """A copy of `items` with each compaction item replaced by the user message that restores its
    summary. A token we cannot open (made elsewhere, altered, for another tenant, or no key is
    configured: `open_token` is None) is a 400 naming the item."""
    out: list[Item] = []
    for i, item in enumerate(items):
        if not isinstance(item, Compaction):
            out.append(item)
            continue
        where = f"{param}[{i}]"
        if open_token is None:
            raise InvalidRequest(
                f"'{where}': compaction items cannot be opened on this gateway: it has no "
                "response_api.encryption_key.",
                param=f"{where}.encrypted_content",
                code="invalid_encrypted_content",
            )
        payload = open_token(item.encrypted_content)
        sealed: Sealed | None = None
        if payload is not None:
            try:
                sealed = msgspec.json.decode(payload, type=Sealed)
            except msgspec.ValidationError:
                sealed = None
        if sealed is None:
            raise InvalidRequest(
                f"'{where}': the compaction item's encrypted_content could not be verified: it was not "
                "made by this gateway for this tenant, or it was altered.",
                param=f"{where}.encrypted_content",
                code="invalid_encrypted_content",
            )
        out.append(_restored_message(sealed.summary, item))
    return out


def _user_content(message: UserMessage) -> list[ContentPart]:
    content = message.content
    if isinstance(content, str):
        return [InputText(content)]
    parts: list[ContentPart] = []
    for part in content:
        if isinstance(part, ChatText):
            parts.append(InputText(part.text))
        elif isinstance(part, ChatImage):
            parts.append(InputImage(image_url=part.image_url.url, detail=part.image_url.detail or "auto"))
    return parts


def _is_restored(content: str | list[ContentPart]) -> bool:
    first = content if isinstance(content, str) else next((getattr(p, "text", "") for p in content), "")
    return isinstance(first, str) and first.startswith(RESTORED_PREFIX)


def retained_user_messages(
    history: Sequence[bytes], items: Sequence[Item], response_id: str
) -> list[Message]:
    """The user messages of the compacted context, oldest first: those of the stored chain (decoded
    from its Chat messages, given ids of this compaction) and those of the input (with their ids).
    Summaries restored from earlier compactions are left out: the new summary covers them."""
    out: list[Message] = []
    for turn in history:
        for message in _decode_messages(turn):
            if isinstance(message, UserMessage):
                content = _user_content(message)
                if not _is_restored(content):
                    msg_id = item_id("msg", response_id, len(out))
                    out.append(Message(role="user", content=content, id=msg_id, status="completed"))
    for item in items:
        if isinstance(item, Message) and item.role == "user" and not _is_restored(item.content):
            out.append(item)
    return out
