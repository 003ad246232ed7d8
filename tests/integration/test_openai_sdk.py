"""The official `openai` SDK as the client, against the gateway on every store backend."""

from __future__ import annotations

import concurrent.futures

import httpx
import openai
import pytest
from openai import OpenAI

from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway


def _client(gw: Gateway) -> OpenAI:
    return OpenAI(base_url=gw.base_url, api_key="sk-test", max_retries=0)


def test_create_retrieve_input_items_delete(gateway: Gateway, echo: EchoBackend) -> None:
    client = _client(gateway)
    r = client.responses.create(
        model="qwen3",
        input="What is Redis Cluster?",
        instructions="You are a database expert.",
        metadata={"k": "v"},
    )
    assert r.id.startswith("resp_") and r.status == "completed" and r.object == "response"
    assert r.output_text == "echo: What is Redis Cluster?"
    assert r.output[0].id.startswith("msg_") and r.metadata == {"k": "v"}
    assert r.usage is not None and r.usage.output_tokens > 0
    got = client.responses.retrieve(r.id)
    assert got.model_dump() == r.model_dump()
    items = client.responses.input_items.list(r.id)
    assert [i.type for i in items.data] == ["message"] and items.has_more is False
    assert items.data[0].content[0].text == "What is Redis Cluster?"  # type: ignore[union-attr]
    sent = echo.chat_requests()[-1]["body"]
    assert sent["messages"][0] == {"role": "system", "content": "You are a database expert."}
    client.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError) as exc:
        client.responses.retrieve(r.id)
    assert exc.value.body["message"] == f"Response with id '{r.id}' not found."  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(r.id)


def test_three_turn_chain_backend_sees_all_turns(gateway: Gateway, echo: EchoBackend) -> None:
    client = _client(gateway)
    r1 = client.responses.create(model="qwen3", input="one", instructions="only for turn one")
    r2 = client.responses.create(model="qwen3", input="two", previous_response_id=r1.id)
    r3 = client.responses.create(model="qwen3", input="three", previous_response_id=r2.id)
    assert r3.previous_response_id == r2.id
    msgs = echo.chat_requests()[-1]["body"]["messages"]
    # instructions are not inherited; every earlier turn's input and output is there, in order
    assert msgs == [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "echo: one"},
        {"role": "user", "content": "two"},
        {"role": "assistant", "content": "echo: two"},
        {"role": "user", "content": "three"},
    ]
    # branching: a second child of r1 sees only its own branch
    client.responses.create(model="qwen3", input="other", previous_response_id=r1.id)
    msgs = echo.chat_requests()[-1]["body"]["messages"]
    assert [m["content"] for m in msgs] == ["one", "echo: one", "other"]


def test_previous_response_errors(gateway: Gateway) -> None:
    client = _client(gateway)
    for bad in ("resp_doesnotexist", "resp_" + "0" * 48):
        with pytest.raises(openai.BadRequestError) as exc:
            client.responses.create(model="qwen3", input="x", previous_response_id=bad)
        assert exc.value.code == "previous_response_not_found"
        assert exc.value.param == "previous_response_id"  # type: ignore[attr-defined]
    unstored = client.responses.create(model="qwen3", input="x", store=False)
    assert unstored.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unstored.id)
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="qwen3", input="x", previous_response_id=unstored.id)
    deleted = client.responses.create(model="qwen3", input="x")
    client.responses.delete(deleted.id)
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="qwen3", input="x", previous_response_id=deleted.id)


def test_stream_helper_final_response_is_stored(gateway: Gateway) -> None:
    client = _client(gateway)
    with client.responses.stream(model="qwen3", input="stream me please", instructions="Be brief") as stream:
        types = [ev.type for ev in stream]
        final = stream.get_final_response()
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert final.output_text == "echo: stream me please"
    assert client.responses.retrieve(final.id).output_text == final.output_text
    follow = client.responses.create(model="qwen3", input="and then", previous_response_id=final.id)
    assert follow.status == "completed"


def test_raw_stream_has_sequence_numbers_and_no_done(gateway: Gateway) -> None:
    body = {"model": "qwen3", "input": "a b c", "stream": True}
    with httpx.stream(
        "POST", f"{gateway.base_url}/responses", json=body, headers={"Accept": "application/json"}, timeout=10
    ) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
        text = resp.read().decode()
    assert "[DONE]" not in text
    events = [line for line in text.split("\n") if line.startswith("event: ")]
    assert events[0] == "event: response.created" and events[-1] == "event: response.completed"
    import json

    seqs = [json.loads(line[6:])["sequence_number"] for line in text.split("\n") if line.startswith("data: ")]
    assert seqs == list(range(len(seqs)))


def test_errors_are_openai_shaped(memory_gateway: Gateway) -> None:
    client = _client(memory_gateway)
    with pytest.raises(openai.NotFoundError) as nf:
        client.responses.retrieve("resp_unknown")
    assert nf.value.status_code == 404
    with pytest.raises(openai.BadRequestError) as bad:
        client.responses.create(model="qwen3", input="x", temperature=5)
    assert bad.value.param == "temperature"  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError) as bg:
        client.responses.create(model="qwen3", input="x", background=True, store=False)
    assert "background" in str(bg.value)
    json_type = {"content-type": "application/json"}
    resp = httpx.post(
        f"{memory_gateway.base_url}/responses", content=b"{not json", headers=json_type, timeout=5
    )
    assert resp.status_code == 400 and resp.json()["error"]["type"] == "invalid_request_error"
    resp = httpx.get(f"{memory_gateway.root_url}/nope", timeout=5)
    assert resp.status_code == 404 and "error" in resp.json()


def test_backend_errors_are_passed_on(memory_gateway: Gateway) -> None:
    client = _client(memory_gateway)
    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.create(model="qwen3", input="[fail:400]")
    assert exc.value.status_code == 400
    with pytest.raises(openai.InternalServerError) as exc5:
        client.responses.create(model="qwen3", input="[fail:500]")
    assert exc5.value.status_code == 502
    with pytest.raises(openai.RateLimitError):
        client.responses.create(model="qwen3", input="[fail:429]")


def test_max_output_tokens_gives_incomplete(gateway: Gateway) -> None:
    client = _client(gateway)
    r = client.responses.create(model="qwen3", input="one two three four five six", max_output_tokens=2)
    assert r.status == "incomplete" and r.incomplete_details is not None
    assert r.incomplete_details.reason == "max_output_tokens"
    assert client.responses.retrieve(r.id).status == "incomplete"


def test_backend_dies_mid_stream_gives_response_failed_and_stores_it(gateway: Gateway) -> None:
    client = _client(gateway)
    with client.responses.create(model="qwen3", input="x y z [die-mid-stream]", stream=True) as stream:
        events = list(stream)
    assert events[-1].type == "response.failed"
    failed = events[-1].response  # type: ignore[union-attr]
    assert failed.status == "failed" and failed.error is not None
    assert client.responses.retrieve(failed.id).status == "failed"


def test_edge_inputs_round_trip(gateway: Gateway, echo: EchoBackend) -> None:
    client = _client(gateway)
    empty = client.responses.create(model="qwen3", input="")
    assert empty.status == "completed"
    big = "x" * 16_000
    r = client.responses.create(model="qwen3", input=big)
    items = client.responses.input_items.list(r.id)
    assert items.data[0].content[0].text == big  # type: ignore[union-attr]
    special = "Quotes \" ' \\ back, emoji 🚀, 中文, newline\n tab\t <b>html</b> & ${VAR}"
    r2 = client.responses.create(model="qwen3", input=special)
    assert echo.chat_requests()[-1]["body"]["messages"][-1]["content"] == special
    assert client.responses.input_items.list(r2.id).data[0].content[0].text == special  # type: ignore[union-attr]


def test_twenty_concurrent_creates_have_distinct_ids(gateway: Gateway) -> None:
    client = _client(gateway)
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda i: client.responses.create(model="qwen3", input=f"n{i}"), range(20)))
    ids = {r.id for r in results}
    assert len(ids) == 20
    for r in results:
        assert client.responses.retrieve(r.id).id == r.id


def test_input_items_pagination(memory_gateway: Gateway) -> None:
    client = _client(memory_gateway)
    r = client.responses.create(model="qwen3", input=[{"role": "user", "content": f"m{i}"} for i in range(5)])
    desc = client.responses.input_items.list(r.id, limit=2)
    assert [i.content[0].text for i in desc.data] == ["m4", "m3"] and desc.has_more  # type: ignore[union-attr]
    nxt = client.responses.input_items.list(r.id, limit=2, after=desc.data[-1].id)
    assert [i.content[0].text for i in nxt.data] == ["m2", "m1"]  # type: ignore[union-attr]
    asc = client.responses.input_items.list(r.id, order="asc")
    assert [i.content[0].text for i in asc.data] == [f"m{i}" for i in range(5)]  # type: ignore[union-attr]
    assert asc.has_more is False


def test_chat_completions_and_models_pass_through(memory_gateway: Gateway) -> None:
    client = _client(memory_gateway)
    chat = client.chat.completions.create(model="qwen3", messages=[{"role": "user", "content": "hi"}])
    assert chat.choices[0].message.content == "echo: hi"
    chunks = list(
        client.chat.completions.create(
            model="qwen3", messages=[{"role": "user", "content": "a b"}], stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: a b"
    assert len(client.models.list().data) >= 1


def test_health_and_ready(gateway: Gateway) -> None:
    assert httpx.get(f"{gateway.root_url}/health", timeout=5).status_code == 200
    ready = httpx.get(f"{gateway.root_url}/ready", timeout=5)
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_metrics_count_requests_and_store_calls(memory_gateway: Gateway) -> None:
    client = _client(memory_gateway)
    r = client.responses.create(model="qwen3", input="count me")
    client.responses.retrieve(r.id)
    text = httpx.get(f"{memory_gateway.root_url}/metrics", timeout=5).text
    assert 'gateway_requests_total{method="POST",route="/v1/responses",status="200"} 1.0' in text
    assert 'gateway_store_seconds_count{op="put"} 1.0' in text
    assert 'gateway_store_seconds_count{op="get"} 1.0' in text
