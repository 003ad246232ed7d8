"""create_app(settings) -> the ASGI app; its lifespan is the only place that opens the store and upstream."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.types import Receive, Scope, Send

from responses_gateway.api.error_handlers import EXCEPTION_HANDLERS
from responses_gateway.api.hot import hot_route, serve_hot
from responses_gateway.api.routes import ROUTES, AppState
from responses_gateway.config import Settings
from responses_gateway.metrics import Metrics, MetricsMiddleware
from responses_gateway.service import ResponsesService
from responses_gateway.stores import IN_PROCESS, open_store
from responses_gateway.stores.instrumented import InstrumentedStore
from responses_gateway.upstream.http import HTTPUpstream

log = logging.getLogger("responses_gateway")


class GatewayApp(Starlette):
    """Starlette, with the two hot routes served directly (`api/hot.py`) once the lifespan has run."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            state: AppState | None = getattr(self.state, "gateway", None)
            hot = hot_route(scope) if state is not None else None
            if hot is not None:
                assert state is not None
                await serve_hot(state, hot[1], hot[0], scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings, *, metrics: Metrics | None = None) -> Starlette:
    """The gateway as an ASGI app. Nothing is opened until the lifespan starts."""
    metrics = metrics or Metrics()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        upstream = HTTPUpstream(settings.backends, max_event_bytes=settings.limits.max_completion_bytes)
        await upstream.start()
        api = settings.response_api
        service: ResponsesService | None = None
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
            instrumented = InstrumentedStore(store, metrics.store_seconds, metrics.store_errors)
            service = ResponsesService(instrumented, upstream, api, limits=settings.limits)
        else:
            log.info("Response API disabled")
        app.state.gateway = AppState(service=service, upstream=upstream, metrics=metrics)
        try:
            yield
        finally:
            if service is not None:
                await service.drain()
                await service.store.aclose()
            await upstream.aclose()

    return GatewayApp(
        routes=ROUTES,
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[Middleware(MetricsMiddleware, metrics=metrics)],
        lifespan=lifespan,
    )
