"""Ids: `resp_<tag><random>` where the tag is shared by a whole conversation thread.

A root response mints a new 16-hex tag; every descendant (through `previous_response_id`) reuses its
parent's tag, so a store can keep a whole thread in one Redis Cluster hash slot. 128 random bits
follow the tag, so ids stay unguessable. Item ids embed their response's hex and an index
(`msg_<48 hex of the response><4 hex index>`), so an `item_reference` finds its response without an
index or a scan.
"""

from __future__ import annotations

import os
import re

_RESP = re.compile(r"^resp_([0-9a-f]{48})\Z")  # \Z: `$` would let a trailing "\n" in
_ITEM = re.compile(r"^([a-z]+)_([0-9a-f]{48})([0-9a-f]{4})\Z")
TAG_LEN = 16
INPUT_INDEX_BASE = 0x8000  # item indexes >= this belong to a response's input, below to its output


def new_response_id(parent_id: str | None = None) -> str:
    """A fresh response id, in the parent's thread when there is a parent."""
    tag = thread_tag(parent_id) if parent_id else None
    if tag is None:
        tag = os.urandom(TAG_LEN // 2).hex()
    return f"resp_{tag}{os.urandom(16).hex()}"


def thread_tag(response_id: str) -> str | None:
    """The thread tag inside a response id, or None when the id is not one of ours."""
    m = _RESP.match(response_id)
    return m.group(1)[:TAG_LEN] if m else None


def is_response_id(value: str) -> bool:
    """True for a response id of ours: the only kind a store can hold (checked before any store
    access, so nothing else becomes part of a store key)."""
    return _RESP.match(value) is not None


def item_id(prefix: str, response_id: str, index: int) -> str:
    """The id of item `index` of a response: `msg_…`, `fc_…`, `rs_…`."""
    return f"{prefix}_{response_id[5:]}{index:04x}"


def response_id_of_item(value: str) -> str | None:
    """The response an item id of ours belongs to, or None for ids made elsewhere."""
    m = _ITEM.match(value)
    return f"resp_{m.group(2)}" if m else None


# The shape of an item id asked for (`after`): ours, or one a client chose itself (input items keep
# the ids they came with): printable ASCII, no spaces, at most this long. Others are not looked for.
MAX_ITEM_ID_CHARS = 256
_ANY_ITEM = re.compile(rf"^[\x21-\x7e]{{1,{MAX_ITEM_ID_CHARS}}}\Z")


def is_item_id(value: str) -> bool:
    """True for an id of the shape an item id asked for may have (see MAX_ITEM_ID_CHARS)."""
    return _ANY_ITEM.match(value) is not None


_CONV = re.compile(r"^conv_[0-9a-f]{48}\Z")


def new_conversation_id() -> str:
    """A fresh conversation id: `conv_` + 48 random hex (192 bits, unguessable)."""
    return f"conv_{os.urandom(24).hex()}"


def is_conversation_id(value: str) -> bool:
    """True for a conversation id of ours (checked before any store access)."""
    return _CONV.match(value) is not None


def new_conversation_item_id(prefix: str) -> str:
    """A fresh id for an item added to a conversation (`msg_…`, `fc_…`), not tied to a response."""
    return f"{prefix}_{os.urandom(24).hex()}"
