"""`POST /v1/responses/compact` with the openai SDK (`client.responses.compact`) on every store: the
backend summarises the context with our prompt, the summary comes back sealed in a compaction item,
and that item sent back as input restores the summary as context (in later chained turns too)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import openai
import pytest
from openai import OpenAI
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from responses_gateway.compaction import compact
from responses_gateway.config import BackendSettings, ResponseAPISettings
from responses_gateway.protocol.chat import AssistantMessage, UserMessage
from responses_gateway.protocol.compaction import CompactRequest
from responses_gateway.service import RequestContext, ResponsesService
from responses_gateway.stores.memory import MemoryStore
from responses_gateway.translate.compaction import RESTORED_PREFIX, SUMMARY_PROMPT
from responses_gateway.translate.request import encode_messages
from responses_gateway.upstream.http import HTTPUpstream
from tests.integration.conftest import STORES, store_block
from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway, gateway_settings, run_gateway
from tests.support.tenants import KEY_A, KEY_B, auth_block

KEY = "test-only compaction key"
SUMMARY = "echo: " + SUMMARY_PROMPT  # what the echo backend answers our prompt with


@pytest.fixture(params=STORES)
def sealing_gateway(request: pytest.FixtureRequest, echo: EchoBackend, tmp_path: Path) -> Iterator[Gateway]:
    """A gateway with an encryption key, on each store backend."""
    block = store_block(request.param, request, tmp_path)
    with run_gateway(gateway_settings(echo.base_url, block, encryption_key=KEY)) as gw:
        yield gw


def _client(gw: Gateway, key: str = "sk-test") -> OpenAI:
    return OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)


def _history() -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "plan a trip to Lima"},
        {"role": "assistant", "content": "Sure: when do you leave?"},
        {"role": "user", "content": "in May, for a week"},
    ]


def test_compact_input_then_continue_with_the_item(sealing_gateway: Gateway, echo: EchoBackend) -> None:
    client = _client(sealing_gateway)
    compacted = client.responses.compact(model="qwen3", input=_history(), instructions="be brief")  # type: ignore[arg-type]
    assert compacted.object == "response.compaction" and compacted.id.startswith("resp_")
    # the user messages of the context, then one compaction item
    assert [o.type for o in compacted.output] == ["message", "message", "compaction"]
    texts = [o.content[0].text for o in compacted.output[:2]]  # type: ignore[union-attr]
    assert texts == ["plan a trip to Lima", "in May, for a week"]
    item = compacted.output[2]
    assert item.type == "compaction" and item.id.startswith("cmp_")
    assert item.encrypted_content.startswith("rgwc1:") and "Lima" not in item.encrypted_content
    # the backend got the context and our prompt; its usage is the compaction's
    sent = echo.chat_requests()[-1]["body"]
    assert sent["messages"] == [
        {"role": "system", "content": "be brief"},
        *_history(),
        {"role": "user", "content": SUMMARY_PROMPT},
    ]
    assert compacted.usage.input_tokens == sum(len(m["content"].split()) for m in sent["messages"])
    assert compacted.usage.output_tokens == len(SUMMARY.split())
    # the compacted response is not stored
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(compacted.id)

    # the output sent back as input: the summary is restored as a user message
    next_input = [o.model_dump(exclude_none=True, warnings=False) for o in compacted.output]
    r1 = client.responses.create(model="qwen3", input=[*next_input, {"role": "user", "content": "hotels?"}])  # type: ignore[list-item]
    assert r1.output_text == "echo: hotels?"
    restored = {"role": "user", "content": RESTORED_PREFIX + SUMMARY}
    expected = [
        {"role": "user", "content": "plan a trip to Lima"},
        {"role": "user", "content": "in May, for a week"},
        restored,
        {"role": "user", "content": "hotels?"},
    ]
    assert echo.chat_requests()[-1]["body"]["messages"] == expected
    # the stored input keeps the sealed item as it came; a chained turn sees the summary again
    items = client.responses.input_items.list(r1.id, order="asc").data
    assert items[2].type == "compaction" and items[2].encrypted_content == item.encrypted_content  # type: ignore[union-attr]
    client.responses.create(model="qwen3", input="and food?", previous_response_id=r1.id)
    assert echo.chat_requests()[-1]["body"]["messages"][:4] == expected


def test_compact_previous_response_chain(sealing_gateway: Gateway, echo: EchoBackend) -> None:
    client = _client(sealing_gateway)
    r1 = client.responses.create(model="qwen3", input="one")
    r2 = client.responses.create(model="qwen3", input="two", previous_response_id=r1.id)
    compacted = client.responses.compact(model="qwen3", previous_response_id=r2.id, input="three")
    assert [o.type for o in compacted.output] == ["message", "message", "message", "compaction"]
    assert [o.content[0].text for o in compacted.output[:3]] == ["one", "two", "three"]  # type: ignore[union-attr]
    assert echo.chat_requests()[-1]["body"]["messages"] == [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "echo: one"},
        {"role": "user", "content": "two"},
        {"role": "assistant", "content": "echo: two"},
        {"role": "user", "content": "three"},
        {"role": "user", "content": SUMMARY_PROMPT},
    ]
    # compacting a context that holds a compaction: its summary is summarised again, not retained
    again = client.responses.compact(
        model="qwen3",
        input=[o.model_dump(exclude_none=True, warnings=False) for o in compacted.output],  # type: ignore[misc]
    )
    assert [o.type for o in again.output] == ["message", "message", "message", "compaction"]
    assert echo.chat_requests()[-1]["body"]["messages"][3] == {
        "role": "user",
        "content": RESTORED_PREFIX + SUMMARY,
    }


def _post(gw: Gateway, path: str, body: Any, key: str = "sk-test") -> httpx.Response:
    return httpx.post(
        f"{gw.base_url}{path}", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=15
    )


@pytest.fixture
def keyed_gateway(echo: EchoBackend) -> Iterator[Gateway]:
    with run_gateway(gateway_settings(echo.base_url, encryption_key=KEY)) as gw:
        yield gw


def test_bad_compact_requests_are_400s(keyed_gateway: Gateway, echo: EchoBackend) -> None:
    client = _client(keyed_gateway)
    missing = _post(keyed_gateway, "/responses/compact", {"input": "hi"})
    assert missing.status_code == 400
    assert missing.json()["error"]["param"] == "model" and "model" in missing.json()["error"]["message"]
    nothing = _post(keyed_gateway, "/responses/compact", {"model": "qwen3"})
    assert nothing.status_code == 400 and nothing.json()["error"]["param"] == "input"
    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.compact(model="qwen3", previous_response_id="resp_" + "0" * 48)
    assert exc.value.code == "previous_response_not_found"
    assert echo.chat_requests() == []  # none of them reached the backend


def test_forged_or_corrupt_compaction_items_are_400s(keyed_gateway: Gateway, echo: EchoBackend) -> None:
    client = _client(keyed_gateway)
    good = client.responses.compact(model="qwen3", input="remember 42").output[-1]
    token: str = good.encrypted_content  # type: ignore[union-attr]
    reasoning = client.responses.create(
        model="qwen3", input="[reasoning] hm", include=["reasoning.encrypted_content"], store=False
    ).output[0]
    reasoning_token: str = reasoning.encrypted_content  # type: ignore[union-attr]
    assert reasoning_token
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    for bad in (flipped, "gAAAAABforged", reasoning_token, token[:20]):
        r = _post(
            keyed_gateway,
            "/responses",
            {
                "model": "qwen3",
                "input": [
                    {"role": "user", "content": "hi"},
                    {"type": "compaction", "encrypted_content": bad},
                ],
            },
        )
        assert r.status_code == 400, bad
        err = r.json()["error"]
        assert err["param"] == "input[1].encrypted_content" and err["code"] == "invalid_encrypted_content"
        assert "input[1]" in err["message"]
    # a sealed compaction is not accepted as reasoning either: the reasoning item stays unopened
    client.responses.create(
        model="qwen3",
        input=[
            {"role": "user", "content": "x"},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": token},
            {"role": "user", "content": "y"},
        ],
    )
    assert "remember" not in str(echo.chat_requests()[-1]["body"])


def test_without_a_key_compaction_is_refused(memory_gateway: Gateway, echo: EchoBackend) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        _client(memory_gateway).responses.compact(model="qwen3", input="hi")
    assert exc.value.code == "compaction_unavailable" and "encryption_key" in exc.value.message
    item = {"type": "compaction", "encrypted_content": "rgwc1:abc"}
    r = _post(memory_gateway, "/responses", {"model": "qwen3", "input": [item]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "input[0].encrypted_content"
    assert echo.chat_requests() == []


def test_tenants_cannot_use_each_others_compactions(echo: EchoBackend) -> None:
    settings = gateway_settings(echo.base_url, encryption_key=KEY)
    settings = settings.model_copy(update={"auth": settings.auth.model_validate(auth_block())})
    with run_gateway(settings) as gw:
        a, b = _client(gw, KEY_A), _client(gw, KEY_B)
        first = a.responses.create(model="qwen3", input="secret of team a")
        with pytest.raises(openai.BadRequestError) as exc:  # another tenant's chain: as an unknown id
            b.responses.compact(model="qwen3", previous_response_id=first.id)
        assert exc.value.code == "previous_response_not_found"
        sealed = a.responses.compact(model="qwen3", previous_response_id=first.id).output[-1]
        item = sealed.model_dump(exclude_none=True, warnings=False)
        a.responses.create(model="qwen3", input=[item, {"role": "user", "content": "go on"}])  # type: ignore[list-item]
        r = _post(gw, "/responses", {"model": "qwen3", "input": [item]}, key=KEY_B)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_encrypted_content"


def test_a_create_ending_with_a_compaction_trigger(keyed_gateway: Gateway, echo: EchoBackend) -> None:
    client = _client(keyed_gateway)
    body: dict[str, Any] = {"model": "qwen3", "input": [*_history(), {"type": "compaction_trigger"}]}
    r = _post(keyed_gateway, "/responses", body)
    assert r.status_code == 200, r.text
    response = r.json()
    assert response["status"] == "completed" and response["store"] is False
    (item,) = response["output"]
    assert item["type"] == "compaction" and item["encrypted_content"].startswith("rgwc1:")
    assert response["usage"]["output_tokens"] == len(SUMMARY.split())
    assert echo.chat_requests()[-1]["body"]["messages"] == [
        *_history(),
        {"role": "user", "content": SUMMARY_PROMPT},
    ]
    with pytest.raises(openai.NotFoundError):  # never stored
        client.responses.retrieve(response["id"])
    # streamed: the standard events around the one item, in sequence
    with client.responses.stream(model="qwen3", input=body["input"]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(5))
    assert final.output[0].type == "compaction"
    # the trigger anywhere else is a 400 naming it
    bad = _post(
        keyed_gateway,
        "/responses",
        {"model": "qwen3", "input": [{"type": "compaction_trigger"}, {"role": "user", "content": "hi"}]},
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "input[0]"


def _spec_errors(instance: Any, name: str) -> list[str]:
    """Where `instance` breaks the Open Responses schema `name` (the spec's OpenAPI copy)."""
    spec = json.loads(
        (Path(__file__).parents[1] / "fuzz" / "data" / "open-responses-openapi.json").read_text()
    )
    registry = Registry().with_resource(
        "urn:spec", Resource.from_contents(spec, default_specification=DRAFT202012)
    )
    schema = {"$ref": f"urn:spec#/components/schemas/{name}"}
    found = jsonschema.Draft202012Validator(schema, registry=registry).iter_errors(instance)
    return [f"{list(e.path)}: {e.message[:200]}" for e in found]


def test_compaction_objects_validate_against_the_spec(keyed_gateway: Gateway) -> None:
    compacted = _post(keyed_gateway, "/responses/compact", {"model": "qwen3", "input": _history()})
    assert _spec_errors(compacted.json(), "CompactResource") == []
    turn = _post(
        keyed_gateway,
        "/responses",
        {"model": "qwen3", "input": [*_history(), {"type": "compaction_trigger"}]},
    )
    assert _spec_errors(turn.json(), "ResponseResource") == []


def test_a_compaction_turn_in_a_conversation(keyed_gateway: Gateway, echo: EchoBackend) -> None:
    client = _client(keyed_gateway)
    conv = client.conversations.create(items=[{"role": "user", "content": "earlier"}])
    r = client.responses.create(model="qwen3", conversation=conv.id, input=[{"type": "compaction_trigger"}])  # type: ignore[list-item]
    assert r.output[0].type == "compaction"
    assert echo.chat_requests()[-1]["body"]["messages"] == [
        {"role": "user", "content": "earlier"},
        {"role": "user", "content": SUMMARY_PROMPT},
    ]
    assert len(client.conversations.items.list(conv.id).data) == 1  # the turn was not added


async def test_the_service_entry_point_takes_a_callers_history(echo: EchoBackend) -> None:
    """What the WebSocket mode calls for a socket's own `store: false` chain: `compact(..., history=)`."""
    backend = BackendSettings(name="echo", base_url=echo.base_url)
    async with HTTPUpstream([backend]) as upstream:
        service = ResponsesService(MemoryStore(10, 60), upstream, ResponseAPISettings(encryption_key=KEY))
        history = [encode_messages([UserMessage("on the socket"), AssistantMessage("echo: on the socket")])]
        req = CompactRequest(model="qwen3", previous_response_id="resp_" + "1" * 48, input="more")
        done = await compact(service, req, RequestContext(owner="t"), history=history)
    assert [type(o).__name__ for o in done.output] == ["Message", "Message", "Compaction"]
    assert echo.chat_requests()[-1]["body"]["messages"][:3] == [
        {"role": "user", "content": "on the socket"},
        {"role": "assistant", "content": "echo: on the socket"},
        {"role": "user", "content": "more"},
    ]
