"""Prometheus instruments, defined once on a registry of their own, and the ASGI middleware feeding them.

Under `serve --workers N` every worker writes its values to files in a shared directory (prometheus_client's
multiprocess mode) and /metrics, on any worker, renders the sum over all of them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
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
