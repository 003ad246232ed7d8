"""HTTPUpstream against the real echo backend process, plus a raw socket server for malformed streams."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec
import orjson
import pytest

from responses_gateway.config import BackendSettings
from responses_gateway.errors import (
    NotFound,
    RateLimited,
    UpstreamError,
    UpstreamStatusError,
    UpstreamTimeout,
)
from responses_gateway.protocol.chat import ChatChunk, ChatRequest, ChatTool, present
from responses_gateway.upstream import HTTPUpstream
from responses_gateway.upstream._sse import SSEDecoder
from tests.support.echo_fixtures import EchoBackend, start_echo_backend, stop_echo_backend

SECRET = "sk-backend-secret"


def _backend(base_url: str, **kw: Any) -> BackendSettings:
    return BackendSettings.model_validate({"name": kw.pop("name", "echo"), "base_url": base_url, **kw})


def _chat(text: str, **kw: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": text}], **kw}


def _req(
    text: str, *, tools: list[dict[str, Any]] | None = None, max_tokens: int | None = None
) -> ChatRequest:
    return ChatRequest(
        model="m",
        messages=msgspec.Raw(orjson.dumps([{"role": "user", "content": text}])),
        stream=False,
        tools=[msgspec.convert(t, ChatTool) for t in tools] if tools else None,
        max_tokens=max_tokens,
    )


def _as_dict(chunk: ChatChunk) -> dict[str, Any]:
    """A chunk as plain data: its raw fields decoded when present, absent ones left out."""
    out: dict[str, Any] = {}
    for name in chunk.__struct_fields__:
        value = getattr(chunk, name)
        if isinstance(value, msgspec.Raw):
            if present(value):
                out[name] = orjson.loads(bytes(value))
        elif value is not None:
            out[name] = msgspec.to_builtins(value)
    return out


def _norm(chunk: dict[str, Any]) -> dict[str, Any]:
    return _as_dict(msgspec.convert(chunk, ChatChunk))


@contextlib.asynccontextmanager
async def _upstream(*backends: BackendSettings) -> AsyncIterator[HTTPUpstream]:
    async with HTTPUpstream(backends) as up:
        yield up


async def _collect(
    up: HTTPUpstream, backend: BackendSettings, body: ChatRequest, authorization: str | None = None
) -> list[dict[str, Any]]:
    return [_as_dict(c) async for c in up.stream_chat(backend, body, authorization=authorization)]


def _text(chunks: Sequence[dict[str, Any]], field: str = "content") -> str:
    return "".join(c["choices"][0]["delta"].get(field) or "" for c in chunks if c["choices"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# ---- routing --------------------------------------------------------------------------------------


def test_backend_for_prefers_explicit_names_then_first_wildcard() -> None:
    a = _backend("http://a/v1", name="a", models=["gpt-x"])
    b = _backend("http://b/v1", name="b", models=["*"])
    c = _backend("http://c/v1", name="c", models=["*", "gpt-x", "other"])
    up = HTTPUpstream([a, b, c])
    assert up.backend_for("gpt-x") is a
    assert up.backend_for("other") is c
    assert up.backend_for("anything") is b
    with pytest.raises(NotFound) as info:
        HTTPUpstream([a]).backend_for("nope")
    assert info.value.status_code == 404
    assert info.value.code == "model_not_found" and info.value.param == "model"
    assert info.value.message == "The model 'nope' does not exist or you do not have access to it."


# ---- streaming --------------------------------------------------------------------------------------


async def test_stream_chat_yields_chunks_and_requests_usage(echo: EchoBackend) -> None:
    backend = _backend(echo.base_url)
    body = _req("hello big world")
    async with _upstream(backend) as up:
        chunks = await _collect(up, backend, body)
    assert chunks[0]["object"] == "chat.completion.chunk" and chunks[0]["id"].startswith("chatcmpl-")
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert _text(chunks) == "echo: hello big world"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    sent = echo.chat_requests()[-1]["body"]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert body.stream is False  # the caller's request is not modified


async def test_stream_chat_passes_reasoning_tool_calls_and_length(echo: EchoBackend) -> None:
    backend = _backend(echo.base_url)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    async with _upstream(backend) as up:
        reasoning = await _collect(up, backend, _req("hi [reasoning]"))
        calls = await _collect(
            up, backend, _req('Checking. [call:get_weather {"city": "Paris"}]', tools=tools)
        )
        cut = await _collect(up, backend, _req("one two three four", max_tokens=2))
    assert _text(reasoning, "reasoning_content") == "thinking about it"
    assert reasoning[-1]["usage"]["completion_tokens_details"] == {"reasoning_tokens": 3}
    assert _text(calls) == "Checking."
    pieces = [tc for c in calls if c["choices"] for tc in c["choices"][0]["delta"].get("tool_calls") or []]
    assert pieces[0]["id"].startswith("call_0_") and pieces[0]["function"]["name"] == "get_weather"
    assert orjson.loads("".join(p["function"]["arguments"] for p in pieces)) == {"city": "Paris"}
    assert len(pieces) >= 3
    assert calls[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert _text(cut) == "echo: one " and cut[-2]["choices"][0]["finish_reason"] == "length"


async def test_long_generation_is_not_cut_by_the_timeout(echo: EchoBackend) -> None:
    # 7 chunks 100 ms apart take ~0.8 s; the 0.5 s timeout bounds each gap, not the total.
    backend = _backend(echo.base_url, timeout_seconds=0.5)
    async with _upstream(backend) as up:
        chunks = await _collect(up, backend, _req("a b c [slow:100]"))
    assert _text(chunks) == "echo: a b c"


# ---- auth ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("api_key", "client", "expected"),
    [
        (SECRET, "Bearer client-token", f"Bearer {SECRET}"),
        (None, "Bearer client-token", "Bearer client-token"),
        (None, "Basic abc", "Basic abc"),
        (None, None, None),
    ],
)
async def test_authorization_rules(
    echo: EchoBackend, api_key: str | None, client: str | None, expected: str | None
) -> None:
    backend = _backend(echo.base_url, api_key=api_key)
    async with _upstream(backend) as up:
        await _collect(up, backend, _req("x"), authorization=client)
        async with await up.forward(backend, "GET", "/models", None, authorization=client) as raw:
            await raw.read()
        await up.list_models(authorization=client)
    assert [r["authorization"] for r in echo.requests()] == [expected] * 3


# ---- error mapping -----------------------------------------------------------------------------------


async def test_connection_refused_is_a_502_naming_the_backend() -> None:
    backend = _backend(f"http://127.0.0.1:{_free_port()}/v1", name="local-vllm", api_key=SECRET)
    async with _upstream(backend) as up:
        with pytest.raises(UpstreamError) as info:
            await _collect(up, backend, _req("x"))
        with pytest.raises(UpstreamError):
            await up.forward(backend, "GET", "/models", None, authorization=None)
    assert type(info.value) is UpstreamError and info.value.status_code == 502
    assert "local-vllm" in info.value.message and SECRET not in info.value.message
    assert isinstance(info.value.__cause__, OSError)


async def test_dns_failure_is_a_502() -> None:
    backend = _backend("http://no-such-host.invalid/v1", name="ghost", timeout_seconds=5)
    async with _upstream(backend) as up:
        with pytest.raises(UpstreamError) as info:
            await _collect(up, backend, _req("x"))
    assert info.value.status_code in (502, 504) and "ghost" in info.value.message


async def test_429_is_rate_limited_with_retry_after(echo: EchoBackend) -> None:
    backend = _backend(echo.base_url)
    async with _upstream(backend) as up:
        with pytest.raises(RateLimited) as info:
            await _collect(up, backend, _req("x [fail:429]"))
    err = info.value
    assert err.status_code == 429 and "echo" in err.message and "injected failure" not in err.message
    assert (err.error_type, err.code) == ("requests", "rate_limit_exceeded")  # OpenAI's shape
    assert err.headers == {"Retry-After": "1"}


@pytest.mark.parametrize("status", [400, 401, 404, 422])
async def test_4xx_keeps_the_status_with_our_own_message(echo: EchoBackend, status: int) -> None:
    """The status class is kept; the backend's text (and its own code) stays in our log."""
    backend = _backend(echo.base_url)
    async with _upstream(backend) as up:
        with pytest.raises(UpstreamStatusError) as info:
            await _collect(up, backend, _req(f"x [fail:{status}]"))
    err = info.value
    assert (err.status_code, err.message, err.error_type, err.code) == (
        status,
        f"Backend 'echo' rejected the request (HTTP {status}).",
        "invalid_request_error",
        "upstream_error",
    )
    assert err.to_dict()["error"]["param"] is None


async def test_401_for_the_gateways_own_key_is_a_502(echo: EchoBackend) -> None:
    """A backend refusing the key the gateway holds is not the client's fault."""
    backend = _backend(echo.base_url, api_key="sk-gateway-own-key-0123456789")
    async with _upstream(backend) as up:
        with pytest.raises(UpstreamError) as info:
            await _collect(up, backend, _req("x [fail:401]"))
    assert info.value.status_code == 502 and "credentials" in info.value.message


@pytest.mark.parametrize("status", [500, 503])
async def test_5xx_is_a_502_naming_the_backend(echo: EchoBackend, status: int) -> None:
    backend = _backend(echo.base_url, name="gpu-1")
    async with _upstream(backend) as up:
        with pytest.raises(UpstreamError) as info:
            await _collect(up, backend, _req(f"x [fail:{status}]"))
    assert type(info.value) is UpstreamError and info.value.status_code == 502
    assert info.value.message == f"Backend 'gpu-1' failed with HTTP {status}."


async def test_silent_backend_is_a_504(echo: EchoBackend) -> None:
    backend = _backend(echo.base_url, timeout_seconds=0.3)
    async with _upstream(backend) as up:
        with pytest.raises(UpstreamTimeout) as info:
            await _collect(up, backend, _req("x [hang]"))
        assert info.value.status_code == 504
        with pytest.raises(UpstreamTimeout):  # headers sent, then silence longer than the timeout
            await _collect(up, backend, _req("x [slow:1000]"))
    await echo.await_for(lambda rs: len(rs) == 2 and all(r["disconnected"] for r in rs))


async def test_stream_dying_mid_way_is_an_upstream_error(echo: EchoBackend) -> None:
    backend = _backend(echo.base_url)
    received: list[dict[str, Any]] = []
    async with _upstream(backend) as up:
        with pytest.raises(UpstreamError) as info:
            async for chunk in up.stream_chat(
                backend, _req("a b c d e [die-mid-stream]"), authorization=None
            ):
                received.append(_as_dict(chunk))
        # the pool is still usable afterwards
        assert _text(await _collect(up, backend, _req("again"))) == "echo: again"
    assert type(info.value) is UpstreamError and info.value.status_code == 502
    assert _text(received) == "echo: a "


# ---- cancellation ------------------------------------------------------------------------------------


async def test_closing_the_generator_closes_the_backend_connection(echo: EchoBackend) -> None:
    backend = _backend(echo.base_url)
    async with _upstream(backend) as up:
        stream = up.stream_chat(backend, _req("one two three four five six [slow:200]"), authorization=None)
        first = await anext(stream)
        assert _as_dict(first)["choices"][0]["delta"]["role"] == "assistant"
        await stream.aclose()
        seen = await echo.await_for(lambda rs: bool(rs) and rs[-1]["disconnected"], timeout=2)
    assert not seen[-1]["finished"]


async def test_cancelling_the_consumer_task_closes_the_backend_connection(echo: EchoBackend) -> None:
    backend = _backend(echo.base_url)
    async with _upstream(backend) as up:
        got_one = asyncio.Event()

        async def consume() -> None:
            async for _ in up.stream_chat(backend, _req("a b c d e f g [slow:200]"), authorization=None):
                got_one.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(got_one.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await echo.await_for(lambda rs: bool(rs) and rs[-1]["disconnected"], timeout=2)


async def test_cancelling_while_waiting_for_headers_closes_the_connection(echo: EchoBackend) -> None:
    backend = _backend(echo.base_url)
    async with _upstream(backend) as up:
        task = asyncio.create_task(_collect(up, backend, _req("x [hang]")))
        await echo.await_for(lambda rs: len(rs) == 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await echo.await_for(lambda rs: rs[-1]["disconnected"], timeout=2)


# ---- forward -----------------------------------------------------------------------------------------


async def test_forward_non_streaming_and_gateway_paths(echo: EchoBackend) -> None:
    backend = _backend(echo.base_url)
    async with _upstream(backend) as up:
        raw = await up.forward(
            backend, "POST", "/chat/completions", orjson.dumps(_chat("hi")), authorization=None
        )
        assert raw.status == 200 and raw.content_type.startswith("application/json")
        completion = orjson.loads(await raw.read())
        models = await up.forward(backend, "GET", "/v1/models", None, authorization=None)  # gateway path
        assert models.status == 200 and orjson.loads(await models.read())["data"][0]["id"] == "echo"
    assert completion["choices"][0]["message"]["content"] == "echo: hi"
    assert [r["path"] for r in echo.requests()] == ["/v1/chat/completions", "/v1/models"]


async def test_forward_streaming_relays_the_sse_bytes(echo: EchoBackend) -> None:
    backend = _backend(echo.base_url)
    body = orjson.dumps(_chat("hi there", stream=True))
    async with _upstream(backend) as up:
        raw = await up.forward(backend, "POST", "/chat/completions", body, authorization=None)
        assert raw.content_type.startswith("text/event-stream")
        data = b"".join([piece async for piece in raw.iter_bytes()])
    assert data.endswith(b"data: [DONE]\n\n") and b'"content":"there"' in data
    assert "stream_options" not in echo.chat_requests()[-1]["body"]  # pass-through: body untouched


async def test_forward_turns_error_statuses_into_our_errors(echo: EchoBackend) -> None:
    """A backend's error text is never relayed (it may echo the credential it got)."""
    backend = _backend(echo.base_url)
    async with _upstream(backend) as up:
        with pytest.raises(UpstreamStatusError) as info:
            await up.forward(
                backend, "POST", "/chat/completions", orjson.dumps(_chat("x [fail:422]")), authorization=None
            )
        assert info.value.status_code == 422 and "injected" not in str(info.value.to_dict())
        # the connection went back to the pool (or was closed): the next call works
        assert _text(await _collect(up, backend, _req("again"))) == "echo: again"


async def test_forward_aclose_mid_stream_stops_the_backend(echo: EchoBackend) -> None:
    backend = _backend(echo.base_url)
    body = orjson.dumps(_chat("a b c d e f [slow:200]", stream=True))
    async with _upstream(backend) as up:
        raw = await up.forward(backend, "POST", "/chat/completions", body, authorization=None)
        pieces = raw.iter_bytes()
        await anext(pieces)
        await pieces.aclose()
        await echo.await_for(lambda rs: bool(rs) and rs[-1]["disconnected"], timeout=2)


async def test_forward_maps_timeouts(echo: EchoBackend) -> None:
    backend = _backend(echo.base_url, timeout_seconds=0.3)
    async with _upstream(backend) as up:
        with pytest.raises(UpstreamTimeout):
            await up.forward(
                backend, "POST", "/chat/completions", orjson.dumps(_chat("x [hang]")), authorization=None
            )


# ---- list_models ---------------------------------------------------------------------------------------


async def test_list_models_merges_dedupes_and_adds_configured(
    echo: EchoBackend, caplog: pytest.LogCaptureFixture
) -> None:
    first = _backend(echo.base_url, name="first", models=["echo", "alias-model"])
    again = _backend(echo.base_url, name="again")
    dead = _backend(f"http://127.0.0.1:{_free_port()}/v1", name="dead", models=["dead-model"])
    async with _upstream(first, again, dead) as up:
        with caplog.at_level(logging.WARNING, logger="responses_gateway.upstream.http"):
            models = await up.list_models(authorization=None)
    assert models == [
        {"id": "echo", "object": "model", "created": 0, "owned_by": "echo"},
        {"id": "alias-model", "object": "model", "created": 0, "owned_by": "first"},
        {"id": "dead-model", "object": "model", "created": 0, "owned_by": "dead"},
    ]
    assert any("dead" in r.getMessage() for r in caplog.records)


async def test_unknown_model_on_a_strict_backend_is_its_404() -> None:
    strict = await asyncio.to_thread(start_echo_backend, ["served-model"])
    try:
        backend = _backend(strict.base_url, name="strict")
        async with _upstream(backend) as up:
            with pytest.raises(UpstreamStatusError) as info:
                await _collect(up, backend, msgspec.structs.replace(_req("x"), model="other"))
            served = await _collect(up, backend, msgspec.structs.replace(_req("x"), model="served-model"))
            models = await up.list_models(authorization=None)
    finally:
        stop_echo_backend(strict.process)
    # the status and a code of SAFE_CODES are passed on; the backend's text and param are not
    assert (info.value.status_code, info.value.code, info.value.param) == (404, "model_not_found", None)
    assert info.value.message == "Backend 'strict' rejected the request (HTTP 404: model_not_found)."
    assert served[0]["model"] == "served-model"
    assert [m["id"] for m in models] == ["served-model"]


# ---- malformed streams, from a raw socket server --------------------------------------------------------


@contextlib.asynccontextmanager
async def _raw_backend(
    pieces: Sequence[bytes] | None,
    head: bytes = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n",
) -> AsyncIterator[BackendSettings]:
    """A server that answers every request with `head` then `pieces` (one write each), then closes.

    `pieces=None` closes the connection without answering.
    """

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_head = await reader.readuntil(b"\r\n\r\n")
        for line in request_head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                await reader.readexactly(int(line.split(b":")[1]))
        if pieces is not None:
            writer.write(head + b"Connection: close\r\n\r\n")
            for piece in pieces:
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0.005)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield _backend(f"http://127.0.0.1:{port}/v1", name="raw", timeout_seconds=5)
    finally:
        server.close()
        await server.wait_closed()


def _sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


_DELTA = {"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}]}
_FINISH = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}


async def _raw_stream(pieces: Sequence[bytes] | None, **kw: Any) -> list[dict[str, Any]]:
    async with _raw_backend(pieces, **kw) as backend, _upstream(backend) as up:
        return await _collect(up, backend, _req("x"))


async def test_parser_tolerates_crlf_comments_and_split_reads() -> None:
    stream = (
        b": keep-alive\r\n\r\n" + _sse(_DELTA).replace(b"\n", b"\r\n") + _sse(_FINISH) + b"data: [DONE]\n\n"
    )
    pieces = [stream[i : i + 7] for i in range(0, len(stream), 7)]  # every line split across writes
    chunks = await _raw_stream(pieces)
    assert chunks == [_norm(_DELTA), _norm(_FINISH)]


async def test_close_after_finish_reason_without_done_is_fine() -> None:
    assert await _raw_stream([_sse(_DELTA), _sse(_FINISH)]) == [_norm(_DELTA), _norm(_FINISH)]


@pytest.mark.parametrize(
    ("pieces", "words"),
    [
        ([_sse(_DELTA)], "before it finished"),
        ([_sse(_DELTA), b"data: {not json\n\n"], "malformed"),
        ([b"data: [1, 2]\n\n"], "malformed"),
        ([_sse({"error": {"message": "CUDA out of memory"}})], "failed mid-stream"),
        ([_sse({"object": "error", "message": "engine dead", "code": 500})], "failed mid-stream"),
    ],
)
async def test_broken_streams_raise_upstream_error(pieces: list[bytes], words: str) -> None:
    with pytest.raises(UpstreamError) as info:
        await _raw_stream(pieces)
    assert type(info.value) is UpstreamError and words in info.value.message
    assert "CUDA" not in info.value.message and "engine" not in info.value.message  # only in our log


async def test_connection_reset_before_answer_is_a_502() -> None:
    with pytest.raises(UpstreamError) as info:
        await _raw_stream(None)
    assert type(info.value) is UpstreamError and "raw" in info.value.message


@pytest.mark.parametrize(
    ("head", "body", "status", "message"),
    [
        (
            b"HTTP/1.1 422 Unprocessable Entity\r\nContent-Type: application/json\r\n",
            b'{"detail": [{"loc": ["body", "messages"], "msg": "Field required", "type": "missing"}]}',
            422,
            "messages: Field required",
        ),
        (b"HTTP/1.1 404 Not Found\r\n", b'{"detail": "Not Found"}', 404, "Not Found"),
        (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n", b"bad input\n", 400, "bad input"),
        (
            b"HTTP/1.1 400 Bad Request\r\n",
            b'{"object": "error", "message": "too long", "type": "BadRequestError", "code": 400}',
            400,
            "too long",
        ),
    ],
)
async def test_error_bodies_in_other_shapes(
    head: bytes, body: bytes, status: int, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Every shape of error body is read, for our log; the client gets our own sentence."""
    with pytest.raises(UpstreamStatusError) as info:
        await _raw_stream([body], head=head)
    assert info.value.status_code == status
    assert info.value.message == f"Backend 'raw' rejected the request (HTTP {status})."
    assert f"backend 'raw' answered HTTP {status}: {message}" in caplog.text


async def test_plain_text_5xx_names_the_backend() -> None:
    with pytest.raises(UpstreamError) as info:
        await _raw_stream([b"upstream crashed"], head=b"HTTP/1.1 500 Internal Server Error\r\n")
    assert info.value.status_code == 502 and info.value.message == "Backend 'raw' failed with HTTP 500."


def test_sse_decoder_byte_by_byte() -> None:
    raw = b"event: x\r\ndata: a\r\ndata: b\r\nid: 1\r\n\r\n:c\n\ndata:c\n\ndata: tail"
    decoder = SSEDecoder()
    events = [e for i in range(len(raw)) for e in decoder.feed(raw[i : i + 1])]
    assert events == [b"a\nb", b"c"]
    assert decoder.flush() == [b"tail"]
