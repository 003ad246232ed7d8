"""The one place where errors become HTTP responses in the OpenAI error envelope."""

from __future__ import annotations

import logging

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from responses_gateway.errors import GatewayError, InvalidRequest, StoreUnavailable, UpstreamError
from responses_gateway.protocol.errors import RequestInvalid

log = logging.getLogger("responses_gateway.api")


def error_response(
    status: int,
    message: str,
    *,
    error_type: str,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = {"error": {"message": message, "type": error_type, "param": param, "code": code}}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


async def gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    if isinstance(exc, StoreUnavailable) and not exc.logged:  # the client gets the generic message
        exc.logged = True
        log.warning("store unavailable on %s %s: %s", request.method, request.url.path, exc.detail)
    elif isinstance(exc, UpstreamError) and not exc.logged:  # not yet logged by the upstream client
        exc.logged = True
        log.warning("backend error on %s %s: %s", request.method, request.url.path, exc.message)
    return Response(
        orjson.dumps(exc.to_dict()),
        status_code=exc.status_code,
        media_type="application/json",
        headers=exc.headers or None,
    )


async def invalid_request(request: Request, exc: Exception) -> Response:
    """A request that failed validation at the edge (`protocol.parse_create`): a 400."""
    assert isinstance(exc, RequestInvalid)
    return await gateway_error(request, InvalidRequest(exc.message, param=exc.param, code=exc.code))


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        msg = f"Invalid URL ({request.method} {request.url.path})"
    elif exc.status_code == 405:
        msg = f"Method {request.method} is not allowed for {request.url.path}."
    else:
        msg = str(exc.detail)
    return error_response(exc.status_code, msg, error_type="invalid_request_error", code=None)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        500,
        "The gateway had an internal error; it has been logged.",
        error_type="server_error",
        code="internal_error",
    )


EXCEPTION_HANDLERS = {
    GatewayError: gateway_error,
    RequestInvalid: invalid_request,
    HTTPException: http_error,
    Exception: unexpected_error,
}
