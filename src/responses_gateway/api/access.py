"""The access log and request ids: the outermost ASGI layer of every HTTP request (`AccessLog`).

For each request: its id (the client's `X-Request-Id` when it is safe, otherwise a new one) is put
in a `RequestRecord` (`telemetry.CURRENT`) for every log line written meanwhile, sent back as the
`x-request-id` response header, and one line is logged on `responses_gateway.access` when the
request ends (a stream: when the stream ends):

    POST /v1/responses 200 12.3ms response_id=resp_… model=m backend=b store_round_trips=2

(with `log_format: json`, the same fields as JSON keys). The store round trips of the request also
are added to the `gateway_store_round_trips_total` counter.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from responses_gateway.metrics import Metrics, route_of
from responses_gateway.redaction import mask_secrets
from responses_gateway.telemetry import CURRENT, REQUEST_ID_HEADER, RequestIds, RequestRecord

log = logging.getLogger("responses_gateway.access")

CLIENT_CLOSED = 499  # logged for a request that ended without an answer (its client left)
_MAX_FIELD = 200  # a path or model longer than this is cut in the log
_RESPONSES = "/v1/responses/"


def clean(value: str) -> str:
    """A client-given value as it may be logged: bounded, secrets masked."""
    if len(value) > _MAX_FIELD:
        value = value[:_MAX_FIELD] + "..."
    # every pattern `mask_secrets` masks has a `-` (sk-…), an `@` (URL user info) or white space
    # (`Bearer …`): without them (most paths, many model names) nothing is searched
    if "-" in value or "@" in value or not value.isprintable() or " " in value:
        value = mask_secrets(value)
    return value


def _word(value: str | None) -> str:
    """A value as one word of a text line: `-` for none, JSON-quoted when it has spaces, quotes or
    control characters (so a client cannot split or forge a line)."""
    if value is None:
        return "-"
    if value.isprintable() and " " not in value and '"' not in value:
        return value
    return json.dumps(value)


class AccessLog:
    """Request ids, the access line and the per-request store round trips (module doc)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self.ids = RequestIds()
        self._round_trips: dict[str, Any] = {}  # route -> bound counter child

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = None
        for name, value in scope["headers"]:
            if name == REQUEST_ID_HEADER:
                given = value
                break
        record = RequestRecord(self.ids.accept(given))
        token = CURRENT.set(record)
        header = (REQUEST_ID_HEADER, record.request_id.encode("latin-1"))
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        start = time.perf_counter()
        failed = True
        try:
            await self.app(scope, receive, send_with_id)
            failed = False
        finally:
            seconds = time.perf_counter() - start
            try:
                self._done(scope, status or (500 if failed else CLIENT_CLOSED), seconds, record)
            finally:
                CURRENT.reset(token)

    def _done(self, scope: Scope, status: int, seconds: float, record: RequestRecord) -> None:
        path: str = scope["path"]
        trips = record.store_round_trips
        if trips and path.startswith("/v1/"):
            route = route_of(path)
            child = self._round_trips.get(route)
            if child is None:
                child = self._round_trips[route] = self.metrics.store_round_trips.labels(route)
            child.inc(trips)
        if not log.isEnabledFor(logging.INFO):
            return
        response_id = record.response_id
        if response_id is None and path.startswith(_RESPONSES):
            response_id = path[len(_RESPONSES) :].split("/", 1)[0]
        method: str = scope["method"]
        path = clean(path)
        response_id = clean(response_id) if response_id else None
        model = clean(record.model) if record.model else None
        backend = record.backend
        ms = seconds * 1000
        message = (
            f"{method} {_word(path)} {status} {ms:.1f}ms response_id={_word(response_id)} "
            f"model={_word(model)} backend={_word(backend)} store_round_trips={trips}"
        )
        # the record made directly: `log.info` would also walk the stack for the caller's line
        line = log.makeRecord(log.name, logging.INFO, __file__, 0, message, (), None)
        line.access = {
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round(ms, 3),
            "response_id": response_id,
            "model": model,
            "backend": backend,
            "store_round_trips": trips,
        }
        log.handle(line)
