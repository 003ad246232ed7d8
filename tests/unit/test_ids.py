"""ids.py: response ids carry their thread's tag, item ids lead back to their response."""

from __future__ import annotations

import re

import pytest

from responses_gateway.ids import (
    INPUT_INDEX_BASE,
    TAG_LEN,
    is_response_id,
    item_id,
    new_response_id,
    response_id_of_item,
    thread_tag,
)


def test_response_id_shape() -> None:
    rid = new_response_id()
    assert re.fullmatch(r"resp_[0-9a-f]{48}", rid)
    assert is_response_id(rid)


def test_root_ids_are_unique_and_mint_new_tags() -> None:
    ids = {new_response_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert len({thread_tag(i) for i in ids}) == 1000


def test_descendants_share_the_thread_tag() -> None:
    root = new_response_id()
    child = new_response_id(root)
    grandchild = new_response_id(child)
    tag = thread_tag(root)
    assert tag is not None and len(tag) == TAG_LEN
    assert thread_tag(child) == thread_tag(grandchild) == tag
    assert child != grandchild != root
    # 128 random bits after the tag: siblings differ there
    assert child[5 + TAG_LEN :] != new_response_id(root)[5 + TAG_LEN :]


def test_a_foreign_parent_starts_a_new_thread() -> None:
    child = new_response_id("resp_not_ours")
    assert is_response_id(child)
    assert thread_tag(child) is not None


@pytest.mark.parametrize(
    "value",
    ["", "resp_", "resp_xyz", "msg_" + "0" * 48, "resp_" + "0" * 47, "resp_" + "0" * 49, "resp_" + "A" * 48],
)
def test_not_response_ids(value: str) -> None:
    assert not is_response_id(value)
    assert thread_tag(value) is None


@pytest.mark.parametrize("prefix", ["msg", "fc", "rs"])
@pytest.mark.parametrize("index", [0, 1, 0xFF, INPUT_INDEX_BASE, INPUT_INDEX_BASE + 3, 0xFFFF])
def test_item_ids_lead_back_to_their_response(prefix: str, index: int) -> None:
    rid = new_response_id()
    iid = item_id(prefix, rid, index)
    assert re.fullmatch(rf"{prefix}_[0-9a-f]{{52}}", iid)
    assert response_id_of_item(iid) == rid


def test_item_ids_are_distinct_per_index_and_response() -> None:
    a, b = new_response_id(), new_response_id()
    ids = {item_id("msg", r, i) for r in (a, b) for i in range(50)}
    assert len(ids) == 100


@pytest.mark.parametrize(
    "value",
    ["msg_abc", "msg_" + "0" * 51, "msg_" + "0" * 53, "MSG_" + "0" * 52, "resp_" + "0" * 48, "_" + "0" * 52],
)
def test_foreign_item_ids(value: str) -> None:
    assert response_id_of_item(value) is None
