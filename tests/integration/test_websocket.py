"""WebSocket mode on `/v1/responses` (`api/websocket.py`) with the `websockets` library as the client:
the gateway in-process, the real echo backend, every store; events as SSE, several responses on one
socket, the socket-local `store: false` chain, errors as messages, auth, bounds and timeouts."""

from __future__ import annotations

import base64
import json
import os
import socket as pysocket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from responses_gateway.config import Settings, settings_from_dict
from responses_gateway.service import ResponsesService
from tests.integration.conftest import STORES, store_block
from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway, run_gateway, run_served_gateway
from tests.support.sse import sse_events
from tests.support.tenants import KEY_A, KEY_B, auth_block
from tests.support.ws import completed, create, error, events, socket, ws_url

SPEC = Path(__file__).parents[1] / "fuzz" / "data" / "open-responses-openapi.json"  # the spec, 2026-04-24


def _settings(backend_url: str, store: dict[str, Any] | None = None, **blocks: dict[str, Any]) -> Settings:
    data: dict[str, Any] = {
        "backends": [{"name": "echo", "base_url": backend_url, "models": ["*"], "timeout_seconds": 10}],
        "response_api": store or {"store_backend": "memory"},
        **blocks,
    }
    return settings_from_dict(data)


@pytest.fixture
def served(echo: EchoBackend) -> Iterator[Gateway]:
    """A memory-store gateway served as `serve` serves it (our protocols), with short WebSocket bounds."""
    websocket = {"max_sockets": 3, "idle_timeout_seconds": 2, "max_message_bytes": 4096}
    with run_served_gateway(_settings(echo.base_url, websocket=websocket)) as gw:
        yield gw


def _users(echo: EchoBackend) -> list[str]:
    """The user and assistant contents of the backend's last request."""
    return [m["content"] for m in echo.chat_requests()[-1]["body"]["messages"]]


# -- events, several responses per socket, stored responses on every store ------------------------------


def test_events_are_the_sse_events_and_stored_responses_behave_as_over_http(
    gateway: Gateway, echo: EchoBackend
) -> None:
    with httpx.stream(
        "POST", f"{gateway.base_url}/responses", json={"model": "m", "input": "hello there", "stream": True}
    ) as resp:
        sse = [(t, json.loads(d)) for t, d in sse_events(resp)]
    with socket(gateway.base_url) as ws:
        first = create(ws, input="hello there")
        assert [e["type"] for e in first] == [t for t, _ in sse]
        assert [e["sequence_number"] for e in first] == list(range(len(first)))
        # the same event shapes, apart from the ids and times
        assert [sorted(e) for e in first] == [sorted(d) for _, d in sse]
        r1 = first[-1]["response"]
        assert r1["output"][0]["content"][0]["text"] == "echo: hello there" and r1["store"] is True

        # a second and third response on the same socket, each numbered from 0, chained by the store
        second = create(ws, input="and again", previous_response_id=r1["id"])
        assert second[0]["sequence_number"] == 0 and second[-1]["type"] == "response.completed"
        assert _users(echo) == ["hello there", "echo: hello there", "and again"]
        r2 = second[-1]["response"]
        third = completed(ws, input="third", previous_response_id=r2["id"])

    # what the socket stored is the store's: read and continued over HTTP
    got = httpx.get(f"{gateway.base_url}/responses/{third['id']}", timeout=10).json()
    assert got == third
    http = httpx.post(
        f"{gateway.base_url}/responses",
        json={"model": "m", "input": "over http", "previous_response_id": third["id"]},
        timeout=10,
    )
    assert http.status_code == 200
    assert _users(echo)[-2:] == ["echo: third", "over http"]
    # and an HTTP response is continued on a new socket
    with socket(gateway.base_url) as ws:
        completed(ws, input="on a socket", previous_response_id=http.json()["id"])
    assert _users(echo)[-3:] == ["over http", "echo: over http", "on a socket"]


def test_store_false_chain_lives_on_its_socket_only(gateway: Gateway, echo: EchoBackend) -> None:
    with socket(gateway.base_url) as ws:
        r1 = completed(ws, input="one", store=False)
        r2 = completed(ws, input="two", store=False, previous_response_id=r1["id"])
        r3 = completed(ws, input="three", store=False, previous_response_id=r2["id"])
        assert _users(echo) == ["one", "echo: one", "two", "echo: two", "three"]
        # a branch off the middle of the chain sees only its own path
        completed(ws, input="branch", store=False, previous_response_id=r1["id"])
        assert _users(echo) == ["one", "echo: one", "branch"]
        # a stored turn cannot continue an unstored one (its chain would not be in the store)
        refused = error(ws, input="stored", previous_response_id=r3["id"])
        assert refused["status"] == 400 and refused["error"]["param"] == "store"
    # not in the store: HTTP and a new socket do not know it
    assert httpx.get(f"{gateway.base_url}/responses/{r3['id']}", timeout=10).status_code == 404
    with socket(gateway.base_url) as ws:
        gone = error(ws, input="four", store=False, previous_response_id=r3["id"])
        # the client recovers on the same socket with a new chain
        completed(ws, input=[{"type": "message", "role": "user", "content": "start again"}], store=False)
        # an id not even of our shape (the compliance suite's) is not found either, without a store call
        other = error(ws, input="x", store=False, previous_response_id="resp_openresponses_missing_1")
    assert gone["status"] == 400
    assert gone["error"]["code"] == "previous_response_not_found"
    assert gone["error"]["param"] == "previous_response_id"
    assert other["error"]["code"] == "previous_response_not_found"
    assert _users(echo) == ["start again"]


def test_a_failed_continuation_evicts_what_it_continued(gateway: Gateway, echo: EchoBackend) -> None:
    with socket(gateway.base_url) as ws:
        r1 = completed(ws, input="one", store=False)
        r2 = completed(ws, input="two", store=False, previous_response_id=r1["id"])
        failed = error(ws, input="[fail:500]", store=False, previous_response_id=r2["id"])
        assert failed["status"] == 502 and failed["error"]["type"] == "server_error"
        again = error(ws, input="retry", store=False, previous_response_id=r2["id"])
        assert again["error"]["code"] == "previous_response_not_found"
        # its ancestor is still there: a branch off r1 works
        completed(ws, input="from one", store=False, previous_response_id=r1["id"])
        # an invalid continuation fails too (before the backend is asked), and evicts as well
        bad = error(
            ws,
            input=[{"type": "function_call_output", "call_id": "nope", "output": "x"}],
            store=False,
            previous_response_id=r1["id"],
        )
        assert bad["status"] == 400
        assert error(ws, input="x", store=False, previous_response_id=r1["id"])["error"]["code"] == (
            "previous_response_not_found"
        )
        # a response that fails mid-stream (response.failed) evicts too
        r3 = completed(ws, input="three", store=False)
        died = create(ws, input="[die-mid-stream] a b c", store=False, previous_response_id=r3["id"])
        assert died[-1]["type"] == "response.failed"
        gone = error(ws, input="x", store=False, previous_response_id=r3["id"])
        assert gone["error"]["code"] == "previous_response_not_found"


def test_the_socket_cache_is_bounded_and_a_broken_chain_is_refused(echo: EchoBackend) -> None:
    with run_gateway(_settings(echo.base_url, websocket={"cache_max_responses": 2})) as gw:
        with socket(gw.base_url) as ws:
            r1 = completed(ws, input="one", store=False)
            r2 = completed(ws, input="two", store=False, previous_response_id=r1["id"])
            r3 = completed(ws, input="three", store=False, previous_response_id=r2["id"])  # r1 goes
            broken = error(ws, input="four", store=False, previous_response_id=r3["id"])
            assert broken["error"]["code"] == "previous_response_not_found"
            assert "incomplete history" in broken["error"]["message"]
            gone = error(ws, input="x", store=False, previous_response_id=r1["id"])
            assert gone["error"]["code"] == "previous_response_not_found"


def test_generate_false_keeps_the_state_without_calling_the_model(
    gateway: Gateway, echo: EchoBackend
) -> None:
    """Codex's prewarm: the instructions and first items now, the turn later by previous_response_id."""
    with socket(gateway.base_url) as ws:
        warm = create(
            ws,
            instructions="Be brief.",
            input=[{"type": "message", "role": "developer", "content": "rules"}],
            store=False,
            generate=False,
        )
        assert [e["type"] for e in warm] == ["response.created", "response.in_progress", "response.completed"]
        assert warm[-1]["response"]["output"] == [] and warm[-1]["response"]["status"] == "completed"
        assert echo.chat_requests() == []
        completed(ws, input="the question", store=False, previous_response_id=warm[-1]["response"]["id"])
    msgs = echo.chat_requests()[-1]["body"]["messages"]
    assert [(m["role"], m["content"]) for m in msgs][-2:] == [("system", "rules"), ("user", "the question")]


def test_errors_are_messages_and_the_socket_stays_open(gateway: Gateway) -> None:
    with socket(gateway.base_url) as ws:
        ws.send("{not json")
        bad_json = events(ws)[0]
        assert bad_json["status"] == 400 and bad_json["error"]["code"] == "invalid_json"
        ws.send(json.dumps({"type": "response.cancel"}))
        unknown = events(ws)[0]
        assert unknown["error"]["code"] == "invalid_value" and unknown["error"]["param"] == "type"
        ws.send(json.dumps({"model": "m", "input": "hi"}))
        assert events(ws)[0]["error"]["code"] == "missing_required_parameter"
        ws.send(json.dumps([1, 2]))
        assert events(ws)[0]["error"]["code"] == "invalid_message"
        no_model = error(ws, model=None, input="hi")
        assert no_model["status"] == 400 and no_model["error"]["param"] == "model"
        background = error(ws, input="hi", background=True)
        assert background["error"]["param"] == "background"
        # every error validates as the spec's WebSocketErrorEvent (a status, a string code)
        schemas = json.loads(SPEC.read_text())["components"]["schemas"]
        validator = Draft202012Validator(schemas["WebSocketErrorEvent"])
        for e in (bad_json, unknown, no_model, background):
            validator.validate(e)
        # `stream: true` (the Agents SDK sends it) is accepted; the socket still works
        assert completed(ws, input="still here", stream=True)["status"] == "completed"


def test_a_bug_is_a_500_message_and_the_socket_goes_on(
    memory_gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepare = ResponsesService.prepare

    async def buggy(self: ResponsesService, req: Any, *args: Any, **kwargs: Any) -> Any:
        if req.input == "boom":
            raise RuntimeError("a bug")
        return await prepare(self, req, *args, **kwargs)

    monkeypatch.setattr(ResponsesService, "prepare", buggy)
    with socket(memory_gateway.base_url) as ws:
        bug = error(ws, input="boom")
        assert bug["status"] == 500 and bug["error"]["code"] == "internal_error"
        assert "a bug" not in json.dumps(bug)
        completed(ws, input="fine")


def test_creates_sent_together_run_one_after_another(gateway: Gateway) -> None:
    with socket(gateway.base_url) as ws:
        for text in ("[slow:200] first a b", "second", "third"):
            ws.send(json.dumps({"type": "response.create", "model": "m", "input": text, "store": False}))
        answers = [events(ws) for _ in range(3)]
    texts = [a[-1]["response"]["output"][0]["content"][0]["text"] for a in answers]
    assert texts == ["echo: first a b", "echo: second", "echo: third"]
    assert all(a[0]["sequence_number"] == 0 for a in answers)


def test_a_disconnect_mid_stream_stores_the_response_as_cancelled(gateway: Gateway) -> None:
    with socket(gateway.base_url) as ws:
        ws.send(json.dumps({"type": "response.create", "model": "m", "input": "[slow:400] a b c d e f g h"}))
        created = json.loads(ws.recv(timeout=10))
        assert created["type"] == "response.created"
    rid = created["response"]["id"]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        got = httpx.get(f"{gateway.base_url}/responses/{rid}", timeout=10)
        if got.status_code == 200 and got.json()["status"] == "cancelled":
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"not stored as cancelled: {got.status_code} {got.text[:200]}")


# -- the edge: keys, tenants, Host, Origin --------------------------------------------------------------


@pytest.mark.parametrize("store", STORES)
def test_keys_and_tenants_on_a_socket(
    store: str, request: pytest.FixtureRequest, echo: EchoBackend, tmp_path: Path
) -> None:
    settings = _settings(echo.base_url, store_block(store, request, tmp_path), auth=auth_block())
    with run_gateway(settings) as gw:
        with pytest.raises(InvalidStatus) as missing:
            with socket(gw.base_url):
                pass
        assert missing.value.response.status_code == 401
        assert json.loads(missing.value.response.body)["error"]["type"] == "invalid_request_error"
        assert missing.value.response.headers["www-authenticate"].startswith("Bearer")
        with pytest.raises(InvalidStatus) as wrong:
            with socket(gw.base_url, "rgw-not-a-key-of-this-gateway-0000"):
                pass
        assert wrong.value.response.status_code == 401
        assert json.loads(wrong.value.response.body)["error"]["code"] == "invalid_api_key"
        with socket(gw.base_url, KEY_A) as ws:
            mine = completed(ws, input="team a")
            kept = completed(ws, input="team a unstored", store=False)
        # team-b, on its own socket, finds neither, exactly as an unknown id
        with socket(gw.base_url, KEY_B) as ws:
            for rid in (mine["id"], kept["id"], "resp_" + "0" * 48):
                theirs = error(ws, input="x", previous_response_id=rid)
                assert theirs["error"]["code"] == "previous_response_not_found"
                assert theirs["error"]["message"].replace(rid, "<id>") == (
                    "Previous response with id '<id>' not found."
                )
        # team-a continues its own over HTTP
        ok = httpx.post(
            f"{gw.base_url}/responses",
            json={"model": "m", "input": "more", "previous_response_id": mine["id"]},
            headers={"Authorization": f"Bearer {KEY_A}"},
            timeout=10,
        )
        assert ok.status_code == 200


def test_host_and_origin_are_checked_on_the_upgrade(echo: EchoBackend) -> None:
    settings = _settings(echo.base_url, server={"cors_allowed_origins": ["https://app.example"]})
    with run_gateway(settings) as gw:
        with pytest.raises(InvalidStatus) as origin:
            with socket(gw.base_url, origin="https://evil.example"):  # type: ignore[arg-type]
                pass
        assert origin.value.response.status_code == 403
        assert json.loads(origin.value.response.body)["error"]["code"] == "origin_not_allowed"
        with socket(gw.base_url, origin="https://app.example") as ws:  # type: ignore[arg-type]
            completed(ws, input="from the app")
        # a page reaching the gateway by DNS rebinding: its Host is not a name of this gateway
        port = int(gw.root_url.rsplit(":", 1)[1])
        with pytest.raises(InvalidStatus) as host:
            with pysocket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                with connect(f"ws://rebound.example:{port}/v1/responses", sock=sock, open_timeout=10):
                    pass
        assert host.value.response.status_code == 400
        # WebSocket mode lives on /v1/responses only
        with pytest.raises(InvalidStatus) as elsewhere:
            with socket(gw.base_url + "/abc"):
                pass
        assert elsewhere.value.response.status_code == 404


def test_websocket_mode_can_be_switched_off(echo: EchoBackend) -> None:
    with run_gateway(_settings(echo.base_url, websocket={"enabled": False})) as gw:
        with pytest.raises(InvalidStatus) as off:
            with socket(gw.base_url):
                pass
        assert off.value.response.status_code == 404
        assert "websocket.enabled" in json.loads(off.value.response.body)["error"]["message"]


# -- bounds: sockets, message size, idle time, pings, rate limits ---------------------------------------


def test_sockets_beyond_the_cap_are_refused_and_counted(served: Gateway) -> None:
    with socket(served.base_url) as a, socket(served.base_url) as b, socket(served.base_url) as c:
        for ws in (a, b, c):
            completed(ws, input="hi")
            assert [e.name for e in ws.protocol.extensions] == ["permessage-deflate"]  # by default
        with pytest.raises(InvalidStatus) as busy:
            with socket(served.base_url):
                pass
        assert busy.value.response.status_code == 503
        assert json.loads(busy.value.response.body)["error"]["code"] == "server_busy"
        metrics = httpx.get(f"{served.root_url}/metrics", timeout=10).text
        assert "gateway_websockets_open 3.0" in metrics
    # closed sockets give their places back
    deadline = time.monotonic() + 10
    while "gateway_websockets_open 0.0" not in httpx.get(f"{served.root_url}/metrics", timeout=10).text:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    with socket(served.base_url) as ws:
        completed(ws, input="room again")


def test_a_message_too_big_closes_the_socket(served: Gateway, echo: EchoBackend) -> None:
    with socket(served.base_url) as ws:  # refused by the server protocol (ws_max_size)
        ws.send(json.dumps({"type": "response.create", "model": "m", "input": "x" * 5000}))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    # under a server that does not bound it, the handler does
    with run_gateway(_settings(echo.base_url, websocket={"max_message_bytes": 4096})) as gw:
        with socket(gw.base_url) as ws:
            completed(ws, input="small")
            ws.send(json.dumps({"type": "response.create", "model": "m", "input": "x" * 5000}))
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        assert "max_message_bytes" in closed.value.rcvd.reason


def test_an_idle_socket_is_closed_but_not_one_running_a_response(served: Gateway) -> None:
    with socket(served.base_url) as ws:
        # a response that runs longer than the idle timeout is not cut
        got = create(ws, input="[slow:700] a b c d")
        assert got[-1]["type"] == "response.completed"
        start = time.monotonic()
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=15)
        assert 1.0 < time.monotonic() - start < 10
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
    assert "idle" in closed.value.rcvd.reason


def test_a_client_that_stops_reading_is_dropped_and_its_response_cancelled(echo: EchoBackend) -> None:
    settings = _settings(echo.base_url, server={"stream_send_timeout_seconds": 1})
    with run_served_gateway(settings) as gw:
        with socket(gw.base_url, max_queue=1, compression=None) as ws:  # "x" * N compresses to nothing
            ws.send(json.dumps({"type": "response.create", "model": "m", "input": "[big:12000000]"}))
            rid = json.loads(ws.recv(timeout=10))["response"]["id"]
            # then reads nothing: its small queue fills, then the socket's buffers, then the server's
            deadline = time.monotonic() + 30
            while (got := httpx.get(f"{gw.base_url}/responses/{rid}", timeout=10)).status_code != 200:
                assert time.monotonic() < deadline, "the stalled socket was not dropped"
                time.sleep(0.3)
            assert got.json()["status"] == "cancelled"
            with pytest.raises(ConnectionClosed):
                while True:
                    ws.recv(timeout=10)


def test_pings_are_answered_and_a_client_that_never_pongs_is_dropped(echo: EchoBackend) -> None:
    websocket = {
        "ping_interval_seconds": 1,
        "ping_timeout_seconds": 1,
        "idle_timeout_seconds": 60,
        "per_message_deflate": False,
    }
    with run_served_gateway(_settings(echo.base_url, websocket=websocket)) as gw:
        with socket(gw.base_url) as ws:
            assert ws.protocol.extensions == []  # the client offered compression; declined
            assert ws.ping().wait(10)  # the client's ping gets its pong
            time.sleep(3)  # the server's pings are answered by the client: still open
            completed(ws, input="alive")
        # a raw client that completes the handshake and then never reads (never pongs)
        host, port = gw.root_url.removeprefix("http://").split(":")
        raw = pysocket.create_connection((host, int(port)), timeout=15)
        key = base64.b64encode(os.urandom(16)).decode()
        raw.sendall(
            f"GET /v1/responses HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        assert raw.recv(4096).startswith(b"HTTP/1.1 101")
        start = time.monotonic()
        data = b""
        while chunk := raw.recv(4096):  # pings, then the close and EOF
            data += chunk
        raw.close()
        assert 1.5 < time.monotonic() - start < 12
        assert b"\x89" in data  # a ping frame was sent


def test_rate_limits_and_stream_slots_apply_per_create(echo: EchoBackend) -> None:
    limits = {"requests_per_minute": 2}
    with run_gateway(_settings(echo.base_url, limits=limits, auth=auth_block())) as gw:
        with socket(gw.base_url, KEY_A) as ws:
            completed(ws, input="one")
            completed(ws, input="two")
            limited = error(ws, input="three")
            assert limited["status"] == 429 and limited["error"]["code"] == "rate_limit_exceeded"
        with socket(gw.base_url, KEY_B) as ws:  # another tenant has its own budget
            completed(ws, input="b one")
    with run_gateway(_settings(echo.base_url, server={"max_streams": 1})) as gw:
        stalled = {"model": "m", "input": "[stall-mid-stream] a b", "stream": True}
        with httpx.stream("POST", f"{gw.base_url}/responses", json=stalled) as resp:
            chunks = resp.iter_bytes()  # kept: a dropped iterator closes the stream
            next(chunks)  # the HTTP stream holds the only slot
            with socket(gw.base_url) as ws:
                busy = error(ws, input="hi")
                assert busy["status"] == 503 and busy["error"]["code"] == "server_busy"
        with socket(gw.base_url) as ws:
            completed(ws, input="now there is room")


# -- replicas: stored responses on one gateway's socket, continued on another's ------------------------


@pytest.mark.parametrize("store", [p for p in STORES if p.id in ("redis", "redis_cluster")])
def test_stored_responses_cross_replicas_and_unstored_do_not(
    store: str, request: pytest.FixtureRequest, echo: EchoBackend, tmp_path: Path
) -> None:
    block = store_block(store, request, tmp_path)
    with run_gateway(_settings(echo.base_url, block)) as a, run_gateway(_settings(echo.base_url, block)) as b:
        with socket(a.base_url) as on_a:
            r1 = completed(on_a, input="made on a")
            kept = completed(on_a, input="unstored on a", store=False)
            with socket(b.base_url) as on_b:
                r2 = completed(on_b, input="continued on b", previous_response_id=r1["id"])
                assert _users(echo) == ["made on a", "echo: made on a", "continued on b"]
                gone = error(on_b, input="x", store=False, previous_response_id=kept["id"])
                assert gone["error"]["code"] == "previous_response_not_found"
            # and back on a's socket, then over HTTP on b
            r3 = completed(on_a, input="back on a", previous_response_id=r2["id"])
        http = httpx.post(
            f"{b.base_url}/responses",
            json={"model": "m", "input": "http on b", "previous_response_id": r3["id"]},
            timeout=10,
        )
        assert http.status_code == 200
        assert _users(echo) == [
            "made on a",
            "echo: made on a",
            "continued on b",
            "echo: continued on b",
            "back on a",
            "echo: back on a",
            "http on b",
        ]
        assert ws_url(a.base_url).startswith("ws://127.0.0.1:")


# -- compaction turns (Codex's remote compaction) on a socket -----------------------------------------


def test_a_compaction_turn_on_a_socket_summarises_its_own_store_false_chain(echo: EchoBackend) -> None:
    """A `compaction_trigger` create on a socket continues the socket's own `store: false` chain, answers
    the one compaction item (never kept), and a new chain on the socket starts from that item."""
    store = {"store_backend": "memory", "encryption_key": "test-only websocket compaction key"}
    with run_gateway(_settings(echo.base_url, store)) as gw, socket(gw.base_url) as ws:
        first = completed(ws, input="remember the word slate", store=False)
        turn = create(
            ws, input=[{"type": "compaction_trigger"}], previous_response_id=first["id"], store=False
        )
        assert [e["type"] for e in turn] == [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.output_item.done",
            "response.completed",
        ]
        assert [e["sequence_number"] for e in turn] == list(range(5))
        (item,) = turn[-1]["response"]["output"]
        assert item["type"] == "compaction" and item["encrypted_content"]
        # the summarising call saw the socket-local turn (never stored) before the gateway's prompt
        sent = _users(echo)
        assert sent[:2] == ["remember the word slate", "echo: remember the word slate"]
        # a new chain from the item: the backend gets the summary in its place
        after = completed(ws, input=[item, {"role": "user", "content": "go on"}], store=False)
        assert after["status"] == "completed"
        restored = _users(echo)
        assert restored[-1] == "go on" and "compacted" in restored[0]
        # the trigger anywhere but last is an error message; the socket goes on
        bad = error(ws, input=[{"type": "compaction_trigger"}, {"role": "user", "content": "hi"}])
        assert bad["status"] == 400
        assert completed(ws, input="still here")["status"] == "completed"
