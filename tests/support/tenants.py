"""Two tenants on one gateway (or on two gateways sharing a store), and the proof that one tenant's
objects answer another exactly as ids that do not exist do."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from responses_gateway.ids import item_id, new_response_id

KEY_A = "rgw-team-a-key-0123456789abcdef0123456789"
KEY_B = "rgw-team-b-key-fedcba9876543210fedcba9876"


def auth_block(**extra: Any) -> dict[str, Any]:
    """team-a's key given as is, team-b's only as its SHA-256."""
    return {
        "api_keys": [
            {"tenant": "team-a", "key": KEY_A},
            {"tenant": "team-b", "key_sha256": hashlib.sha256(KEY_B.encode()).hexdigest()},
        ],
        **extra,
    }


def client(base_url: str, key: str) -> OpenAI:
    return OpenAI(base_url=base_url, api_key=key, max_retries=0)


def _raw(method: str, url: str, key: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.request(method, url, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=15)


def _same_apart_from(theirs: httpx.Response, unknown: httpx.Response, their_id: str, unknown_id: str) -> None:
    """Same status, same headers that matter, and bodies byte-identical once each id is blanked."""
    assert theirs.status_code == unknown.status_code
    assert theirs.headers["content-type"] == unknown.headers["content-type"]
    assert their_id in theirs.text and unknown_id in unknown.text
    assert theirs.content.replace(their_id.encode(), b"<id>") == unknown.content.replace(
        unknown_id.encode(), b"<id>"
    )


def assert_isolated(url_a: str, url_b: str) -> None:
    """team-a creates on `url_a`; team-b, on `url_b`, finds none of it: every answer is the one an
    unknown id of the same shape (same thread tag, so the same Redis slot) gets. team-a's own
    follow-ups keep working, and team-b's DELETE deleted nothing."""
    a = client(url_a, KEY_A)
    first = a.responses.create(model="echo", input="secret of team a")
    second = a.responses.create(model="echo", input="more", previous_response_id=first.id)
    theirs = second.id
    unknown = new_response_id(theirs)
    items = a.responses.input_items.list(theirs)
    their_item = items.data[0].id
    assert their_item is not None
    unknown_item = item_id(their_item.split("_", 1)[0], unknown, int(their_item[-4:], 16))
    their_output = second.output[0].id

    b = client(url_b, KEY_B)
    with pytest.raises(openai.NotFoundError):
        b.responses.retrieve(theirs)
    with pytest.raises(openai.NotFoundError):
        b.responses.input_items.list(theirs)
    with pytest.raises(openai.NotFoundError):
        b.responses.delete(theirs)
    with pytest.raises(openai.BadRequestError) as chained:
        b.responses.create(model="echo", input="x", previous_response_id=theirs)
    assert chained.value.code == "previous_response_not_found"

    for path in ("/responses/{}", "/responses/{}/input_items"):
        for method in ("GET", "DELETE") if path == "/responses/{}" else ("GET",):
            _same_apart_from(
                _raw(method, url_b + path.format(theirs), KEY_B),
                _raw(method, url_b + path.format(unknown), KEY_B),
                theirs,
                unknown,
            )
    for prev in (theirs, first.id):
        other = new_response_id(prev)
        _same_apart_from(
            _raw(
                "POST",
                f"{url_b}/responses",
                KEY_B,
                {"model": "echo", "input": "x", "previous_response_id": prev},
            ),
            _raw(
                "POST",
                f"{url_b}/responses",
                KEY_B,
                {"model": "echo", "input": "x", "previous_response_id": other},
            ),
            prev,
            other,
        )
    for item, unknown_one in ((their_item, unknown_item), (their_output, item_id("msg", unknown, 0))):
        ref = {"model": "echo", "input": [{"type": "item_reference", "id": item}]}
        ref_unknown = {"model": "echo", "input": [{"type": "item_reference", "id": unknown_one}]}
        got = _raw("POST", f"{url_b}/responses", KEY_B, ref)
        assert got.status_code == 400, got.text
        _same_apart_from(got, _raw("POST", f"{url_b}/responses", KEY_B, ref_unknown), item, unknown_one)

    # team-a still has everything (team-b's DELETE deleted nothing), and can use it
    assert a.responses.retrieve(theirs).id == theirs
    assert [i.id for i in a.responses.input_items.list(theirs).data] == [i.id for i in items.data]
    again = a.responses.create(
        model="echo",
        input=[{"type": "item_reference", "id": their_output}, {"role": "user", "content": "go on"}],
        previous_response_id=first.id,
    )
    assert again.status == "completed"
    # and team-b's own objects are invisible to team-a in turn
    own = b.responses.create(model="echo", input="team b")
    assert b.responses.retrieve(own.id).id == own.id
    with pytest.raises(openai.NotFoundError):
        a.responses.retrieve(own.id)
