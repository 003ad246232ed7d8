"""The one boundary where aiohttp exceptions and backend error statuses become `UpstreamError`s.

What a client sees is always our own sentence, naming the backend by its configured name: never the
backend's text (it may echo the credential it got), an address, or a driver's message. Those go to
our log only, with secrets masked (`redaction.mask_secrets`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Mapping
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
from responses_gateway.redaction import mask_secrets

log = logging.getLogger("responses_gateway.upstream")

_MAX_MESSAGE = 2000  # of a backend's text in our log
# OpenAI error codes a backend may give that tell the client something useful and carry no text of
# the backend's own: passed on. Any other code becomes ours (`upstream_error`).
SAFE_CODES = frozenset(
    {
        "context_length_exceeded",
        "model_not_found",
        "invalid_value",
        "invalid_type",
        "missing_required_parameter",
        "unsupported_parameter",
        "unsupported_value",
        "invalid_api_key",
        "insufficient_quota",
        "rate_limit_exceeded",
        "string_above_max_length",
        "content_policy_violation",
    }
)
_RETRY_AFTER = re.compile(r"^(?:\d{1,6}|[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT)$")


class map_errors:
    """Re-raise aiohttp and socket errors as `UpstreamTimeout` (504) or `UpstreamError` (502).

    The message names the backend, never its URL, address or key; the exception's own text is
    logged (masked). Cheap enough to build per call, and reusable: one instance can guard every
    read of a stream.
    """

    __slots__ = ("_backend", "_secrets")

    def __init__(self, backend: BackendSettings, secrets: Collection[str | None] = ()) -> None:
        self._backend = backend
        self._secrets = secrets

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
        if not isinstance(exc, aiohttp.ClientError | OSError):
            return
        detail = mask_secrets(str(exc) or type(exc).__name__, [self._backend.api_key, *self._secrets])
        log.warning("backend '%s': %s: %s", name, type(exc).__name__, detail)
        if isinstance(exc, aiohttp.ClientPayloadError):
            raise failure(f"Backend '{name}' closed the connection mid-response.", "disconnect") from exc
        if isinstance(exc, aiohttp.ServerDisconnectedError):
            raise failure(f"Backend '{name}' closed the connection unexpectedly.", "disconnect") from exc
        if isinstance(exc, aiohttp.ClientConnectorError):
            raise failure(f"Backend '{name}' is unreachable.", "connect") from exc
        raise failure(f"Backend '{name}' connection failed.", "connect") from exc


def failure(message: str, kind: str, *, logged: bool = True) -> UpstreamError:
    """An UpstreamError (502) of this `kind` (gateway_backend_errors_total); `logged`: its detail is
    already in the log."""
    error = UpstreamError(message)
    error.kind = kind
    error.logged = logged
    return error


def error_kind(exc: BaseException) -> str:
    """The `kind` label of a failed backend call."""
    if isinstance(exc, UpstreamStatusError):
        return f"status_{exc.status_code // 100}xx"
    if isinstance(exc, UpstreamError):
        return exc.kind
    if isinstance(exc, RateLimited):
        return "rate_limited"
    return "error"


def status_error(
    backend: BackendSettings,
    status: int,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    secrets: Collection[str | None] = (),
) -> GatewayError:
    """Our error for a backend that answered `status` (>= 300); its text is only logged (masked).

    - 429: `RateLimited` (429, OpenAI's `rate_limit_exceeded` shape), with the backend's
      `Retry-After` when it gave a valid one;
    - 401/403 from a backend the gateway holds a key for: the gateway's own credentials were
      refused, not the client's: a 502;
    - other 4xx: the same status, `invalid_request_error`, a generic message naming the backend
      (and the backend's code when it is one of SAFE_CODES);
    - anything else: a 502 naming the backend.
    """
    message, error_type, code, _ = _parse_error_body(body)
    name = backend.name
    log.warning(
        "backend '%s' answered HTTP %d: %s",
        name,
        status,
        mask_secrets(message, [backend.api_key, *secrets]) or "(no message)",
    )
    safe_code = code if code in SAFE_CODES else None
    if status == 429:
        retry_after = headers.get("Retry-After", "").strip() if headers is not None else ""
        valid = bool(_RETRY_AFTER.match(retry_after))
        when = f" Retry after {retry_after} seconds." if valid and retry_after.isdigit() else ""
        error = RateLimited(
            f"Backend '{name}' is rate limiting requests.{when}",
            code="rate_limit_exceeded",
            headers={"Retry-After": retry_after} if valid else None,
        )
        # OpenAI's type says what was limited ("requests" or "tokens")
        error.error_type = error_type if error_type in ("requests", "tokens") else "requests"
        return error
    if status in (401, 403) and backend.api_key:
        return failure(f"Backend '{name}' refused the gateway's credentials (HTTP {status}).", "auth")
    if 400 <= status < 500:
        detail = f": {safe_code}" if safe_code else ""
        rejected = UpstreamStatusError(
            f"Backend '{name}' rejected the request (HTTP {status}{detail}).",
            status_code=status,
            error_type="invalid_request_error",
            code=safe_code or "upstream_error",
        )
        rejected.logged = True
        return rejected
    return failure(f"Backend '{name}' failed with HTTP {status}.", f"status_{status // 100}xx")


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
