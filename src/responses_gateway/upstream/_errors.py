"""The one boundary where aiohttp exceptions and backend error statuses become `UpstreamError`s."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

import aiohttp
import orjson

from responses_gateway.config import BackendSettings
from responses_gateway.errors import (
    GatewayError,
    RateLimited,
    UpstreamError,
    UpstreamStatusError,
    UpstreamTimeout,
)

_MAX_MESSAGE = 2000


class map_errors:
    """Re-raise aiohttp and socket errors as `UpstreamTimeout` (504) or `UpstreamError` (502).

    The message names the backend, never its URL credentials or key. Cheap enough to build per call,
    and reusable: one instance can guard every read of a stream.
    """

    __slots__ = ("_backend",)

    def __init__(self, backend: BackendSettings) -> None:
        self._backend = backend

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            return
        name = self._backend.name
        # aiohttp's timeouts subclass both ClientError and TimeoutError, so test timeouts first.
        if isinstance(exc, TimeoutError):
            raise UpstreamTimeout(
                f"Backend '{name}' did not answer within {self._backend.timeout_seconds:g}s."
            ) from exc
        if isinstance(exc, aiohttp.ClientPayloadError):
            raise UpstreamError(f"Backend '{name}' closed the connection mid-response.") from exc
        if isinstance(exc, aiohttp.ServerDisconnectedError):
            raise UpstreamError(f"Backend '{name}' closed the connection unexpectedly.") from exc
        if isinstance(exc, aiohttp.ClientConnectorError):
            reason = exc.os_error.strerror or type(exc.os_error).__name__
            raise UpstreamError(f"Backend '{name}' is unreachable: {reason}.") from exc
        if isinstance(exc, aiohttp.ClientError | OSError):
            detail = str(exc) or type(exc).__name__
            raise UpstreamError(f"Backend '{name}' connection failed: {detail}.") from exc


def status_error(
    backend: BackendSettings, status: int, body: bytes, headers: Mapping[str, str] | None = None
) -> GatewayError:
    """The error for a backend that answered `status` (>= 300) before any stream started.

    429 becomes `RateLimited` (keeping `Retry-After`), other 4xx `UpstreamStatusError` with the same
    status and the backend's own message/type/code/param, anything else a 502 naming the backend.
    """
    message, error_type, code, param = _parse_error_body(body)
    if status == 429:
        retry_after = headers.get("Retry-After") if headers is not None else None
        return RateLimited(
            message or f"Backend '{backend.name}' is rate limiting requests.",
            headers={"Retry-After": retry_after} if retry_after else None,
        )
    if 400 <= status < 500:
        return UpstreamStatusError(
            message or f"Backend '{backend.name}' rejected the request (HTTP {status}).",
            status_code=status,
            error_type=error_type,
            code=code,
            param=param,
        )
    suffix = f": {message}" if message else "."
    return UpstreamError(f"Backend '{backend.name}' failed with HTTP {status}{suffix}")


def _parse_error_body(body: bytes) -> tuple[str, str | None, str | None, str | None]:
    """(message, type, code, param) from an OpenAI-shaped, FastAPI `detail`, or plain-text body."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _clip(body.decode("utf-8", "replace").strip()), None, None, None
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, str):
            return _clip(err), None, None, None
        source = err if isinstance(err, dict) else data
        if "message" in source:
            return (
                _clip(str(source.get("message") or "")),
                _opt_str(source.get("type")),
                _opt_str(source.get("code")),
                _opt_str(source.get("param")),
            )
        if "detail" in data:
            return _clip(_detail_text(data["detail"])), None, None, None
    return _clip(body.decode("utf-8", "replace").strip()), None, None, None


def _detail_text(detail: Any) -> str:
    """FastAPI's `detail`: a string, or a list of validation errors with `loc` and `msg`."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict) and "msg" in item:
                loc = ".".join(str(x) for x in item.get("loc", ()) if x != "body")
                parts.append(f"{loc}: {item['msg']}" if loc else str(item["msg"]))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return orjson.dumps(detail).decode()


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + "…"
