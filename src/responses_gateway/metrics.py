"""Prometheus instruments, defined once on a registry of their own, and the ASGI middleware feeding them.

Under `serve --workers N` every worker writes its values to files in a shared directory (prometheus_client's
multiprocess mode) and /metrics, on any worker, renders the sum over all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


_ROUTES = frozenset(
    {"/v1/responses", "/v1/chat/completions", "/v1/models", "/health", "/ready", "/metrics", "/openapi.json"}
)


def route_of(path: str) -> str:
    """A low-cardinality label for a request path."""
    if path.startswith("/v1/responses/"):
        for tail in ("/input_items", "/cancel"):
            if path.endswith(tail):
                return "/v1/responses/{id}" + tail
        return "/v1/responses/{id}"
    if path in _ROUTES:
        return path
    return "other"


def multiprocess_dir() -> str | None:
    """The directory this process's metric values live in when it is one of several workers, else None.

    prometheus_client picks file-backed values when it is first imported with `PROMETHEUS_MULTIPROC_DIR`
    set (as `serve` sets it for its workers); set later, the variable is ignored here too.
    """
    path = os.environ.get(MULTIPROC_DIR_ENV)
    if path and values.ValueClass is not values.MutexValue:
        return path
    return None


@contextlib.contextmanager
def shared_metrics_dir() -> Iterator[str]:
    """A fresh directory for the workers' metric files, exported as PROMETHEUS_MULTIPROC_DIR to the
    processes started inside the block, and removed with everything in it at the end."""
    path = tempfile.mkdtemp(prefix="responses-gateway-metrics-")
    previous = os.environ.get(MULTIPROC_DIR_ENV)
    os.environ[MULTIPROC_DIR_ENV] = path
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(MULTIPROC_DIR_ENV, None)
        else:
            os.environ[MULTIPROC_DIR_ENV] = previous
        shutil.rmtree(path, ignore_errors=True)


def mark_process_dead(pid: int, path: str) -> None:
    """Forget the live gauges of a worker that exited (its counters and histograms still count)."""
    multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


class Metrics:
    """The gateway's instruments. In a worker (see `multiprocess_dir`) the values are written to the shared
    directory, and `render` reports every worker's; a Gauge added here needs a `multiprocess_mode`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.multiprocess_dir = multiprocess_dir() if registry is None else None
        self.requests = Counter(
            "gateway_requests_total",
            "HTTP requests by route, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "gateway_request_seconds",
            "Time to the end of the response body, by route.",
            ["route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )

        self.store_seconds = Histogram(
            "gateway_store_seconds",
            "Time of each store call, by operation.",
            ["op"],
            registry=self.registry,
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5),
        )
        self.store_errors = Counter(
            "gateway_store_errors_total",
            "Store calls that failed (answered 503), by operation.",
            ["op"],
            registry=self.registry,
        )
        self.websockets_open = Gauge(
            "gateway_websockets_open",
            "WebSocket connections open on /v1/responses (WebSocket mode).",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        # (route, method, status) -> the bound counter and histogram children: `.labels()` takes a lock
        # and builds a key on every call, so each label set is bound once and reused
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        # operations: store retries and round trips, chain depth, backends, streams, background work
        self.store_retries = Counter(
            "gateway_store_retries_total",
            "Store commands tried again after a connection failure or failover (Redis), by operation.",
            ["op"],
            registry=self.registry,
        )
        self.store_round_trips = Counter(
            "gateway_store_round_trips_total",
            "Store round trips of /v1 requests (Redis: network round trips; others: store calls), by route.",
            ["route"],
            registry=self.registry,
        )
        self.chain_depth = Histogram(
            "gateway_chain_depth",
            "Turns in the history read for a create with previous_response_id.",
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
        )
        self.backend_seconds = Histogram(
            "gateway_backend_seconds",
            "Time of each backend call, to its last chunk (or its failure), by backend.",
            ["backend"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
        )
        self.backend_first_chunk = Histogram(
            "gateway_backend_time_to_first_token_seconds",
            "Time from a backend call to its first chunk (its first token, or its whole answer), by backend.",
            ["backend"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.backend_errors = Counter(
            "gateway_backend_errors_total",
            "Backend calls that failed, by backend and kind (timeout, connect, disconnect, status_4xx, "
            "status_5xx, rate_limited, auth, stream_error, malformed, too_large).",
            ["backend", "kind"],
            registry=self.registry,
        )
        self.streams_open = Gauge(
            "gateway_streams_open",
            "Server-sent-event streams open now (server.max_streams caps each process).",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.background_running = Gauge(
            "gateway_background_running",
            "Background responses queued or running in the gateway's processes now.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.background_started = Counter(
            "gateway_background_started_total",
            "Background responses accepted (queued).",
            registry=self.registry,
        )
        self.background_finished = Counter(
            "gateway_background_finished_total",
            "Background responses that ended, by final status (completed, incomplete, failed, cancelled).",
            ["status"],
            registry=self.registry,
        )

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one HTTP request and record its duration."""
        children = self._children.get((route, method, status))
        if children is None:
            children = (self.requests.labels(route, method, str(status)), self.latency.labels(route))
            self._children[route, method, status] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """The exposition text: this process's registry, or the sum over all workers' files."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        combined = CollectorRegistry()
        multiprocess.MultiProcessCollector(combined, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(combined), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Counts and times every HTTP request (status taken from the response start)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status: list[int] = [500]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.observe_request(
                route_of(scope["path"]), scope["method"], status[0], time.perf_counter() - start
            )


class BackendMeter:
    """Feeds the backend instruments from `HTTPUpstream.stream_chat` (its `CallMeter`): call time, time
    to the first chunk, and failures by kind (a cancelled call, whose client left, is no failure)."""

    def __init__(self, metrics: Metrics, error_kind: Callable[[BaseException], str]) -> None:
        self._metrics = metrics
        self._error_kind = error_kind
        self._children: dict[str, tuple[Any, Any]] = {}

    def _of(self, backend: str) -> tuple[Any, Any]:
        children = self._children.get(backend)
        if children is None:
            m = self._metrics
            children = (m.backend_seconds.labels(backend), m.backend_first_chunk.labels(backend))
            self._children[backend] = children
        return children

    def first_chunk(self, backend: str, seconds: float) -> None:
        self._of(backend)[1].observe(seconds)

    def ended(self, backend: str, seconds: float, error: BaseException | None) -> None:
        self._of(backend)[0].observe(seconds)
        if error is not None and not isinstance(error, asyncio.CancelledError):
            self._metrics.backend_errors.labels(backend, self._error_kind(error)).inc()
