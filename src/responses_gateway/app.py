"""create_app(settings) -> the ASGI app; its lifespan is the only place that opens the store and upstream."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.types import Receive, Scope, Send

from responses_gateway.api.capacity import Capacity
from responses_gateway.api.edge import EdgeGate
from responses_gateway.api.error_handlers import EXCEPTION_HANDLERS, unrouted
from responses_gateway.api.hot import hot_route, serve_hot
from responses_gateway.api.routes import ROUTES, AppState
from responses_gateway.api.websocket import serve_websocket
from responses_gateway.background import BackgroundRunner
from responses_gateway.config import Settings
from responses_gateway.metrics import Metrics, MetricsMiddleware
from responses_gateway.ratelimit import build_rate_limiter
from responses_gateway.service import ResponsesService
from responses_gateway.stores import IN_PROCESS, ResponseStore, open_store
from responses_gateway.stores.instrumented import InstrumentedStore
from responses_gateway.upstream.http import HTTPUpstream

log = logging.getLogger("responses_gateway")


class GatewayApp(Starlette):
    """Starlette behind the edge checks (`api/edge.py`), with the two hot routes served directly
    (`api/hot.py`) once the lifespan has run."""

    edge: EdgeGate | None = None  # set by create_app; every HTTP request passes it first

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        edge = self.edge
        if edge is not None and scope["type"] == "http":
            await edge(scope, receive, send)
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


async def _drain(service: ResponsesService, grace: float) -> None:
    """Wait for the stores of responses the shutdown cancelled, at most `grace` seconds (1 at least)."""
    try:
        await asyncio.wait_for(service.drain(), max(grace, 1.0))
    except TimeoutError:
        log.warning("shutdown: stores of cancelled responses still running after %g s; not waited for", grace)


def create_app(settings: Settings, *, metrics: Metrics | None = None) -> Starlette:
    """The gateway as an ASGI app. Nothing is opened until the lifespan starts."""
    metrics = metrics or Metrics()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        upstream = HTTPUpstream(settings.backends, max_event_bytes=settings.limits.max_completion_bytes)
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
            instrumented: ResponseStore = InstrumentedStore(
                store, metrics.store_seconds, metrics.store_errors
            )
            if settings.ui.enabled:  # Redis keeps an index of recent responses for /ui (stores/recent.py)
                from responses_gateway.stores.recent import with_recent_index

                instrumented = with_recent_index(instrumented, store, settings.ui.recent_limit)
            service = ResponsesService(
                instrumented, upstream, api, limits=settings.limits, files=settings.files
            )
        else:
            log.info("Response API disabled")
        limiter = build_rate_limiter(store, settings.limits)
        capacity = Capacity.from_settings(settings)
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
    if settings.auth.enabled:
        tenants = sorted({k.tenant for k in settings.auth.api_keys})
        log.info(
            "API keys required on /v1 (%d keys, tenants: %s)", len(settings.auth.api_keys), ", ".join(tenants)
        )
    return app
