"""OpenTelemetry tracing, when `tracing.enabled` (docs/OPERATIONS.md). Imported only then: with
tracing off, nothing of OpenTelemetry is loaded and no request pays for it.

- `TracingMiddleware`: a SERVER span per HTTP request, `{method} {route}`, continuing the caller's
  trace when it sends `traceparent`; attributes: method, route, status, request id, and for a
  create its response id, model and backend.
- `TracedStore`: a child span per store call (`store {op}`), with the store's kind and the id.
- `TracedUpstream`: a CLIENT child span per backend call (`backend chat.completions`), from the call
  to its last chunk, with the backend, model and, on failure, the error's kind.

Spans are exported over OTLP/HTTP (protobuf) to `tracing.endpoint` by a batching processor, sampled
at `tracing.sample_ratio` of the traces the gateway starts (a caller's sampled flag is followed).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable
from typing import TypeVar

from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from responses_gateway.config import BackendSettings, TracingSettings
from responses_gateway.errors import GatewayError
from responses_gateway.metrics import route_of
from responses_gateway.protocol.chat import ChatChunk, ChatRequest
from responses_gateway.service import Upstream
from responses_gateway.stores.instrumented import InstrumentedStore
from responses_gateway.telemetry import CURRENT
from responses_gateway.upstream._errors import error_kind

T = TypeVar("T")
_PROPAGATOR = TraceContextTextMapPropagator()
_TRACE_HEADERS = frozenset({b"traceparent", b"tracestate"})


class Tracing:
    """The tracer provider of one app, its tracer, and its shutdown (which flushes the spans)."""

    def __init__(self, settings: TracingSettings, exporter: SpanExporter | None = None) -> None:
        resource = Resource.create({"service.name": settings.service_name})
        sampler = ParentBased(TraceIdRatioBased(settings.sample_ratio))
        self.provider = TracerProvider(resource=resource, sampler=sampler)
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.endpoint)))
        else:  # tests: every span handed over as it ends
            self.provider.add_span_processor(SimpleSpanProcessor(exporter))
        self.tracer: Tracer = self.provider.get_tracer("responses_gateway")

    def shutdown(self) -> None:
        self.provider.shutdown()


def _parent(scope: Scope) -> Context | None:
    carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in _TRACE_HEADERS}
    return _PROPAGATOR.extract(carrier) if carrier else None


class TracingMiddleware:
    """A span per HTTP request (module doc); inside `AccessLog`, so the request's record is there."""

    def __init__(self, app: ASGIApp, tracer: Tracer) -> None:
        self.app = app
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        route = route_of(scope["path"])
        status = 0

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with self.tracer.start_as_current_span(
            f"{method} {route}",
            context=_parent(scope),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "http.route": route},
            record_exception=True,
            set_status_on_exception=True,
        ) as span:
            try:
                await self.app(scope, receive, send_status)
            finally:
                if status:
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                record = CURRENT.get()
                if record is not None:
                    span.set_attribute("gateway.request_id", record.request_id)
                    span.set_attribute("gateway.store_round_trips", record.store_round_trips)
                    for key, value in (
                        ("gateway.response_id", record.response_id),
                        ("gateway.model", record.model),
                        ("gateway.backend", record.backend),
                    ):
                        if value is not None:
                            span.set_attribute(key, value)


class TracedStore(InstrumentedStore):
    """The instrumented store, each call in a child span `store {op}`."""

    tracer: Tracer

    async def _timed(self, op: str, call: Awaitable[T]) -> T:
        with self.tracer.start_as_current_span(
            f"store {op}",
            kind=SpanKind.CLIENT,
            attributes={"gateway.store.operation": op, "gateway.store.backend": self.backend_name},
        ):
            return await super()._timed(op, call)


class TracedUpstream:
    """The service's upstream, each streamed backend call in a child span (module doc)."""

    def __init__(self, inner: Upstream, tracer: Tracer) -> None:
        self.inner = inner
        self.tracer = tracer

    def backend_for(self, model: str) -> BackendSettings:
        return self.inner.backend_for(model)

    async def stream_chat(
        self, backend: BackendSettings, body: ChatRequest, *, authorization: str | None
    ) -> AsyncGenerator[ChatChunk, None]:
        record = CURRENT.get()
        attributes = {"gateway.backend": backend.name, "gateway.model": body.model}
        if record is not None and record.response_id is not None:
            attributes["gateway.response_id"] = record.response_id
        # not made current: the call has no children, and a generator may end in another context
        span = self.tracer.start_span("backend chat.completions", kind=SpanKind.CLIENT, attributes=attributes)
        chunks = self.inner.stream_chat(backend, body, authorization=authorization)
        try:
            async for chunk in chunks:
                yield chunk
        except GatewayError as exc:
            span.set_attribute("gateway.backend.error", error_kind(exc))
            span.set_attribute("http.response.status_code", exc.status_code)
            span.set_status(Status(StatusCode.ERROR, exc.message))
            raise
        finally:
            await chunks.aclose()
            span.end()
