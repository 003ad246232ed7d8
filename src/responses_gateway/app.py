"""create_app(settings) -> the ASGI app; its lifespan is the only place that opens the store and upstream."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from responses_gateway.api.access import AccessLog
from responses_gateway.api.capacity import Capacity
from responses_gateway.api.edge import EdgeGate
from responses_gateway.api.error_handlers import EXCEPTION_HANDLERS, unrouted
from responses_gateway.api.hot import hot_route, serve_hot
from responses_gateway.api.routes import ROUTES, AppState
from responses_gateway.api.websocket import serve_websocket
from responses_gateway.background import BackgroundRunner
from responses_gateway.config import Settings
from responses_gateway.errors import ConfigError
from responses_gateway.metrics import BackendMeter, Metrics, MetricsMiddleware
from responses_gateway.ratelimit import build_rate_limiter
from responses_gateway.redaction import mask_url
from responses_gateway.service import ResponsesService, Upstream
from responses_gateway.stores import IN_PROCESS, ResponseStore, open_store
from responses_gateway.stores.instrumented import InstrumentedStore
from responses_gateway.upstream._errors import error_kind
from responses_gateway.upstream.http import HTTPUpstream

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from responses_gateway.tracing import Tracing

log = logging.getLogger("responses_gateway")


class GatewayApp(Starlette):
    """Starlette behind the edge checks (`api/edge.py`), with the two hot routes served directly
    (`api/hot.py`) once the lifespan has run."""

    edge: EdgeGate | None = None  # set by create_app; every HTTP request passes it first
    front: ASGIApp | None = None  # the access log (and tracing) around the edge, set by create_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        front, edge = self.front, self.edge
        if front is not None and scope["type"] == "http":
            await front(scope, receive, send)
        elif edge is not None and scope["type"] == "websocket":
            await edge.websocket(scope, receive, send)
        else:
            await self.dispatch(scope, receive, send)

    async def dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A request that passed the edge: a hot route, a WebSocket (`api/websocket.py`), else Starlette."""
        if scope["type"] == "websocket":
            state: AppState | None = getattr(self.state, "gateway", None)
            if state is not None:
                await serve_websocket(state, scope, receive, send)
                return
        if scope["type"] == "http" and not scope.get("root_path"):
            state = getattr(self.state, "gateway", None)
            hot = hot_route(scope) if state is not None else None
            if hot is not None:
                assert state is not None
                await serve_hot(state, hot[1], hot[0], scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def _service(
    store: ResponseStore,
    upstream: HTTPUpstream,
    settings: Settings,
    metrics: Metrics,
    tracing: Tracing | None,
) -> ResponsesService:
    """The service over the instrumented store (with tracing: traced, and the upstream too)."""
    api = settings.response_api
    timing = (metrics.store_seconds, metrics.store_errors, metrics.chain_depth)
    instrumented: ResponseStore
    chat: Upstream = upstream
    if tracing is None:
        instrumented = InstrumentedStore(store, *timing)
    else:
        from responses_gateway.tracing import TracedStore, TracedUpstream

        traced = TracedStore(store, *timing)
        traced.tracer = tracing.tracer
        instrumented, chat = traced, TracedUpstream(upstream, tracing.tracer)
    if settings.ui.enabled:  # Redis keeps an index of recent responses for /ui (stores/recent.py)
        from responses_gateway.stores.recent import with_recent_index

        instrumented = with_recent_index(instrumented, store, settings.ui.recent_limit)
    return ResponsesService(instrumented, chat, api, limits=settings.limits, files=settings.files)


async def _drain(service: ResponsesService, grace: float) -> None:
    """Wait for the stores of responses the shutdown cancelled, at most `grace` seconds (1 at least)."""
    try:
        await asyncio.wait_for(service.drain(), max(grace, 1.0))
    except TimeoutError:
        log.warning("shutdown: stores of cancelled responses still running after %g s; not waited for", grace)


def create_app(
    settings: Settings, *, metrics: Metrics | None = None, span_exporter: SpanExporter | None = None
) -> Starlette:
    """The gateway as an ASGI app. Nothing is opened until the lifespan starts. `span_exporter`
    (tests): where the spans go instead of OTLP, when `tracing.enabled`."""
    metrics = metrics or Metrics()
    tracing: Tracing | None = None
    if settings.tracing.enabled:
        try:
            from responses_gateway.tracing import Tracing  # OpenTelemetry is loaded only when enabled
        except ImportError as exc:
            raise ConfigError(
                "tracing.enabled: the OpenTelemetry SDK and its OTLP exporter are not installed "
                f"({exc.name}); install them with: pip install 'responses-gateway[tracing]'"
            ) from None
        tracing = Tracing(settings.tracing, span_exporter)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        upstream = HTTPUpstream(settings.backends, max_event_bytes=settings.limits.max_completion_bytes)
        upstream.meter = BackendMeter(metrics, error_kind)
        await upstream.start()
        api = settings.response_api
        service: ResponsesService | None = None
        store = None
        if api.enabled:
            try:
                store = await open_store(api)
            except BaseException:
                await upstream.aclose()
                raise
            if api.store_backend in IN_PROCESS:
                name = api.store_backend
                log.warning("%s store: stored responses are lost when the gateway restarts", name)
            log.info("Response API enabled with %s backend", api.store_backend)
            stats = getattr(store, "stats", None)
            if stats is not None and hasattr(stats, "on_retry"):  # Redis: its retries, by operation
                stats.on_retry = lambda op: metrics.store_retries.labels(op).inc()
            service = _service(store, upstream, settings, metrics, tracing)
        else:
            log.info("Response API disabled")
        limiter = build_rate_limiter(store, settings.limits)
        capacity = Capacity.from_settings(settings)
        capacity.streams.gauge = metrics.streams_open
        capacity.sockets.gauge = metrics.websockets_open
        app.state.gateway = AppState(
            service=service,
            upstream=upstream,
            metrics=metrics,
            limiter=limiter,
            capacity=capacity,
            api_keys=settings.auth.enabled,
            metrics_key=bool(settings.auth.metrics_key or settings.auth.metrics_key_sha256),
            background=BackgroundRunner(service, api.background) if service is not None else None,
        )
        if app.state.gateway.background is not None:
            app.state.gateway.background.metrics = metrics
        try:
            yield
        finally:
            if service is not None:
                background = app.state.gateway.background
                assert background is not None
                await background.shutdown(settings.server.shutdown_grace_seconds)
                await _drain(service, settings.server.shutdown_grace_seconds)
            await limiter.aclose()
            if service is not None:
                await service.store.aclose()
            await upstream.aclose()
            if tracing is not None:
                tracing.shutdown()

    routes = list(ROUTES)
    if settings.ui.enabled:
        from responses_gateway.api.ui import ui_routes

        routes += ui_routes(settings.ui)
    app = GatewayApp(
        routes=routes,
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[Middleware(MetricsMiddleware, metrics=metrics)],
        lifespan=lifespan,
    )
    app.edge = EdgeGate(app.dispatch, settings.server, settings.auth, metrics)
    app.router.default = unrouted(app.router.default)
    inner: ASGIApp = app.edge
    if tracing is not None:
        from responses_gateway.tracing import TracingMiddleware

        inner = TracingMiddleware(inner, tracing.tracer)
        log.info("tracing enabled: OTLP/HTTP to %s", mask_url(settings.tracing.endpoint))
    app.front = AccessLog(inner, metrics)
    if settings.auth.enabled:
        tenants = sorted({k.tenant for k in settings.auth.api_keys})
        log.info(
            "API keys required on /v1 (%d keys, tenants: %s)", len(settings.auth.api_keys), ", ".join(tenants)
        )
    return app
