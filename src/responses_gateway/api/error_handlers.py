"""The one place where errors become HTTP responses in the OpenAI error envelope."""

from __future__ import annotations

import logging

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

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


def _literal_route(request: Request) -> bool:
    """Whether a route names this exact path without path parameters (`/v1/responses`)."""
    router = request.scope.get("router")
    routes = getattr(router, "routes", ())
    path = request.url.path
    return any(isinstance(r, Route) and not r.param_convertors and r.path == path for r in routes)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's 404 and 405 as OpenAI words them. A 405 stays a 405 only on a path a route names
    literally (`PUT /v1/responses`); a path that matched only a parameter (`POST
    /v1/responses/compact` against `/v1/responses/{response_id}`) names an endpoint this gateway does
    not have, so it is a 404 `Invalid URL`, as OpenAI answers an unknown URL."""
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    if status == 405 and not _literal_route(request):
        status = 404
    if status == 404:
        msg = f"Invalid URL ({request.method} {request.url.path})"
    elif status == 405:
        msg = f"Method {request.method} is not allowed for {request.url.path}."
    else:
        msg = str(exc.detail)
    headers = dict(exc.headers) if exc.headers and status == exc.status_code else None
    return error_response(status, msg, error_type="invalid_request_error", code=None, headers=headers)


def unrouted(http_default: ASGIApp) -> ASGIApp:
    """The router's answer when no route matches: `http_default` for HTTP; for a WebSocket upgrade,
    the same 404 `Invalid URL` as an HTTP request gets (as an ASGI denial response where the server
    offers one, else a refused upgrade), not Starlette's bare close that servers turn into a 403."""

    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await http_default(scope, receive, send)
            return
        if "websocket.http.response" not in scope.get("extensions", {}):
            await send({"type": "websocket.close", "code": 1008})
            return
        message = f"Invalid URL (GET {scope['path']})"
        body = orjson.dumps(
            {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
        )
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "websocket.http.response.start", "status": 404, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})

    return answer


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
