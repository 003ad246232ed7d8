"""Per-process capacity of the request path: the limits the handlers apply, and the open-stream cap.

`Capacity.from_settings` reads `server.*` and `limits.max_body_bytes`; `AppState.capacity` carries it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

from prometheus_client import Gauge

from responses_gateway.config import Settings, WebSocketSettings
from responses_gateway.errors import ServerBusy
from responses_gateway.protocol.events import Event

# scope["extensions"][ABORT_EXTENSION]["abort"]() drops the connection at once (set by `server.py`)
ABORT_EXTENSION = "responses_gateway.abort"
# scope["extensions"][LOST_EXTENSION]["on_lost"](callback) has `callback()` called when the client's
# connection is lost while the request runs (None unregisters it); set by `server.py`. Without it a
# handler watches `receive()` for `http.disconnect` in a task of its own.
LOST_EXTENSION = "responses_gateway.on_lost"


class _Slots:
    """Counts what this process has open; `take` refuses one over `limit` (a 503 saying `busy`)."""

    __slots__ = ("gauge", "limit", "open")
    BUSY = ""  # the 503's message, formatted with the limit

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self.gauge: Gauge | None = None  # the gauge of what is open, set by the app

    def take(self) -> None:
        if self.open >= self.limit:
            raise ServerBusy(self.BUSY.format(limit=self.limit))
        self.open += 1
        if self.gauge is not None:
            self.gauge.inc()

    def release(self) -> None:
        self.open -= 1
        if self.gauge is not None:
            self.gauge.dec()


class StreamSlots(_Slots):
    """The open SSE streams of this process (`server.max_streams`)."""

    __slots__ = ()
    BUSY = "This gateway process has too many open streams (server.max_streams: {limit}); retry shortly."

    async def hold(self, events: AsyncGenerator[list[Event], None]) -> AsyncGenerator[list[Event], None]:
        """`events`, holding a slot (already taken) until they end or are closed."""
        try:
            async for batch in events:
                yield batch
        finally:
            self.release()
            await events.aclose()


class SocketSlots(_Slots):
    """The open WebSockets of this process (`websocket.max_sockets`)."""

    __slots__ = ()
    BUSY = (
        "This gateway process has too many open WebSockets (websocket.max_sockets: {limit}); "
        "retry shortly, or use HTTP."
    )


@dataclass(frozen=True, slots=True)
class Capacity:
    """What the handlers bound. The defaults are the settings' defaults."""

    max_body_bytes: int = 16 * 1024 * 1024
    body_timeout: float = 30.0
    request_timeout: float = 600.0
    stream_send_timeout: float = 30.0
    streams: StreamSlots = field(default_factory=lambda: StreamSlots(500))
    websocket: WebSocketSettings = field(default_factory=WebSocketSettings)
    sockets: SocketSlots = field(default_factory=lambda: SocketSlots(500))

    @classmethod
    def from_settings(cls, settings: Settings) -> Capacity:
        server = settings.server
        return cls(
            max_body_bytes=settings.limits.max_body_bytes,
            body_timeout=server.body_timeout_seconds,
            request_timeout=server.request_timeout_seconds,
            stream_send_timeout=server.stream_send_timeout_seconds,
            streams=StreamSlots(server.max_streams),
            websocket=settings.websocket,
            sockets=SocketSlots(settings.websocket.max_sockets),
        )

    @property
    def max_message_bytes(self) -> int:
        """The largest client message on a WebSocket (`websocket.max_message_bytes`, else the body cap)."""
        return self.websocket.max_message_bytes or self.max_body_bytes
