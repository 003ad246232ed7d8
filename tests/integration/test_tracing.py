"""OpenTelemetry tracing on a real gateway over the echo backend, its spans caught by the SDK's
InMemorySpanExporter: a SERVER span per request continuing the caller's trace, child spans for the
store calls and the backend call; with tracing off, neither the gateway's tracing module nor the
SDK's tracing or exporters are even imported."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import openai
import pytest
import uvicorn
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from responses_gateway.app import create_app
from responses_gateway.config import Settings
from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import gateway_settings, serving

ROOT = Path(__file__).resolve().parents[2]
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


def _settings(echo: EchoBackend, sample_ratio: float = 1.0) -> Settings:
    base = gateway_settings(echo.base_url)
    tracing = base.tracing.model_copy(update={"enabled": True, "sample_ratio": sample_ratio})
    return base.model_copy(update={"tracing": tracing})


def _serve(settings: Settings, exporter: InMemorySpanExporter) -> Iterator[str]:
    app = create_app(settings, span_exporter=exporter)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", loop="asyncio")
    with serving(config) as (_, root):
        yield root


@pytest.fixture
def traced(echo: EchoBackend) -> Iterator[tuple[str, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    for root in _serve(_settings(echo), exporter):
        yield root, exporter


def _spans(exporter: InMemorySpanExporter, servers: int) -> Sequence[ReadableSpan]:
    """The finished spans once `servers` request spans have ended (a request's span ends just after
    its answer was sent)."""
    deadline = time.monotonic() + 10
    while True:
        spans = exporter.get_finished_spans()
        if sum(s.kind == SpanKind.SERVER for s in spans) >= servers or time.monotonic() > deadline:
            return spans
        time.sleep(0.02)


def _children(spans: Sequence[ReadableSpan], parent: ReadableSpan) -> list[str]:
    assert parent.context is not None
    return sorted(
        s.name for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id
    )


def test_request_store_and_backend_spans(traced: tuple[str, InMemorySpanExporter]) -> None:
    root, exporter = traced
    client = openai.OpenAI(base_url=f"{root}/v1", api_key="unused", max_retries=0)
    first = client.responses.create(model="m1", input="one")
    second = client.responses.create(
        model="m1",
        input="two",
        previous_response_id=first.id,
        extra_headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01", "X-Request-Id": "trace-2"},
    )
    spans = _spans(exporter, 2)
    servers = [s for s in spans if s.kind == SpanKind.SERVER]
    assert [s.name for s in servers] == ["POST /v1/responses", "POST /v1/responses"]
    chained = servers[1]
    assert chained.context is not None and chained.parent is not None
    assert f"{chained.context.trace_id:032x}" == TRACE_ID  # the caller's trace, continued
    assert f"{chained.parent.span_id:016x}" == PARENT_ID
    attributes = dict(chained.attributes or {})
    assert attributes["http.response.status_code"] == 200
    assert attributes["gateway.request_id"] == "trace-2"
    assert (
        attributes["gateway.response_id"],
        attributes["gateway.model"],
        attributes["gateway.backend"],
    ) == (
        second.id,
        "m1",
        "echo",
    )
    assert _children(spans, chained) == ["backend chat.completions", "store get_history", "store put"]
    assert _children(spans, servers[0]) == ["backend chat.completions", "store put"]
    backend = next(s for s in spans if s.name == "backend chat.completions" and s.parent == chained.context)
    assert dict(backend.attributes or {})["gateway.response_id"] == second.id
    store = next(s for s in spans if s.name == "store get_history")
    assert dict(store.attributes or {})["gateway.store.backend"] == "memory"
    assert store.resource.attributes["service.name"] == "responses-gateway"


def test_a_backend_failure_is_an_error_span(traced: tuple[str, InMemorySpanExporter]) -> None:
    root, exporter = traced
    answer = httpx.post(f"{root}/v1/responses", json={"model": "m1", "input": "[fail:500]"})
    assert answer.status_code == 502
    missing = httpx.get(f"{root}/v1/responses/resp_unknown")
    assert missing.status_code == 404
    spans = _spans(exporter, 2)
    server = next(s for s in spans if s.kind == SpanKind.SERVER and s.name == "POST /v1/responses")
    assert server.status.status_code == StatusCode.ERROR
    assert dict(server.attributes or {})["http.response.status_code"] == 502
    (backend,) = [s for s in spans if s.name == "backend chat.completions"]
    assert backend.status.status_code == StatusCode.ERROR
    assert dict(backend.attributes or {})["gateway.backend.error"] == "status_5xx"
    get = next(s for s in spans if s.kind == SpanKind.SERVER and s.name == "GET /v1/responses/{id}")
    assert get.status.status_code != StatusCode.ERROR  # a 404 is the client's error, not ours


def test_sample_ratio_zero_exports_nothing(echo: EchoBackend) -> None:
    exporter = InMemorySpanExporter()
    for root in _serve(_settings(echo, sample_ratio=0.0), exporter):
        assert httpx.post(f"{root}/v1/responses", json={"model": "m", "input": "x"}).status_code == 200
        sampled = httpx.post(
            f"{root}/v1/responses",
            json={"model": "m", "input": "y"},
            headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},  # the caller sampled it: followed
        )
        assert sampled.status_code == 200
        spans = _spans(exporter, 1)
    assert {f"{s.context.trace_id:032x}" for s in spans if s.context is not None} == {TRACE_ID}


_OFF = """
import json, sys
from starlette.testclient import TestClient
from responses_gateway.app import create_app
from responses_gateway.config import settings_from_dict
settings = settings_from_dict({"backends": [{"name": "b", "base_url": sys.argv[1], "models": ["*"]}],
                               "response_api": {"store_backend": "memory"}})
with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
    statuses = [client.post("/v1/responses", json={"model": "m", "input": "x"}).status_code,
                client.get("/v1/responses/resp_x").status_code]
ours = ("responses_gateway.tracing", "opentelemetry.sdk.trace", "opentelemetry.exporter")
print(json.dumps({"statuses": statuses, "loaded": sorted(m for m in sys.modules if m.startswith(ours))}))
"""


def test_tracing_off_imports_nothing(echo: EchoBackend) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _OFF, echo.base_url], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    # (redis-py 8 imports opentelemetry.sdk.metrics by itself when the SDK is installed: not ours)
    assert result == {"statuses": [200, 404], "loaded": []}


_MISSING = """
import sys
sys.modules["opentelemetry.sdk"] = None  # as when the tracing extra is not installed
from responses_gateway.app import create_app
from responses_gateway.config import settings_from_dict
from responses_gateway.errors import ConfigError
backend = {"name": "b", "base_url": "http://127.0.0.1:9/v1", "models": ["*"]}
settings = settings_from_dict({"backends": [backend], "tracing": {"enabled": True}})
try:
    create_app(settings)
except ConfigError as exc:
    print(exc)
"""


def test_tracing_without_the_sdk_is_a_config_error() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _MISSING], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(
        "tracing.enabled: the OpenTelemetry SDK and its OTLP exporter are not installed"
    )
    assert "pip install 'responses-gateway[tracing]'" in out.stdout
