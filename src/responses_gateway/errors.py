"""The gateway's error tree; `api/error_handlers.py` is the one place that turns it into HTTP.

    GatewayError                      500 server_error (never raised directly)
    ├── InvalidRequest                400 invalid_request_error
    │   └── PreviousResponseNotFound  400 previous_response_not_found (param previous_response_id)
    │   ├── RequestTooLarge           413 request_too_large (the body is over limits.max_body_bytes)
    │   └── RequestTimeout            408 request_timeout (the body came too slowly)
    ├── AuthenticationFailed          401
    ├── NotFound                      404 (unknown response id, unknown model)
    ├── UpstreamError                 502 server_error (backend unreachable or broken)
    │   ├── UpstreamTimeout           504
    │   └── UpstreamStatusError       the backend's own 4xx status, in our envelope
    ├── RateLimited                   429
    ├── StoreUnavailable              503 (store down or failing over; carries Retry-After)
    ├── ServerBusy                    503 server_busy (a per-process capacity cap; carries Retry-After)
    └── NotImplementedFeature         400 naming the unsupported field

ConfigError is separate: it only happens at start-up, before any request.
"""

from __future__ import annotations

from typing import Any

from responses_gateway.protocol.errors import shown


class ConfigError(Exception):
    """The configuration is invalid; the message names the key and is shown without a traceback."""


class GatewayError(Exception):
    """Base of every error a request can end with; carries the OpenAI error fields."""

    status_code: int = 500
    error_type: str = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.headers = headers or {}

    def to_dict(self) -> dict[str, Any]:
        """The OpenAI error envelope."""
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequest(GatewayError):
    status_code = 400
    error_type = "invalid_request_error"


class PreviousResponseNotFound(InvalidRequest):
    code = "previous_response_not_found"

    def __init__(self, response_id: str) -> None:
        super().__init__(
            f"Previous response with id '{shown(response_id)}' not found.",
            param="previous_response_id",
        )


class NotImplementedFeature(InvalidRequest):
    code = "unsupported_parameter"


class AuthenticationFailed(GatewayError):
    status_code = 401
    error_type = "invalid_request_error"
    code = "invalid_api_key"


class NotFound(GatewayError):
    status_code = 404
    error_type = "invalid_request_error"


class RateLimited(GatewayError):
    status_code = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"


class UpstreamError(GatewayError):
    status_code = 502
    error_type = "server_error"
    code = "upstream_error"
    kind = "error"  # the `kind` label of gateway_backend_errors_total (set where it is raised)
    logged = False  # set by whoever logged it, so it is logged once


class UpstreamTimeout(UpstreamError):
    status_code = 504
    code = "upstream_timeout"
    kind = "timeout"


class UpstreamStatusError(UpstreamError):
    """The backend answered with an error status; we pass its status and message on."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        error_type: str | None = None,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, code=code, param=param)
        if error_type:
            self.error_type = error_type
        elif 400 <= status_code < 500:
            self.error_type = "invalid_request_error"


class StoreUnavailable(GatewayError):
    """The store failed. `detail` (the driver's words, addresses included) is for our log only;
    clients get `message`, the same generic sentence whatever happened."""

    status_code = 503
    error_type = "server_error"
    code = "store_unavailable"
    PUBLIC_MESSAGE = "The response store is unavailable."

    def __init__(self, detail: str, *, retry_after: int = 1) -> None:
        super().__init__(self.PUBLIC_MESSAGE, headers={"Retry-After": str(retry_after)})
        self.detail = detail
        self.logged = False  # set by whoever logged the detail, so it is logged once

    def __str__(self) -> str:
        return self.detail


class TenantRateLimited(RateLimited):
    """A tenant's own limit (`limits.requests_per_minute` / `concurrent_streams`) was reached: 429 with
    `Retry-After` (whole seconds, rounded up) and `retry-after-ms`, in OpenAI's rate-limit shape
    (`type` "requests", `code` "rate_limit_exceeded")."""

    error_type = "requests"

    def __init__(self, message: str, *, retry_after_ms: int) -> None:
        retry_ms = max(1, retry_after_ms)
        self.retry_after_ms = retry_ms
        headers = {"Retry-After": str(max(1, -(-retry_ms // 1000))), "retry-after-ms": str(retry_ms)}
        super().__init__(message, headers=headers)


class RequestTooLarge(InvalidRequest):
    """The request body is over `limits.max_body_bytes` (told by Content-Length, or while reading).
    The connection stays usable: the server discards the rest of the body without keeping it."""

    status_code = 413
    code = "request_too_large"


class RequestTimeout(InvalidRequest):
    """The request body did not arrive within `server.body_timeout_seconds`; the connection is closed."""

    status_code = 408
    code = "request_timeout"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"Connection": "close"})


class ServerBusy(GatewayError):
    """A per-process capacity cap is reached (`server.max_streams`); retry shortly."""

    status_code = 503
    code = "server_busy"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class UnsupportedMediaType(InvalidRequest):
    """A POST body that does not say it is JSON (`api/edge.py`): a page's simple POST is refused."""

    status_code = 415
    code = "unsupported_media_type"


class OriginNotAllowed(InvalidRequest):
    """A browser `Origin` not in `server.cors_allowed_origins`."""

    status_code = 403
    code = "origin_not_allowed"


class InvalidHost(InvalidRequest):
    """A `Host` header not in `server.allowed_hosts` (DNS rebinding)."""

    code = "invalid_host"
