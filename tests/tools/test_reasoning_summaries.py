"""Reasoning summaries (docs/API.md "Reasoning summaries"): with `reasoning.summary` the reasoning
text is also the item's `summary_text` part, streamed with the `response.reasoning_summary_*`
events; stored, retrieved, sealed and replayed the same; nothing changes without it. The openai
SDK and the Vercel AI SDK against the echo backend's `[reasoning]` mode."""

from __future__ import annotations

from pathlib import Path

import pytest
from openai import OpenAI

from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway
from tests.tools.conftest import run_node_script
from tests.tools.sse import post_events, types_at

REASONING = "thinking about it"  # the echo backend's reasoning, three words: three deltas


def _client(gw: Gateway) -> OpenAI:
    return OpenAI(base_url=gw.base_url, api_key="sk-test", max_retries=0)


SUMMARY_ORDER = [
    "response.output_item.added",
    "response.reasoning_summary_part.added",
    "response.content_part.added",
    *["response.reasoning_summary_text.delta", "response.reasoning_text.delta"] * 3,
    "response.reasoning_summary_text.done",
    "response.reasoning_summary_part.done",
    "response.reasoning_text.done",
    "response.content_part.done",
    "response.output_item.done",
]


@pytest.mark.parametrize("mode", ["auto", "concise", "detailed"])
def test_stream_events_in_order_with_their_fields(tool_gateway: Gateway, mode: str) -> None:
    stream = _client(tool_gateway).responses.create(
        model="qwen3", input="[reasoning] why", reasoning={"summary": mode}, stream=True
    )
    events = list(stream)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    item_events = [e for e in events if getattr(e, "output_index", None) == 0]
    assert [e.type for e in item_events] == SUMMARY_ORDER
    rs_id = item_events[0].item.id  # type: ignore[union-attr]
    summary = [e for e in item_events if e.type.startswith("response.reasoning_summary")]
    for e in summary:
        assert e.item_id == rs_id and e.output_index == 0 and e.summary_index == 0  # type: ignore[union-attr]
    added, *deltas, text_done, part_done = summary
    assert added.part.type == "summary_text" and added.part.text == ""  # type: ignore[union-attr]
    assert "".join(d.delta for d in deltas) == REASONING  # type: ignore[union-attr]
    assert text_done.text == REASONING  # type: ignore[union-attr]
    assert part_done.part.text == REASONING and part_done.status is None  # type: ignore[union-attr]
    done = item_events[-1].item  # type: ignore[union-attr]
    assert [s.text for s in done.summary] == [REASONING] and done.content[0].text == REASONING
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output[0].summary[0].text == REASONING and final.reasoning.summary == mode
    # the message comes after the whole reasoning item, as without summaries
    assert events[len(item_events) + 2].type == "response.output_item.added"


def test_stored_retrieved_and_listed_alike(tool_gateway: Gateway, echo: EchoBackend) -> None:
    client = _client(tool_gateway)
    r = client.responses.create(model="qwen3", input="[reasoning] why", reasoning={"summary": "auto"})
    rs = r.output[0]
    assert rs.type == "reasoning" and [s.model_dump() for s in rs.summary] == [
        {"type": "summary_text", "text": REASONING}
    ]
    assert client.responses.retrieve(r.id).output[0] == rs
    streamed = post_events(
        tool_gateway.base_url,
        {"model": "qwen3", "input": "[reasoning] why", "reasoning": {"summary": "auto"}},
    )
    stored = client.responses.retrieve(streamed[-1]["response"]["id"]).model_dump(exclude_none=True)
    assert stored["output"][0]["summary"] == [{"type": "summary_text", "text": REASONING}]
    # the next turn in the chain sends no reasoning to the backend, summary or not
    client.responses.create(model="qwen3", input="next", previous_response_id=r.id)
    assert [m["role"] for m in echo.chat_requests()[-1]["body"]["messages"]] == ["user", "assistant", "user"]


def test_sealed_summary_comes_back_for_stateless_clients(tool_gateway: Gateway) -> None:
    client = _client(tool_gateway)
    r1 = client.responses.create(
        model="qwen3",
        input="[reasoning] one",
        reasoning={"summary": "auto"},
        include=["reasoning.encrypted_content"],
        store=False,
    )
    rs = r1.output[0]
    assert rs.type == "reasoning" and rs.encrypted_content
    # the client sends the item back sealed, as stateless clients do: summary and content restored
    sealed = {"type": "reasoning", "id": rs.id, "summary": [], "encrypted_content": rs.encrypted_content}
    r2 = client.responses.create(model="qwen3", input=[sealed, {"role": "user", "content": "two"}])
    (item, _) = client.responses.input_items.list(r2.id, order="asc").data
    assert item.type == "reasoning" and [s.text for s in item.summary] == [REASONING]  # type: ignore[union-attr]


def test_without_summary_nothing_changes(tool_gateway: Gateway) -> None:
    events = post_events(tool_gateway.base_url, {"model": "qwen3", "input": "[reasoning] why"})
    assert not any("summary" in e["type"] for e in events)
    assert types_at(events, 0)[:2] == ["response.output_item.added", "response.content_part.added"]
    assert events[-1]["response"]["output"][0]["summary"] == []
    r = _client(tool_gateway).responses.create(
        model="qwen3", input="[reasoning] why", reasoning={"effort": "low", "summary": None}
    )
    assert r.output[0].summary == []  # type: ignore[union-attr]


def test_background_replay_has_the_summary_events(tool_gateway: Gateway) -> None:
    client = _client(tool_gateway)
    first = list(
        client.responses.create(
            model="qwen3",
            input="[reasoning] why",
            reasoning={"summary": "auto"},
            stream=True,
            background=True,
        )
    )
    replayed = list(client.responses.retrieve(first[0].response.id, stream=True))  # type: ignore[union-attr]
    assert [e.type for e in replayed] == [e.type for e in first]
    assert [e.type for e in replayed if getattr(e, "output_index", None) == 0] == SUMMARY_ORDER


def test_vercel_ai_sdk_shows_the_summary(tool_gateway: Gateway, node_modules: Path) -> None:
    out = run_node_script("ai_sdk_reasoning.mjs", tool_gateway.base_url)
    assert out["sent"] == [{"summary": "auto"}, {"summary": "auto"}]
    assert out["stream"]["reasoning"] == REASONING and out["stream"]["text"] == "echo: why"
    assert out["stream"]["parts"] == ["reasoning-start", "thinking ", "about ", "it", "reasoning-end"]
    assert out["generate"]["reasoning"] == REASONING and out["generate"]["text"] == "echo: why"
