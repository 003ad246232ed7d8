"""`HTTPUpstream`: one pooled aiohttp session to every Chat Completions backend.

Streams `/chat/completions` as parsed chunks, forwards pass-through requests as raw bytes and merges
`/models`. Every aiohttp failure is mapped to our `UpstreamError` tree in `_errors.map_errors`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from types import TracebackType
from typing import Any, Protocol

import aiohttp
import msgspec
import orjson

from responses_gateway.config import BackendSettings
from responses_gateway.errors import GatewayError, InvalidRequest, UpstreamError, UpstreamTimeout
from responses_gateway.protocol.chat import (
    ChatChunk,
    ChatRequest,
    TokenizeAnswer,
    TokenizeRequest,
    present,
)
from responses_gateway.redaction import mask_secrets
from responses_gateway.upstream._errors import failure, map_errors, status_error
from responses_gateway.upstream._sse import SSEDecoder
from responses_gateway.upstream.router import ModelRouter

logger = logging.getLogger(__name__)

_DONE = b"[DONE]"
# How long to wait, after `[DONE]`, for the end of the HTTP body so the connection can be reused.
_DRAIN_SECONDS = 0.05
_JSON = "application/json"
_ERROR_BODY_BYTES = 64 * 1024  # of a backend's error answer: read for our log, never relayed
MiB = 1024 * 1024


class RawResponse:
    """A backend response relayed as bytes (status and content type are not interpreted).

    Read it with `iter_bytes()` or `read()`; always `aclose()` it (or use `async with`), which drops
    the connection if the body was not read to the end, so the backend stops generating.
    """

    __slots__ = ("_errors", "_response", "content_type", "headers", "status")

    def __init__(self, response: aiohttp.ClientResponse, errors: map_errors) -> None:
        self._response = response
        self._errors = errors
        self.status: int = response.status
        self.content_type: str = response.headers.get("Content-Type", "application/octet-stream")
        self.headers: Mapping[str, str] = response.headers

    async def iter_bytes(self) -> AsyncGenerator[bytes, None]:
        """The body, piece by piece as it arrives."""
        content = self._response.content
        try:
            while True:
                with self._errors:
                    chunk = await content.readany()
                if not chunk:
                    return
                yield chunk
        finally:
            await self.aclose()

    async def read(self) -> bytes:
        """The whole body."""
        try:
            with self._errors:
                return await self._response.read()
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Give the connection back to the pool if the body was read, else close it."""
        _finish(self._response)

    async def __aenter__(self) -> RawResponse:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class CallMeter(Protocol):
    """Told about every streamed backend call (`metrics.BackendMeter`)."""

    def first_chunk(self, backend: str, seconds: float) -> None: ...

    def ended(self, backend: str, seconds: float, error: BaseException | None) -> None: ...


class HTTPUpstream:
    """The gateway's client to its Chat Completions backends; open with `start()`, close with `aclose()`."""

    def __init__(
        self,
        backends: Sequence[BackendSettings],
        *,
        pool_limit: int = 4096,
        pool_limit_per_host: int = 2048,
        max_event_bytes: int = 32 * MiB,
    ) -> None:
        self.router = ModelRouter(backends)
        # one stream event, or a whole non-streamed completion, larger than this is a failure
        self.max_event_bytes = max_event_bytes
        # masked in whatever a backend's answer puts in our log
        self._secrets = frozenset(b.api_key for b in backends if b.api_key)
        self._pool_limit = pool_limit
        self._pool_limit_per_host = pool_limit_per_host
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        self.meter: CallMeter | None = None  # set by the app: backend metrics

    async def start(self) -> None:
        """Open the shared connection pool (idempotent)."""
        if self._session is not None:
            return
        connector = aiohttp.TCPConnector(
            limit=self._pool_limit,
            limit_per_host=self._pool_limit_per_host,
            keepalive_timeout=60,
            ttl_dns_cache=300,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None),
            trust_env=False,
            skip_auto_headers=("User-Agent",),
        )

    async def aclose(self) -> None:
        """Close every pooled connection (idempotent)."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def __aenter__(self) -> HTTPUpstream:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def backend_for(self, model: str) -> BackendSettings:
        """The first backend listing `model`, else the first with "*"; `NotFound` (404) otherwise."""
        return self.router.backend_for(model)

    async def stream_chat(
        self, backend: BackendSettings, body: ChatRequest, *, authorization: str | None
    ) -> AsyncGenerator[ChatChunk, None]:
        """POST `body` as a streaming chat completion and yield each chunk, decoded into a ChatChunk.

        Adds `stream: true` and `stream_options.include_usage`. Raises `RateLimited`,
        `UpstreamStatusError` or `UpstreamError` for an error status, `UpstreamTimeout` when the
        backend is silent for `timeout_seconds`, `UpstreamError` if the stream breaks. Closing the
        generator (or cancelling its task) closes the connection, which stops the backend.
        """
        options = {**(body.stream_options or {}), "include_usage": True}
        payload = _encode(msgspec.structs.replace(body, stream=True, stream_options=options))
        secrets = self._secrets_with(authorization)
        errors = map_errors(backend, secrets)
        meter = self.meter
        started = time.perf_counter()
        first = meter is not None
        failed: BaseException | None = None
        try:
            response = await self._send(
                backend, "POST", "/chat/completions", payload, authorization, errors, stream=True
            )
            try:
                if response.status >= 300:
                    with errors:
                        raw = await _read_at_most(response, _ERROR_BODY_BYTES)
                    raise status_error(backend, response.status, raw, response.headers, secrets)
                if response.content_type == _JSON:
                    # a backend that ignored stream:true (llm-katan's tool answers): one whole completion,
                    # which the translator reads like a chunk (`message` instead of `delta`)
                    with errors:
                        raw = await _read_at_most(response, self.max_event_bytes + 1)
                    if len(raw) > self.max_event_bytes:
                        raise _too_large(backend, self.max_event_bytes)
                    chunk = _parse_chunk(backend, raw, secrets)
                    if meter is not None:
                        meter.first_chunk(backend.name, time.perf_counter() - started)
                    yield chunk
                    return
                decoder = SSEDecoder()
                content = response.content
                finished = False  # a chunk carried a finish_reason: a cut after it loses only usage
                while True:
                    try:
                        with errors:
                            data = await content.readany()
                    except UpstreamTimeout:
                        raise
                    except UpstreamError:
                        if finished:
                            return
                        raise
                    if decoder.pending > self.max_event_bytes:
                        raise _too_large(backend, self.max_event_bytes)
                    for event in decoder.feed(data) if data else decoder.flush():
                        if event == _DONE:
                            await _drain(response)
                            return
                        chunk = _parse_chunk(backend, event, secrets)
                        if not finished:
                            finished = _has_finish_reason(chunk)
                        if first:
                            first = False
                            assert meter is not None
                            meter.first_chunk(backend.name, time.perf_counter() - started)
                        yield chunk
                    if not data:
                        if finished:
                            return
                        raise failure(
                            f"Backend '{backend.name}' closed the stream before it finished.",
                            "disconnect",
                            logged=False,
                        )
            finally:
                _finish(response)
        except (GatewayError, asyncio.CancelledError) as exc:
            failed = exc
            raise
        finally:
            if meter is not None:
                meter.ended(backend.name, time.perf_counter() - started, failed)

    async def forward(
        self,
        backend: BackendSettings,
        method: str,
        path: str,
        body: bytes | None,
        *,
        authorization: str | None,
    ) -> RawResponse:
        """Send a pass-through request and return the backend's successful answer unread.

        An error status (>= 400) is raised as our own error (`status_error`): a backend's error text
        is never relayed, since it may echo the credential it got. `path` is relative to the
        backend's `base_url` (`/chat/completions`, `/models`); a leading `/v1` is dropped when
        `base_url` already ends with it, so the gateway's own path works too.
        """
        if backend.base_url.endswith("/v1") and (path == "/v1" or path.startswith("/v1/")):
            path = path[3:]
        secrets = self._secrets_with(authorization)
        errors = map_errors(backend, secrets)
        response = await self._send(backend, method, path, body, authorization, errors, stream=False)
        if response.status >= 400:
            try:
                with errors:
                    raw = await _read_at_most(response, _ERROR_BODY_BYTES)
            finally:
                _finish(response)
            raise status_error(backend, response.status, raw, response.headers, secrets)
        return RawResponse(response, errors)

    async def count_tokens(
        self, backend: BackendSettings, body: ChatRequest, *, authorization: str | None
    ) -> int:
        """The prompt tokens of `body` as the backend's own tokenizer counts them: vLLM's
        `POST /tokenize` beside its `/v1` (chat template applied, tools included).

        A backend without that endpoint (404, 405, 501) is a 400 `tokenizer_unavailable` naming it;
        other failures are mapped as for any backend call. The count is never estimated here."""
        root = backend.base_url.removesuffix("/v1")
        payload = _encode(
            TokenizeRequest(body.model, body.messages, add_generation_prompt=True, tools=body.tools)
        )
        secrets = self._secrets_with(authorization)
        errors = map_errors(backend, secrets)
        response = await self._send(
            backend, "POST", "/tokenize", payload, authorization, errors, stream=False, base=root
        )
        try:
            with errors:  # vLLM lists every token id too: as large as a whole completion may be
                raw = await _read_at_most(response, self.max_event_bytes)
        finally:
            _finish(response)
        if response.status in (404, 405, 501):
            raise InvalidRequest(
                f"Input tokens cannot be counted for model '{body.model}': its backend '{backend.name}' has "
                f"no tokenizer endpoint (POST /tokenize answered {response.status}). This gateway counts "
                "tokens only with a backend's own tokenizer (as vLLM serves it), never by estimate.",
                param="model",
                code="tokenizer_unavailable",
            )
        if response.status >= 300:
            raise status_error(backend, response.status, raw, response.headers, secrets)
        try:
            count = _decode_tokenize(raw).count
        except msgspec.DecodeError:
            count = -1
        if count < 0:
            raise UpstreamError(f"Backend '{backend.name}' answered POST /tokenize without a token count.")
        return count

    def _secrets_with(self, authorization: str | None) -> frozenset[str]:
        """The configured keys, and the client's own credential when it is passed through."""
        if not authorization:
            return self._secrets
        token = authorization.partition(" ")[2] or authorization
        return self._secrets | {token}

    async def list_models(self, *, authorization: str | None) -> list[dict[str, Any]]:
        """Every backend's `/models` merged (first wins per id), plus configured names none listed.

        A backend that fails is skipped with a warning, so one dead backend does not hide the rest.
        """
        listed = await asyncio.gather(*(self._models_of(b, authorization) for b in self.router.backends))
        merged: dict[str, dict[str, Any]] = {}
        for models in listed:
            for model in models:
                merged.setdefault(model["id"], model)
        for name, backend in self.router.configured_models():
            if name not in merged:
                merged[name] = {"id": name, "object": "model", "created": 0, "owned_by": backend.name}
        return list(merged.values())

    async def _models_of(self, backend: BackendSettings, authorization: str | None) -> list[dict[str, Any]]:
        try:
            async with await self.forward(
                backend, "GET", "/models", None, authorization=authorization
            ) as raw:
                body = await raw.read()
            if raw.status != 200:
                raise status_error(backend, raw.status, body, raw.headers)
            data = orjson.loads(body)["data"]
            models = [m for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]
        except (GatewayError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
            logger.warning("Skipping backend '%s' in the model list: %s", backend.name, exc)
            return []
        return models

    async def _send(
        self,
        backend: BackendSettings,
        method: str,
        path: str,
        body: bytes | None,
        authorization: str | None,
        errors: map_errors,
        *,
        stream: bool,
        base: str | None = None,
    ) -> aiohttp.ClientResponse:
        session = self._session
        if session is None:
            raise RuntimeError("HTTPUpstream.start() must be awaited before use")
        headers: dict[str, str] = {}
        if body is not None:
            headers["Content-Type"] = _JSON
        if stream:
            headers["Accept"] = "text/event-stream"
        if backend.api_key:
            headers["Authorization"] = f"Bearer {backend.api_key}"
        elif authorization is not None:
            headers["Authorization"] = authorization
        with errors:
            return await session.request(
                method,
                (backend.base_url if base is None else base) + path,
                data=body,
                headers=headers,
                timeout=self._timeout(backend.timeout_seconds),
                allow_redirects=False,
            )

    def _timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        """Connect within `seconds`, and never wait longer than that between two reads.

        Not a total budget: a long generation that keeps sending is never cut.
        """
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            timeout = aiohttp.ClientTimeout(
                total=None, connect=seconds, sock_connect=seconds, sock_read=seconds
            )
            self._timeouts[seconds] = timeout
        return timeout


_encode = msgspec.json.Encoder().encode
_decode_chunk = msgspec.json.Decoder(ChatChunk).decode
_decode_any = msgspec.json.Decoder().decode
_decode_tokenize = msgspec.json.Decoder(TokenizeAnswer).decode


def _parse_chunk(backend: BackendSettings, event: bytes, secrets: frozenset[str] = frozenset()) -> ChatChunk:
    """One `data:` payload as a typed chunk; a malformed one, or an in-stream error, is an UpstreamError
    (the backend's error text is logged, masked, never passed on)."""
    try:
        chunk = _decode_chunk(event)
    except msgspec.DecodeError as exc:  # not JSON, or of a shape no chunk has
        raise failure(
            f"Backend '{backend.name}' sent a malformed stream chunk.", "malformed", logged=False
        ) from exc
    error: Any = _decode_any(chunk.error) if present(chunk.error) else None
    if error is None and chunk.object == "error" and present(chunk.message):  # vLLM's older shape
        error = {"message": _decode_any(chunk.message)}
    if error is not None:
        message = error.get("message") if isinstance(error, dict) else error
        detail = mask_secrets(str(message)[:2000], [backend.api_key, *secrets])
        logger.warning("backend '%s' sent an error mid-stream: %s", backend.name, detail)
        raise failure(f"Backend '{backend.name}' failed mid-stream.", "stream_error")
    return chunk


def _too_large(backend: BackendSettings, limit: int) -> UpstreamError:
    return failure(
        f"Backend '{backend.name}' sent a single event larger than {limit} bytes "
        "(limits.max_completion_bytes).",
        "too_large",
        logged=False,
    )


async def _read_at_most(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, or its first `limit` bytes and no more (the rest is never buffered)."""
    parts: list[bytes] = []
    size = 0
    while size < limit:
        data = await response.content.read(limit - size)
        if not data:
            break
        parts.append(data)
        size += len(data)
    return b"".join(parts)


def _has_finish_reason(chunk: ChatChunk) -> bool:
    return any(c.finish_reason for c in chunk.choices or ())


async def _drain(response: aiohttp.ClientResponse) -> None:
    """Read the end of the body after `[DONE]` so `_finish` can keep the connection alive."""
    if response.content.at_eof():
        return
    try:
        async with asyncio.timeout(_DRAIN_SECONDS):
            await response.content.read()
    except (TimeoutError, aiohttp.ClientError):
        pass  # `_finish` will close the connection instead


def _finish(response: aiohttp.ClientResponse) -> None:
    """Pool the connection when the body was read to the end; otherwise close it at once."""
    if response.content.at_eof():
        response.release()
    else:
        response.close()
