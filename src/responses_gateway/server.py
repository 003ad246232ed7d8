"""The HTTP server's own limits: uvicorn's configuration, and its httptools protocol with a header
timeout and a connection cap (uvicorn has neither).

uvicorn (0.30 to 0.54) times out only an idle connection between two requests (`timeout_keep_alive`,
armed when a response completes, cancelled by the first byte that arrives): a connection that sends
nothing, or half a request head, is kept for ever, and `limit_concurrency` answers 503 only once a
request's headers have arrived, so idle sockets are never refused. `GatewayProtocol` adds:
- `server.header_timeout_seconds`: from the connection's start, or from the first byte of a later
  request (or from a response sent before its request's body was all read), to the end of the
  request's headers; then the connection is closed;
- `server.max_connections`: a connection beyond it gets a 503 (OpenAI envelope, `Retry-After`) and is
  closed at once, before anything is read;
- the `responses_gateway.abort` scope extension, with which `api/hot.py` drops a stream whose
  client stopped reading (uvicorn's own close would wait for the unread bytes to be sent).
It relies on uvicorn's `HttpToolsProtocol` internals (pinned in pyproject.toml).

WebSocket mode (`api/websocket.py`): an upgrade is handed by `GatewayProtocol` (uvicorn's own
`handle_websocket_upgrade`) to `GatewayWebSocketProtocol`, uvicorn's protocol over websockets'
sans-I/O one, configured from `websocket.*` (message size, pings, compression), with the abort
extension too. Open sockets count in `server.max_connections`.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request as WebSocketRequest

from responses_gateway.api.capacity import ABORT_EXTENSION, LOST_EXTENSION
from responses_gateway.config import ServerSettings, Settings

if TYPE_CHECKING:
    from starlette.types import ASGIApp
    from uvicorn import Config
    from uvicorn._types import ASGISendEvent

log = logging.getLogger("responses_gateway.server")
LISTEN_BACKLOG = 2048  # uvicorn's default


def _busy_response(max_connections: int) -> bytes:
    message = (
        f"This gateway process has too many open connections (server.max_connections: {max_connections})."
    )
    body = orjson.dumps(
        {"error": {"message": message, "type": "server_error", "param": None, "code": "server_busy"}}
    )
    head = (
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n"
        b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    return head + body


class GatewayProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header timeout, a connection cap and an abort extension."""

    header_timeout: float = 10.0
    max_connections: int = 1000
    busy_response: bytes = _busy_response(1000)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._on_lost: Callable[[], None] | None = None
        self._extensions: dict[str, dict[object, object]] = {
            ABORT_EXTENSION: {"abort": self.abort},
            LOST_EXTENSION: {"on_lost": self._set_on_lost},
        }

    @classmethod
    def configured(cls, server: ServerSettings) -> type[GatewayProtocol]:
        """A subclass with these settings (uvicorn builds the protocol itself, from a class)."""
        attrs = {
            "header_timeout": server.header_timeout_seconds,
            "max_connections": server.max_connections,
            "busy_response": _busy_response(server.max_connections),
        }
        return type("ConfiguredGatewayProtocol", (cls,), attrs)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.write(self.busy_response)
            transport.close()
            return
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)
        on_lost, self._on_lost = self._on_lost, None
        if on_lost is not None:
            on_lost()

    def _set_on_lost(self, callback: Callable[[], None] | None) -> None:
        """What to call if the connection is lost while the current request runs (LOST_EXTENSION):
        a disconnect seen without a task per request watching `receive()`."""
        self._on_lost = callback

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = self._extensions
        if self._header_timer is None:  # a later request: its head gets the whole timeout too
            self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # answered before its body was all read (a 413): the rest of the body, which uvicorn discards,
        # and the next request's headers must come within the header timeout too
        if self.cycle.more_body and self._header_timer is None and not self.transport.is_closing():
            self._arm_header_timer()

    def abort(self) -> None:
        """Drop the connection now, discarding unsent bytes; the running request sees a disconnect."""
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.abort()

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout, self._header_timed_out)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()


class GatewayWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol (websockets' sans-I/O one) with the abort extension, with which
    `api/websocket.py` drops a socket whose client stopped reading."""

    def handle_connect(self, event: WebSocketRequest) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)  # set only when the handshake goes on to the app
        if scope is not None:
            scope["extensions"][ABORT_EXTENSION] = {"abort": self.transport.abort}

    async def send(self, message: ASGISendEvent) -> None:
        await super().send(message)
        if message["type"] == "websocket.http.response.body" and not message.get("more_body", False):
            # an upgrade refused with an HTTP answer (`edge.deny_websocket`) is a complete exchange:
            # without this uvicorn logs "ASGI callable returned without completing handshake"
            self.handshake_complete = True


def uvicorn_config(app: ASGIApp, settings: Settings, *, loop: str = "uvloop") -> Config:
    """uvicorn's configuration for the gateway: our protocol, timeouts and graceful shutdown."""
    import uvicorn

    server = settings.server
    return uvicorn.Config(
        app,
        host=server.host,
        port=server.port,
        loop=loop,
        http=GatewayProtocol.configured(server),
        ws=GatewayWebSocketProtocol,
        # WebSocket mode (`websocket.*`): a larger client message closes the socket (1009); pings
        ws_max_size=settings.websocket.max_message_bytes or settings.limits.max_body_bytes,
        ws_ping_interval=settings.websocket.ping_interval_seconds or None,
        ws_ping_timeout=settings.websocket.ping_timeout_seconds,
        ws_per_message_deflate=settings.websocket.per_message_deflate,
        lifespan="on",
        access_log=False,
        log_config=None,  # keep our root handler and format for uvicorn's loggers too
        log_level=settings.log_level,
        backlog=LISTEN_BACKLOG,
        # both used as asyncio timeouts, where a float is fine
        timeout_keep_alive=server.keep_alive_seconds,  # type: ignore[arg-type]
        timeout_graceful_shutdown=server.shutdown_grace_seconds,  # type: ignore[arg-type]
    )


def raise_open_files_limit(max_connections: int) -> None:
    """Raise this process's soft limit of open files to its hard limit, so that `server.max_connections`
    (and not the file limit) is what refuses connections; warn when even that is too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    headroom = 64  # listeners, the store's and the backends' connections, logs
    if soft != resource.RLIM_INFINITY and soft < max_connections + headroom:
        log.warning(
            "the open-files limit (%d) is below server.max_connections (%d) plus %d: connections may be "
            "refused by the system before the cap applies",
            soft,
            max_connections,
            headroom,
        )
