"""The app under generated requests: from the Open Responses OpenAPI document
(`/work/shared/data/open-responses-openapi.json`, copied to tests/fuzz/data), from msgspec's schema
of our own request types, and both mutated. A real gateway over a real echo backend process: no
answer may be a 5xx other than 502/503/504 (a backend or store failing), and every error is the
OpenAI envelope. Bounded: a fixed number of examples, derandomized, so CI is stable and quick."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from responses_gateway.protocol.request import CreateRequest
from tests.fuzz.schema import ANY_JSON, TEXT, SchemaStrategies
from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway, gateway_settings, run_gateway

OPEN_RESPONSES = json.loads((Path(__file__).parent / "data" / "open-responses-openapi.json").read_text())
OURS = msgspec.json.schema(CreateRequest)
ALLOWED_5XX = {502, 503, 504}
FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


@pytest.fixture(scope="module")
def gw(echo_backend: EchoBackend) -> Iterator[Gateway]:
    with run_gateway(gateway_settings(echo_backend.base_url)) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def http(gw: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gw.base_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def stored_id(http: httpx.Client) -> str:
    created = http.post("/responses", json={"model": "m", "input": "seed"})
    assert created.status_code == 200, created.text
    rid: str = created.json()["id"]
    return rid


def _check(resp: httpx.Response) -> None:
    assert resp.status_code < 500 or resp.status_code in ALLOWED_5XX, (resp.status_code, resp.text[:2000])
    if resp.status_code >= 400:
        error = resp.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and isinstance(error["message"], str)
        assert len(error["message"]) < 1000  # echoes are cut short


def _post(http: httpx.Client, body: Any) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    with http.stream(
        "POST", "/responses", content=content, headers={"content-type": "application/json"}
    ) as resp:
        resp.read()  # the whole body, SSE included
        _check(resp)
        if resp.headers.get("content-type", "").startswith("text/event-stream"):
            lines = resp.text.split("\n")  # not splitlines(): it also splits at U+0085 inside the JSON
            events = [json.loads(x[6:]) for x in lines if x.startswith("data: ")]
            assert events and events[-1]["type"] in (
                "response.completed",
                "response.incomplete",
                "response.failed",
                "error",
            )


def _bodies(root: dict[str, Any], ref: str) -> st.SearchStrategy[dict[str, Any]]:
    generated = SchemaStrategies(root).for_ref(ref).filter(lambda b: isinstance(b, dict))
    # half of them with a model the backend serves and no stream, so they go deep
    return generated | generated.map(lambda b: {**b, "model": "m", "stream": bool(b.get("stream"))})


@st.composite
def _mutated(draw: st.DrawFn, bodies: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    body = dict(draw(bodies))
    key = draw(st.sampled_from([*body, "input", "tools", "metadata", "previous_response_id"]))
    body[key] = draw(ANY_JSON)
    return body


OPEN_BODIES = _bodies(OPEN_RESPONSES, "#/components/schemas/CreateResponseBody")
OUR_BODIES = _bodies(OURS, "#/$defs/CreateRequest")


@FUZZ
@given(body=OPEN_BODIES)
def test_open_responses_schema_requests(http: httpx.Client, body: dict[str, Any]) -> None:
    _post(http, body)


@FUZZ
@given(body=OUR_BODIES)
def test_our_own_item_types(http: httpx.Client, body: dict[str, Any]) -> None:
    _post(http, body)


@FUZZ
@given(body=_mutated(OPEN_BODIES | OUR_BODIES) | ANY_JSON | st.binary(max_size=64))
def test_mutated_and_arbitrary_bodies(http: httpx.Client, body: Any) -> None:
    _post(http, body)


@settings(FUZZ, max_examples=100)
@given(
    rid=TEXT | st.just("STORED"),
    after=st.none() | TEXT,
    limit=st.none() | TEXT | st.integers().map(str),
    order=st.none() | st.sampled_from(["asc", "desc"]) | TEXT,
    chain=st.booleans(),
)
def test_ids_and_queries(
    http: httpx.Client,
    stored_id: str,
    rid: str,
    after: str | None,
    limit: str | None,
    order: str | None,
    chain: bool,
) -> None:
    rid = stored_id if rid == "STORED" else rid
    path = f"/responses/{quote(rid, safe='')}"
    params = {k: v for k, v in {"after": after, "limit": limit, "order": order}.items() if v is not None}
    for resp in (
        http.get(path, params={"stream": order} if order else None),
        http.get(f"{path}/input_items", params=params),
    ):
        _check(resp)
    if chain:
        _post(
            http,
            {"model": "m", "input": [{"type": "item_reference", "id": rid}], "previous_response_id": rid},
        )
    if rid != stored_id:
        _check(http.delete(path))
