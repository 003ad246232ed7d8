"""The edge: what every HTTP request must pass before any route sees it (`EdgeGate`).

In order, reading the headers once:
1. `Host` must name this gateway (`server.allowed_hosts`; by default, when bound to a loopback
   address, only the loopback names with any port): a web page reaching a local gateway through DNS
   rebinding is answered 400.
2. A request with an `Origin` header (sent by browsers, never by the SDKs or curl) must come from
   `server.cors_allowed_origins`, else 403. CORS is on for exactly those origins: preflights
   (`OPTIONS` with `Access-Control-Request-Method`) are answered here, and the answers of allowed
   origins carry `Access-Control-Allow-Origin`.
3. `/v1/...` (and `/ui/api/...`, the inspector page's data) needs `Authorization: Bearer <key>` when
   `auth.api_keys` is set (401 otherwise); the key's tenant becomes the request's
   `RequestContext.owner` and the client's key is not passed on to backends. `/metrics` needs the
   metrics key when one is set. `/health`, `/ready` and the `/ui` page itself (no data) stay open.
4. A `POST` with a body must be `Content-Type: application/json` (415 otherwise): a web page can send
   a "simple" cross-site POST (`text/plain`) without a CORS preflight, never a JSON one.

A WebSocket upgrade (`EdgeGate.websocket`, WebSocket mode on `/v1/responses`) passes steps 1 to 3
(with no preflight: any `Origin` not allowed is refused); a refusal is an HTTP answer in the same
envelope (`deny_websocket`).

Routes read the request's context with `request_context(scope)`, which fails (500) if this gate did
not run: never silently anonymous.
"""

from __future__ import annotations

import ipaddress
import logging
import time

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from responses_gateway.auth import KeyTable, MissingKey
from responses_gateway.config import AuthSettings, ServerSettings
from responses_gateway.errors import (
    AuthenticationFailed,
    GatewayError,
    InvalidHost,
    InvalidRequest,
    OriginNotAllowed,
    UnsupportedMediaType,
)
from responses_gateway.metrics import Metrics, route_of
from responses_gateway.service import RequestContext

log = logging.getLogger("responses_gateway.edge")

CONTEXT = "responses_gateway.context"  # the scope key of the request's RequestContext
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
CORS_METHODS = "GET, POST, DELETE, OPTIONS"
CORS_HEADERS = frozenset({"authorization", "content-type", "accept"})
CORS_HEADER_PREFIX = "x-stainless-"  # what the openai SDKs add to every request
CORS_MAX_AGE = "600"
_ECHO_CHARS = 64  # a header value echoed in an error is cut to this
_HOSTS_SEEN_MAX = 256


def is_loopback_host(host: str) -> bool:
    """True for `localhost`, 127.0.0.0/8 and ::1 (the addresses only this machine can reach)."""
    name = host.strip().lower().strip("[]")
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def host_name(value: str) -> str:
    """A `Host` header or an `allowed_hosts` entry without its port, lower case: `[::1]:8801` -> `[::1]`."""
    v = value.strip().lower()
    if v.startswith("["):
        end = v.find("]")
        return v[: end + 1] if end > 0 else v
    if v.count(":") == 1:
        v = v.split(":", 1)[0]
    elif ":" in v:  # a bare IPv6 address (only in the config)
        return f"[{v}]"
    return v.rstrip(".")


def allowed_host_names(server: ServerSettings) -> frozenset[str] | None:
    """The `Host` names accepted, or None for any: `server.allowed_hosts` ("*": any); unset, the
    loopback names (and the bound address) when bound to loopback, any name otherwise."""
    if server.allowed_hosts is not None:
        names = frozenset(host_name(h) for h in server.allowed_hosts)
        return None if "*" in names else names
    if is_loopback_host(server.host):
        return LOOPBACK_NAMES | {host_name(server.host)}
    return None


def request_context(scope: Scope) -> RequestContext:
    """The request's owner and the Authorization to pass on, as set by `EdgeGate` (KeyError without it)."""
    ctx: RequestContext = scope[CONTEXT]
    return ctx


def _cut(value: str) -> str:
    return value if len(value) <= _ECHO_CHARS else value[:_ECHO_CHARS] + "..."


def _is_json(content_type: bytes) -> bool:
    """`application/json`, optionally with parameters; a charset, if given, must be UTF-8."""
    if content_type == b"application/json":
        return True
    media, _, params = content_type.decode("latin-1").partition(";")
    if media.strip().lower() != "application/json":
        return False
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return False
    return True


class EdgeGate:
    """ASGI middleware in front of every route: Host, Origin/CORS, keys, Content-Type (module doc).
    Its own answers are counted in the request metrics like any other."""

    def __init__(self, app: ASGIApp, server: ServerSettings, auth: AuthSettings, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self.keys = KeyTable(auth)
        self.hosts = allowed_host_names(server)
        self._hosts_seen: set[bytes] = set()  # raw Host values already accepted (bounded)
        origins = frozenset(o.strip().rstrip("/") for o in server.cors_allowed_origins)
        self.any_origin = "*" in origins
        self.origins = origins - {"*"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = origin = content_type = authorization = length = preflight = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = host or value
            elif name == b"origin":
                origin = origin or value
            elif name == b"content-type":
                content_type = content_type or value
            elif name == b"authorization":
                authorization = authorization or value
            elif name == b"content-length":
                length = length or value
            elif name == b"access-control-request-method":
                preflight = preflight or value
        try:
            if self.hosts is not None and host is not None and host not in self._hosts_seen:
                self._check_host(host)
            allowed_origin = self._check_origin(origin.decode("latin-1")) if origin is not None else None
            method: str = scope["method"]
            if allowed_origin is not None and method == "OPTIONS" and preflight is not None:
                await self._preflight(scope, allowed_origin, preflight, send)
                return
            self._check_route(scope, authorization)
            if method == "POST" and length != b"0" and (content_type is None or not _is_json(content_type)):
                raise UnsupportedMediaType(self._media_message(content_type), param=None)
        except GatewayError as exc:
            await self._reply(scope, send, exc.status_code, orjson.dumps(exc.to_dict()), _auth(exc))
            return
        if allowed_origin is not None:
            send = _with_cors(send, allowed_origin)
        await self.app(scope, receive, send)

    async def websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket upgrade (`api/websocket.py`): the same Host, Origin and key checks as an HTTP
        request (steps 1 to 3; CORS and Content-Type do not apply), refused with an HTTP answer in the
        OpenAI envelope before the handshake."""
        start = time.perf_counter()
        host = origin = authorization = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = host or value
            elif name == b"origin":
                origin = origin or value
            elif name == b"authorization":
                authorization = authorization or value
        try:
            if self.hosts is not None and host is not None and host not in self._hosts_seen:
                self._check_host(host)
            if origin is not None:  # a browser: the check against cross-site WebSocket hijacking
                self._check_origin(origin.decode("latin-1"))
            self._check_route(scope, authorization)
        except GatewayError as exc:
            await deny_websocket(scope, send, exc)
            self.metrics.observe_request(
                route_of(scope["path"]), "GET", exc.status_code, time.perf_counter() - start
            )
            return
        await self.app(scope, receive, send)

    def _check_host(self, raw: bytes) -> None:
        assert self.hosts is not None
        host = raw.decode("latin-1")
        if host_name(host) in self.hosts:
            if len(self._hosts_seen) < _HOSTS_SEEN_MAX:
                self._hosts_seen.add(raw)
        else:
            raise InvalidHost(
                f"Invalid Host header '{_cut(host)}': not a name of this gateway (server.allowed_hosts; "
                "unset, only the loopback names are accepted when it listens on a loopback address).",
            )

    def _check_origin(self, origin: str) -> str | None:
        """The origin, whose answers get CORS headers; 403 for one not in `server.cors_allowed_origins`."""
        if self.any_origin or origin in self.origins:
            return origin
        raise OriginNotAllowed(
            f"Origin '{_cut(origin)}' is not allowed: browser requests are accepted only from "
            "server.cors_allowed_origins."
        )

    def _check_route(self, scope: Scope, authorization: bytes | None) -> None:
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        header = authorization.decode("latin-1") if authorization is not None else None
        if path.startswith(("/v1/", "/ui/api/")) or path == "/v1":
            if self.keys.enabled:  # the tenant's requests; its gateway key goes no further
                scope[CONTEXT] = RequestContext(owner=self.keys.authenticate(header), authorization=None)
            else:
                scope[CONTEXT] = RequestContext(owner="", authorization=header)
        elif path == "/metrics":
            self.keys.authenticate_metrics(header)

    @staticmethod
    def _media_message(content_type: bytes | None) -> str:
        given = (
            "no Content-Type"
            if content_type is None
            else f"Content-Type '{_cut(content_type.decode('latin-1'))}'"
        )
        return f"Unsupported media type: {given}. POST bodies must be JSON (Content-Type: application/json)."

    async def _preflight(self, scope: Scope, origin: str, method: bytes, send: Send) -> None:
        requested = b""
        for name, value in scope["headers"]:
            if name == b"access-control-request-headers":
                requested = value
                break
        headers = [h.strip().lower() for h in requested.decode("latin-1").split(",") if h.strip()]
        bad = [h for h in headers if h not in CORS_HEADERS and not h.startswith(CORS_HEADER_PREFIX)]
        if method.decode("latin-1").upper() not in ("GET", "POST", "DELETE") or bad:
            what = f"headers {', '.join(bad)}" if bad else f"method {_cut(method.decode('latin-1'))}"
            exc = InvalidRequest(f"CORS preflight refused: {_cut(what)} not allowed.")
            await self._reply(scope, send, 400, orjson.dumps(exc.to_dict()), [])
            return
        cors = [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-allow-methods", CORS_METHODS.encode()),
            (b"access-control-allow-headers", ", ".join(headers).encode("latin-1")),
            (b"access-control-max-age", CORS_MAX_AGE.encode()),
            (b"vary", b"Origin"),
        ]
        await self._reply(scope, send, 200, b"", cors)

    async def _reply(
        self,
        scope: Scope,
        send: Send,
        status: int,
        body: bytes,
        extra: list[tuple[bytes, bytes]],
    ) -> None:
        start = time.perf_counter()
        headers = [(b"content-length", str(len(body)).encode())]
        if body:
            headers.append((b"content-type", b"application/json"))
        await send({"type": "http.response.start", "status": status, "headers": headers + extra})
        await send({"type": "http.response.body", "body": body})
        self.metrics.observe_request(
            route_of(scope["path"]), scope["method"], status, time.perf_counter() - start
        )


async def deny_websocket(scope: Scope, send: Send, exc: GatewayError) -> None:
    """Refuse a WebSocket upgrade with `exc` as an HTTP answer (its status, the OpenAI envelope), when
    the server offers the ASGI `websocket.http.response` extension; otherwise with a bare close
    (which servers answer 403)."""
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008})
        return
    body = orjson.dumps(exc.to_dict())
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()),
        *_auth(exc),
    ]
    await send({"type": "websocket.http.response.start", "status": exc.status_code, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})


def _auth(exc: GatewayError) -> list[tuple[bytes, bytes]]:
    """A 401 says how to authenticate (RFC 9110)."""
    if isinstance(exc, AuthenticationFailed | MissingKey):
        return [(b"www-authenticate", b'Bearer realm="responses-gateway"')]
    return []


def _with_cors(send: Send, origin: str) -> Send:
    """`send`, adding the CORS headers of an allowed origin to the response start."""
    cors = [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), *cors]}
        await send(message)

    return wrapped
