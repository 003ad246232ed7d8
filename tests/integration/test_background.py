"""Background mode and cancel through HTTP with the openai SDK, on every store backend (one process).

Across processes (cancel from another replica, a replica SIGKILLed mid-response, SIGTERM):
tests/reliability/test_background_replicas.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import orjson
import pytest
from openai import OpenAI
from openai.types.responses import Response

from responses_gateway.config import settings_from_dict
from responses_gateway.ids import new_response_id
from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway, gateway_settings, run_gateway
from tests.support.sse import sequence_numbers, sse_events
from tests.support.tenants import KEY_A, KEY_B, _raw, _same_apart_from, auth_block
from tests.support.tenants import client as tenant_client

SLOW = "[slow:50] [repeat:200] tick"  # about 10 s of streamed chunks: still running when we look


def _client(gw: Gateway) -> OpenAI:
    return OpenAI(base_url=gw.base_url, api_key="sk-test", max_retries=0)


def _poll(client: OpenAI, response_id: str, timeout: float = 15.0) -> Response:
    deadline = time.monotonic() + timeout
    while True:
        r = client.responses.retrieve(response_id)
        if r.status not in ("queued", "in_progress") or time.monotonic() > deadline:
            return r
        time.sleep(0.05)


def test_background_create_then_poll_to_completed(gateway: Gateway, echo: EchoBackend) -> None:
    client = _client(gateway)
    r = client.responses.create(model="qwen3", input="[slow:100] background hello", background=True)
    assert r.status == "queued" and r.background is True and r.output == []
    seen = {client.responses.retrieve(r.id).status}
    done = _poll(client, r.id)
    seen.add(done.status)
    assert done.status == "completed" and done.background is True
    assert done.output_text == "echo: background hello"
    assert seen <= {"queued", "in_progress", "completed"}
    # a background response chains like any other
    child = client.responses.create(model="qwen3", input="next", previous_response_id=r.id)
    msgs = echo.chat_requests()[-1]["body"]["messages"]
    assert [m["content"] for m in msgs] == ["[slow:100] background hello", "echo: background hello", "next"]
    assert child.status == "completed"


def test_a_turn_on_an_unsettled_response_is_refused_until_it_settles(
    gateway: Gateway, echo: EchoBackend
) -> None:
    """Chaining on a `queued` / `in_progress` response would give the backend its input without its
    output: a clear 400 instead, and the same chain works once the response has settled."""
    client = _client(gateway)
    r = client.responses.create(model="qwen3", input="[slow:100] first", background=True)
    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.create(model="qwen3", input="too soon", previous_response_id=r.id)
    assert exc.value.body["param"] == "previous_response_id"  # type: ignore[index]
    assert "still in progress" in exc.value.body["message"]  # type: ignore[index]
    assert _poll(client, r.id).status == "completed"
    child = client.responses.create(model="qwen3", input="now", previous_response_id=r.id)
    msgs = echo.chat_requests()[-1]["body"]["messages"]
    assert [m["content"] for m in msgs] == ["[slow:100] first", "echo: first", "now"]
    assert child.status == "completed"


def test_background_needs_store(memory_gateway: Gateway) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        _client(memory_gateway).responses.create(model="qwen3", input="x", background=True, store=False)
    assert exc.value.body["message"] == "background can only be used when `store` is true"  # type: ignore[index]
    assert exc.value.body["param"] == "background"  # type: ignore[index]


def test_backend_failure_settles_failed(memory_gateway: Gateway) -> None:
    client = _client(memory_gateway)
    r = client.responses.create(model="qwen3", input="[fail:500] x", background=True)
    assert r.status == "queued"
    done = _poll(client, r.id)
    assert done.status == "failed" and done.error is not None and done.error.code == "server_error"


def test_cancel_a_running_background_response(gateway: Gateway, echo: EchoBackend) -> None:
    client = _client(gateway)
    r = client.responses.create(model="qwen3", input=SLOW, background=True)
    deadline = time.monotonic() + 10
    while client.responses.retrieve(r.id).status != "in_progress" and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # some chunks are in
    started = time.monotonic()
    cancelled = client.responses.cancel(r.id)
    assert time.monotonic() - started < 1.5
    assert cancelled.status == "cancelled" and cancelled.id == r.id
    got = client.responses.retrieve(r.id)
    assert got.status == "cancelled"
    text = got.output_text
    time.sleep(0.5)
    assert client.responses.retrieve(r.id).output_text == text  # nothing more is written: it stopped
    again = client.responses.cancel(r.id)  # idempotent
    assert again.status == "cancelled"


def test_cancel_before_the_first_chunk(memory_gateway: Gateway) -> None:
    client = _client(memory_gateway)
    r = client.responses.create(model="qwen3", input="[hang] x", background=True)
    time.sleep(0.3)
    assert client.responses.cancel(r.id).status == "cancelled"
    assert client.responses.retrieve(r.id).status == "cancelled"


def test_cancel_errors(memory_gateway: Gateway) -> None:
    client = _client(memory_gateway)
    sync = client.responses.create(model="qwen3", input="x")
    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.cancel(sync.id)
    assert exc.value.body["message"] == "Cannot cancel a synchronous response."  # type: ignore[index]
    done = client.responses.create(model="qwen3", input="x", background=True)
    assert _poll(client, done.id).status == "completed"
    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.cancel(done.id)
    assert exc.value.body["message"] == "Cannot cancel a response that is already completed."  # type: ignore[index]
    for unknown in ("resp_" + "0" * 48, "nope"):
        with pytest.raises(openai.NotFoundError):
            client.responses.cancel(unknown)


def test_stream_background_keeps_running_when_the_client_drops(memory_gateway: Gateway) -> None:
    client = _client(memory_gateway)
    text = "[slow:20] [repeat:20] go"
    stream = client.responses.create(model="qwen3", input=text, background=True, stream=True)
    events = iter(stream)
    first = next(events)
    assert first.type == "response.created"
    response_id = first.response.id  # type: ignore[union-attr]
    assert first.response.background is True  # type: ignore[union-attr]
    next(events)
    stream.close()  # the client drops mid-stream
    done = _poll(client, response_id)
    assert done.status == "completed"
    assert done.output_text == "echo: " + " ".join(["go"] * 20)


def test_stream_background_to_the_end(memory_gateway: Gateway) -> None:
    client = _client(memory_gateway)
    with client.responses.stream(model="qwen3", input="streamed", background=True) as stream:
        final = stream.get_final_response()
    assert final.status == "completed" and final.output_text == "echo: streamed" and final.background
    got = client.responses.retrieve(final.id)
    assert (got.status, got.output_text, got.usage) == (final.status, final.output_text, final.usage)


@pytest.fixture
def capped_gateway(echo: EchoBackend) -> Iterator[Gateway]:
    with run_gateway(gateway_settings(echo.base_url, background={"max_concurrent": 2})) as gw:
        yield gw


def test_the_per_process_cap(capped_gateway: Gateway) -> None:
    client = _client(capped_gateway)
    running = [client.responses.create(model="qwen3", input="[hang] x", background=True) for _ in range(2)]
    with pytest.raises(openai.RateLimitError) as exc:
        client.responses.create(model="qwen3", input="x", background=True)
    assert exc.value.code == "rate_limit_exceeded"
    assert "response_api.background.max_concurrent = 2" in exc.value.body["message"]  # type: ignore[index]
    # foreground requests are not counted
    assert client.responses.create(model="qwen3", input="x").status == "completed"
    client.responses.cancel(running[0].id)
    assert client.responses.create(model="qwen3", input="x", background=True).status == "queued"
    for r in running[1:]:
        client.responses.cancel(r.id)


def test_sigterm_of_an_in_process_gateway_settles_running_work(echo: EchoBackend, tmp_path: Path) -> None:
    """Shutdown: work that does not finish within server.shutdown_grace_seconds is stored as
    cancelled, never left in_progress (here on SQLite, which outlives the gateway)."""
    block = {"store_backend": "sqlite", "sqlite": {"path": str(tmp_path / "responses.db")}}
    settings = gateway_settings(echo.base_url, block)
    server = settings.server.model_copy(update={"shutdown_grace_seconds": 0.5})
    with run_gateway(settings.model_copy(update={"server": server})) as gw:
        client = _client(gw)
        r = client.responses.create(model="qwen3", input="[hang] x", background=True)
        quick = client.responses.create(model="qwen3", input="[slow:100] quick", background=True)
        time.sleep(0.2)
    with run_gateway(gateway_settings(echo.base_url, block)) as gw:
        got = httpx.get(f"{gw.base_url}/responses/{r.id}").json()
        assert got["status"] == "cancelled"
        assert httpx.get(f"{gw.base_url}/responses/{quick.id}").json()["status"] == "completed"


def _create_stream_then_drop(gw: Gateway, text: str, keep: int) -> tuple[str, list[tuple[str, bytes]]]:
    """A stream: true + background: true create whose client reads `keep` events, then drops."""
    body = {"model": "qwen3", "input": text, "background": True, "stream": True}
    seen: list[tuple[str, bytes]] = []
    with httpx.stream("POST", f"{gw.base_url}/responses", json=body, timeout=15) as resp:
        assert resp.status_code == 200
        for event in sse_events(resp):
            seen.append(event)
            if len(seen) == keep:
                break
    return orjson.loads(seen[0][1])["response"]["id"], seen


def _replay(base_url: str, response_id: str, starting_after: int | None = None) -> list[tuple[str, bytes]]:
    params = {"stream": "true"}
    if starting_after is not None:
        params["starting_after"] = str(starting_after)
    with httpx.stream("GET", f"{base_url}/responses/{response_id}", params=params, timeout=30) as resp:
        assert resp.status_code == 200, resp.read()
        assert resp.headers["content-type"].startswith("text/event-stream")
        return list(sse_events(resp))


def test_resume_a_dropped_stream(gateway: Gateway) -> None:
    """The rest of the events after the client dropped, then the live ones to the end: together
    the events of an uninterrupted stream, byte for byte."""
    response_id, head = _create_stream_then_drop(gateway, "[slow:20] [repeat:100] resume me", keep=5)
    assert httpx.get(f"{gateway.base_url}/responses/{response_id}").json()["status"] == "in_progress"
    tail = _replay(gateway.base_url, response_id, starting_after=sequence_numbers(head)[-1])
    assert tail[-1][0] == "response.completed"
    whole = _replay(gateway.base_url, response_id)  # after the end: the whole stream from the log
    assert head + tail == whole
    assert sequence_numbers(whole) == list(range(len(whole)))
    final = orjson.loads(whole[-1][1])["response"]
    assert final == httpx.get(f"{gateway.base_url}/responses/{response_id}").json()
    assert final["output"][0]["content"][0]["text"] == "echo: " + " ".join(["resume me"] * 100)
    # and through the SDK
    events = list(
        _client(gateway).responses.retrieve(response_id, stream=True, starting_after=len(whole) - 3)
    )
    assert [e.sequence_number for e in events] == [len(whole) - 2, len(whole) - 1]
    assert events[-1].type == "response.completed"


def test_replay_of_a_cancelled_response_ends(memory_gateway: Gateway) -> None:
    client = _client(memory_gateway)
    response_id, _ = _create_stream_then_drop(memory_gateway, SLOW, keep=4)
    client.responses.cancel(response_id)
    started = time.monotonic()
    events = _replay(memory_gateway.base_url, response_id, starting_after=3)
    assert time.monotonic() - started < 3  # no terminal event: it ends once the response is settled
    assert sequence_numbers(events) == list(range(4, 4 + len(events)))
    assert "response.completed" not in {t for t, _ in events}
    assert client.responses.retrieve(response_id).status == "cancelled"


def test_replay_errors(memory_gateway: Gateway) -> None:
    client = _client(memory_gateway)
    sync = client.responses.create(model="qwen3", input="x")
    resp = httpx.get(f"{memory_gateway.base_url}/responses/{sync.id}", params={"stream": "true"})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "stream"
    bg = client.responses.create(model="qwen3", input="x", background=True)
    resp = httpx.get(
        f"{memory_gateway.base_url}/responses/{bg.id}", params={"stream": "true", "starting_after": "x"}
    )
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "starting_after"
    resp = httpx.get(f"{memory_gateway.base_url}/responses/resp_{'0' * 48}", params={"stream": "true"})
    assert resp.status_code == 404


def test_another_tenants_background_response_is_unknown(echo: EchoBackend) -> None:
    """Cancel and replay answer another tenant's background response exactly as an unknown id."""
    data = {
        "backends": [{"name": "echo", "base_url": echo.base_url, "models": ["*"], "timeout_seconds": 10}],
        "response_api": {"store_backend": "memory"},
        "auth": auth_block(),
    }
    with run_gateway(settings_from_dict(data)) as gw:
        a = tenant_client(gw.base_url, KEY_A)
        theirs = a.responses.create(model="echo", input="[hang] secret", background=True).id
        unknown = new_response_id(theirs)
        for method, path in (("POST", "/responses/{}/cancel"), ("GET", "/responses/{}?stream=true")):
            mine = _raw(method, gw.base_url + path.format(theirs), KEY_B)
            assert mine.status_code == 404
            _same_apart_from(mine, _raw(method, gw.base_url + path.format(unknown), KEY_B), theirs, unknown)
        assert a.responses.retrieve(theirs).status in ("queued", "in_progress")  # untouched
        assert a.responses.cancel(theirs).status == "cancelled"


def test_background_streams_and_replays_hold_stream_slots(echo: EchoBackend) -> None:
    """server.max_streams counts a background create's stream and a replay like any other stream."""
    settings = gateway_settings(echo.base_url)
    server = settings.server.model_copy(update={"max_streams": 1})
    with run_gateway(settings.model_copy(update={"server": server})) as gw:
        body = {"model": "q", "input": SLOW, "background": True, "stream": True}
        with httpx.stream("POST", f"{gw.base_url}/responses", json=body, timeout=15) as resp:
            reading = sse_events(resp)  # kept: dropping the generator would close the connection
            first = next(reading)
            response_id = orjson.loads(first[1])["response"]["id"]
            busy = httpx.get(f"{gw.base_url}/responses/{response_id}", params={"stream": "true"})
            assert busy.status_code == 503 and "server.max_streams" in busy.json()["error"]["message"]
        assert _client(gw).responses.cancel(response_id).status == "cancelled"
        deadline = time.monotonic() + 10  # the dropped stream gives its slot back
        while time.monotonic() < deadline:
            with httpx.stream("GET", f"{gw.base_url}/responses/{response_id}?stream=true", timeout=30) as r:
                if r.status_code == 200:
                    events = list(sse_events(r))
                    break
            time.sleep(0.05)
        assert events[0] == first and len(events) > 1
        again = httpx.get(f"{gw.base_url}/responses/{response_id}", params={"stream": "true"}, timeout=30)
        assert again.status_code == 200  # the replay gave its slot back too
