"""The operations metrics on a real gateway over the echo backend, read from its /metrics: backend
latency, time to first token and errors by kind, store round trips per request, chain depth, open
streams and background work; Redis retries after a restart of the Redis server."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway, gateway_settings, run_gateway
from tests.support.redis_servers import start_standalone


def scrape(gw: Gateway) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics: (name, sorted labels) -> value."""
    text = httpx.get(f"{gw.root_url}/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def gateway(echo: EchoBackend) -> Iterator[Gateway]:
    with run_gateway(gateway_settings(echo.base_url)) as gw:
        yield gw


def test_backend_store_and_stream_metrics(gateway: Gateway) -> None:
    client = openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0)
    first = client.responses.create(model="m", input="one")
    second = client.responses.create(model="m", input="two", previous_response_id=first.id)
    client.responses.create(model="m", input="three", previous_response_id=second.id)
    with client.responses.create(model="m", input="[slow:200] a b c", stream=True) as stream:
        mid = scrape(gateway)
        events = list(stream)
    assert events[-1].type == "response.completed"
    for directive, kind in (
        ("[fail:500]", "status_5xx"),
        ("[fail:400]", "status_4xx"),
        ("[bad-chunk] one two three", "malformed"),
    ):
        with pytest.raises(openai.APIStatusError):
            client.responses.create(model="m", input=directive)
        samples = scrape(gateway)
        assert value(samples, "gateway_backend_errors_total", backend="echo", kind=kind) == 1, kind

    assert value(mid, "gateway_streams_open") == 1
    assert value(samples, "gateway_streams_open") == 0
    assert value(samples, "gateway_backend_seconds_count", backend="echo") == 7
    # the bad chunk came after the first: 5 first chunks
    assert value(samples, "gateway_backend_time_to_first_token_seconds_count", backend="echo") == 5
    assert value(samples, "gateway_backend_seconds_sum", backend="echo") > 0
    # depths 1 and 2 were read: a history of one turn, then of two
    assert value(samples, "gateway_chain_depth_count") == 2
    assert value(samples, "gateway_chain_depth_sum") == 3
    assert value(samples, "gateway_chain_depth_bucket", le="1.0") == 1
    # per create: 1 (the write), 2 (history + write) twice, 1 (the stream), 0 for an error status,
    # 1 for the bad chunk (the response is stored as failed)
    assert value(samples, "gateway_store_round_trips_total", route="/v1/responses") == 7


def test_background_metrics(gateway: Gateway) -> None:
    client = openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0)
    done = client.responses.create(model="m", input="hi", background=True)
    slow = client.responses.create(model="m", input="[slow:200] a b c d e f g h", background=True)
    failing = client.responses.create(model="m", input="[fail:500]", background=True)
    running = scrape(gateway)
    client.responses.cancel(slow.id)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        states = [client.responses.retrieve(r.id).status for r in (done, slow, failing)]
        samples = scrape(gateway)
        if value(samples, "gateway_background_running") == 0 and "queued" not in states:
            break
        time.sleep(0.1)
    assert states == ["completed", "cancelled", "failed"]
    assert value(running, "gateway_background_running") >= 1
    assert value(samples, "gateway_background_started_total") == 3
    for status in ("completed", "cancelled", "failed"):
        assert value(samples, "gateway_background_finished_total", status=status) == 1, status


@pytest.mark.redis
def test_redis_round_trips_and_retries(
    echo: EchoBackend, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    node = start_standalone(tmp_path)  # its own server: this test stops it
    try:
        store = {"store_backend": "redis", "redis": {"address": node.address, "key_prefix": "obs:"}}
        with run_gateway(gateway_settings(echo.base_url, store)) as gw:
            client = openai.OpenAI(base_url=gw.base_url, api_key="unused", max_retries=0)
            first = client.responses.create(model="m", input="one")
            client.responses.create(model="m", input="two", previous_response_id=first.id)
            samples = scrape(gw)
            # Redis: one round trip to write a turn; one to read a history, one to write the next turn
            assert value(samples, "gateway_store_round_trips_total", route="/v1/responses") == 3
            assert value(samples, "gateway_store_retries_total", op="get") == 0
            node.kill()
            with pytest.raises(openai.APIStatusError) as caught:
                client.responses.retrieve(first.id)  # every attempt fails: retried, then a 503
            assert caught.value.status_code == 503
            samples = scrape(gw)
            warnings = [
                r for r in caplog.records if r.levelno >= logging.WARNING and "store" in r.getMessage()
            ]
            assert len(warnings) == 1, [r.getMessage() for r in warnings]  # the store failure, once
    finally:
        node.stop()
    assert value(samples, "gateway_store_retries_total", op="get") >= 1
    assert value(samples, "gateway_store_errors_total", op="get") == 1
