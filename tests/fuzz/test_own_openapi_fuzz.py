"""The gateway under requests generated from its own OpenAPI document (`GET /openapi.json`).

A real gateway (in-process, auth on, two tenants, /metrics behind its own key) over the real echo
backend process. The document is fetched from the running gateway; for every operation in it,
requests are drawn from its parameters and request body schema (`tests/fuzz/schema.py`): response
ids that are the tenant's own, the other tenant's, unknown but well-formed, and garbage; query values
from their schemas or any text; bodies from the schema, made to go deep (a served model), mutated,
or arbitrary; with a valid key, another tenant's, a wrong one or none. Every answer must be:
- never a 5xx other than 502/503/504;
- a status the document lists for the operation (a garbage id that routes elsewhere may get 404/405);
- on an error, the OpenAI envelope `{error: {message, type, param, code}}`;
- on success, of a media type the document lists, and valid against the document's own schema
  (`Response` for create and retrieve; each streamed event against `ResponseStreamEvent`);
- without a valid key on a route that needs one, a 401; with another tenant's id, never a success.
Bounded: derandomized, a fixed number of examples per operation (about 20 s in all).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from responses_gateway.api.openapi import CONVERSATION_ID_PATTERN, OPERATIONS, RESPONSE_ID_PATTERN
from responses_gateway.config import settings_from_dict
from tests.fuzz.schema import ANY_JSON, TEXT, SchemaStrategies
from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway, run_gateway
from tests.support.tenants import KEY_A, KEY_B, auth_block

ALLOWED_5XX = {502, 503, 504}
METRICS_KEY = "metrics-key-0123456789abcdef"
WRONG_KEY = "rgw-not-a-key-of-this-gateway-0000"
KEYS = {"team-a": KEY_A, "team-b": KEY_B, "wrong": WRONG_KEY, "metrics": METRICS_KEY}
OTHER = {"team-a": "team-b", "team-b": "team-a"}
# Echo backend directives (tests/support/echo_backend.py) that make it fail or answer oddly, quickly.
DIRECTIVES = ["[fail:500]", "[fail:422]", "[fail:429]", "[bad-usage:list]", "[bad-chunk]", "[die-mid-stream]"]
FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
EXAMPLES = {"createResponse": 90, "createChatCompletion": 50}
GARBAGE_IDS = st.sampled_from(
    ["", ".", "..", "a/b", "resp_", "resp_" + "0" * 47 + "g", "%00", " ", "resp_\n"]
)


@dataclass
class World:
    """The running gateway, its document, and what each tenant stored."""

    http: httpx.Client
    doc: dict[str, Any]
    ids: dict[str, list[str]]  # tenant -> stored response ids
    items: dict[str, list[str]]  # tenant -> their item ids
    conversations: dict[str, tuple[str, str]]  # tenant -> (a conversation id, the id of its item)
    validators: dict[str, jsonschema.Draft202012Validator] = field(default_factory=dict)

    def validate(self, schema: dict[str, Any], instance: Any) -> None:
        key = json.dumps(schema, sort_keys=True)
        validator = self.validators.get(key)
        if validator is None:
            validator = jsonschema.Draft202012Validator({**schema, "components": self.doc["components"]})
            self.validators[key] = validator
        validator.validate(instance)


@pytest.fixture(scope="module")
def gw(echo_backend: EchoBackend) -> Iterator[Gateway]:
    config = settings_from_dict(
        {
            "backends": [
                {"name": "echo", "base_url": echo_backend.base_url, "models": ["*"], "timeout_seconds": 10}
            ],
            "response_api": {"store_backend": "memory"},
            "auth": auth_block(metrics_key=METRICS_KEY),
        }
    )
    with run_gateway(config) as gateway:
        yield gateway


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def world(gw: Gateway) -> Iterator[World]:
    with httpx.Client(base_url=gw.root_url, timeout=30) as http:
        served = http.get("/openapi.json")  # open: no key
        assert served.status_code == 200 and served.headers["content-type"] == "application/json"
        doc = served.json()
        ids: dict[str, list[str]] = {}
        items: dict[str, list[str]] = {}
        for tenant in ("team-a", "team-b"):
            first = _create(http, tenant, [{"type": "message", "role": "user", "content": "one"}, "two"])
            second = _create(http, tenant, ["three"], previous_response_id=first)
            ids[tenant] = [first, second]
            page = http.get(f"/v1/responses/{second}/input_items", headers=_bearer(KEYS[tenant]))
            assert page.status_code == 200, page.text
            items[tenant] = [item["id"] for item in page.json()["data"]]
        conversations = {tenant: _conversation(http, tenant) for tenant in ("team-a", "team-b")}
        yield World(http, doc, ids, items, conversations)


def _conversation(http: httpx.Client, tenant: str) -> tuple[str, str]:
    """A new conversation of `tenant` with one item: (its id, the item's id)."""
    created = http.post(
        "/v1/conversations",
        json={"items": [{"role": "user", "content": "hi"}]},
        headers=_bearer(KEYS[tenant]),
    )
    assert created.status_code == 200, created.text
    cid: str = created.json()["id"]
    page = http.get(f"/v1/conversations/{cid}/items", headers=_bearer(KEYS[tenant]))
    assert page.status_code == 200, page.text
    return cid, page.json()["data"][0]["id"]


def _create(http: httpx.Client, tenant: str, inputs: list[Any], **extra: Any) -> str:
    items = [x if isinstance(x, dict) else {"role": "user", "content": x} for x in inputs]
    created = http.post(
        "/v1/responses", json={"model": "m", "input": items, **extra}, headers=_bearer(KEYS[tenant])
    )
    assert created.status_code == 200, created.text
    rid: str = created.json()["id"]
    return rid


@dataclass
class Drawn:
    """One generated request and what the checks need to know about it."""

    method: str
    path: str
    who: str | None  # a key of KEYS, or None for no Authorization
    params: list[tuple[str, str]] = field(default_factory=list)
    content: bytes | None = None
    content_type: str | None = None
    id_kind: str | None = None  # own, other, unknown, garbage (the response_id path parameter)
    id_value: str | None = None
    ids: dict[str, str] = field(default_factory=dict)  # path parameter -> the id drawn for it


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


@st.composite
def _id(
    draw: st.DrawFn, world: World, tenant: str, schema: dict[str, Any], name: str = "response_id"
) -> tuple[str, str]:
    """A response, conversation or conversation item id (by the parameter's `name`): the tenant's
    own, the other tenant's, unknown but well-formed, from the parameter's schema (its pattern, or any
    text), or garbage."""
    kind = draw(st.sampled_from(["own", "own", "other", "unknown", "schema", "garbage"]))
    if kind in ("own", "other"):
        owner = tenant if kind == "own" else OTHER[tenant]
        if name == "conversation_id":
            return kind, world.conversations[owner][0]
        if name == "item_id":
            return kind, world.conversations[owner][1]
        return kind, draw(st.sampled_from(world.ids[owner]))
    if kind == "unknown":
        if name == "item_id":
            return kind, "msg_" + draw(st.from_regex(r"[0-9a-f]{48}", fullmatch=True))
        pattern = CONVERSATION_ID_PATTERN if name == "conversation_id" else RESPONSE_ID_PATTERN
        return kind, draw(st.from_regex(pattern, fullmatch=True))
    if kind == "schema":
        return kind, draw(SchemaStrategies(world.doc, patterns=True).build(schema, 0))
    return kind, draw(GARBAGE_IDS | TEXT)


@st.composite
def _body(draw: st.DrawFn, world: World, operation_id: str, schema: dict[str, Any], tenant: str) -> Any:
    generated = draw(SchemaStrategies(world.doc, patterns=True).build(schema, 0))
    shape = draw(st.sampled_from(["deep", "deep", "deep", "schema", "mutated", "any", "bytes"]))
    if shape == "any":
        return draw(ANY_JSON)
    if shape == "bytes":
        return draw(st.binary(max_size=64))
    body = dict(generated) if isinstance(generated, dict) else {}
    stream = draw(st.booleans())
    if shape == "deep" and operation_id == "createChatCompletion":
        text = draw(TEXT | st.sampled_from(DIRECTIVES))
        return {"model": "m", "messages": [{"role": "user", "content": text}], "stream": stream}
    if shape in ("deep", "mutated"):
        body.update(model="m", stream=stream)
    if shape == "deep":  # without the fields that are always a 400, so more of them go to the backend
        for unsupported in ("conversation", "prompt", "background"):
            body.pop(unsupported, None)
    if shape == "mutated":
        key = draw(st.sampled_from([*body, "input", "tools", "metadata", "previous_response_id", "model"]))
        pool = world.ids[tenant] + world.ids[OTHER[tenant]] + world.items[tenant] + world.items[OTHER[tenant]]
        body[key] = draw(ANY_JSON | st.sampled_from(pool) | st.sampled_from(DIRECTIVES))
        if draw(st.booleans()):  # chain on a stored response, or reference one of its items
            ref = draw(st.sampled_from(pool))
            body["previous_response_id" if ref.startswith("resp_") else "input"] = (
                ref if ref.startswith("resp_") else [{"type": "item_reference", "id": ref}]
            )
    if operation_id == "createResponse" and shape == "deep" and draw(st.booleans()):
        body["input"] = draw(st.sampled_from(DIRECTIVES)) + draw(TEXT)
    return body


@st.composite
def _request(draw: st.DrawFn, world: World, method: str, path: str) -> Drawn:
    op = world.doc["paths"][path][method.lower()]
    keyed = draw(st.integers(0, 4)) > 0  # four in five with a tenant's key
    who = draw(st.sampled_from(["team-a", "team-b"] if keyed else [None, "wrong", "metrics"]))
    tenant = who if who in OTHER else "team-a"
    drawn = Drawn(method, path, who)
    strategies = SchemaStrategies(world.doc, patterns=True)
    for param in op.get("parameters", []):
        name = param["name"]
        if param["in"] == "path":
            kind, value = draw(_id(world, tenant, param["schema"], name))
            if drawn.id_kind in (None, "own"):  # several ids: the first that is not the tenant's own
                drawn.id_kind = kind
            drawn.id_value = value
            drawn.ids[name] = value
            drawn.path = drawn.path.replace("{" + name + "}", quote(value, safe=""))
            continue
        value = draw(st.none() | st.none() | strategies.build(param["schema"], 0) | TEXT)
        if value is None:
            continue
        for v in value if isinstance(value, list) else [value]:
            drawn.params.append((name, _query_value(v)))
    if "requestBody" in op:
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        body = draw(_body(world, op["operationId"], schema, tenant))
        drawn.content = body if isinstance(body, bytes) else json.dumps(body).encode()
        drawn.content_type = draw(st.sampled_from(["application/json"] * 8 + ["text/plain", None]))
    return drawn


def _routed_elsewhere(drawn: Drawn) -> bool:
    """An id that the URL turns into another path (a slash, an empty or dot segment)."""
    return any(_routes_elsewhere(value) for value in drawn.ids.values())


def _routes_elsewhere(value: str) -> bool:
    return value in ("", ".", "..") or "/" in value


def _send(world: World, drawn: Drawn) -> tuple[httpx.Response, bytes]:
    headers = _bearer(KEYS[drawn.who]) if drawn.who is not None else {}
    if drawn.content_type is not None:
        headers["Content-Type"] = drawn.content_type
    with world.http.stream(
        drawn.method, drawn.path, params=drawn.params, content=drawn.content, headers=headers
    ) as resp:
        return resp, resp.read()


def _check(world: World, op: dict[str, Any], drawn: Drawn, resp: httpx.Response, raw: bytes) -> None:
    status = resp.status_code
    what = (drawn.method, drawn.path, drawn.params, drawn.who, status, raw[:1500])
    assert status < 500 or status in ALLOWED_5XX, what
    responses = op["responses"]
    # the 4XX range is only for a backend's own status, passed on (its message names the backend)
    documented = str(status) in responses or (f"{status // 100}XX" in responses and b"Backend '" in raw)
    assert documented or (_routed_elsewhere(drawn) and status in (307, 404, 405)), what
    media = resp.headers.get("content-type", "").split(";")[0].strip()
    if status >= 400 and not (drawn.path == "/ready" and status == 503):
        assert media == "application/json", what
        error = json.loads(raw)["error"]
        assert set(error) == {"message", "type", "param", "code"}, what
        assert isinstance(error["message"], str) and len(error["message"]) < 1000, what
        assert all(error[k] is None or isinstance(error[k], str) for k in ("type", "param", "code")), what
    elif (documented and 200 <= status < 300) or drawn.path == "/ready":
        content = responses[str(status)]["content"]
        assert media in content, what
        if media == "application/json":
            world.validate(content[media]["schema"], json.loads(raw))
        elif media == "text/event-stream" and op["operationId"] == "createResponse":
            _check_events(world, raw, what)
    security = op["security"]
    keyed = drawn.who in OTHER
    if security == [{"apiKey": []}] and not keyed:
        assert status == 401, what
        if drawn.who is not None:
            assert json.loads(raw)["error"]["code"] == "invalid_api_key", what
    if security == [{"metricsKey": []}]:
        assert (status == 200) == (drawn.who == "metrics"), what
    if drawn.id_kind == "other" and keyed:
        # another tenant's object: as unknown (or the edge's answer about the body, before any look-up)
        assert status in (400, 404, 408, 413, 415), what
    if drawn.id_kind == "own" and keyed and drawn.method == "GET" and not drawn.params:
        assert status == 200, what


def _check_events(world: World, raw: bytes, what: Any) -> None:
    # SSE lines end with \r\n, \n or \r only (str.splitlines would also split inside the JSON, at U+0085)
    lines = re.split(r"\r\n|\r|\n", raw.decode())
    events = [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
    assert events, what
    for event in events:
        world.validate({"$ref": "#/components/schemas/ResponseStreamEvent"}, event)
    last = events[-1]
    assert last["type"] in ("response.completed", "response.incomplete", "response.failed", "error"), what
    if "response" in last:
        world.validate({"$ref": "#/components/schemas/Response"}, last["response"])


def test_the_served_document_has_every_operation(world: World) -> None:
    served = {(m.upper(), p) for p, item in world.doc["paths"].items() for m in item}
    assert served == {(op.method, op.path) for op in OPERATIONS}


def test_delete_then_get_own_response(world: World) -> None:
    """DELETE is fuzzed on the stored ids too; a fresh one shows the whole path succeeds."""
    rid = _create(world.http, "team-b", ["to delete"])
    assert world.http.delete(f"/v1/responses/{rid}", headers=_bearer(KEY_A)).status_code == 404
    deleted = world.http.delete(f"/v1/responses/{rid}", headers=_bearer(KEY_B))
    assert deleted.status_code == 200
    world.validate({"$ref": "#/components/schemas/Deleted"}, deleted.json())
    assert world.http.get(f"/v1/responses/{rid}", headers=_bearer(KEY_B)).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "operation_id"), [(o.method, o.path, o.operation_id) for o in OPERATIONS]
)
def test_every_operation(world: World, method: str, path: str, operation_id: str) -> None:
    op = world.doc["paths"][path][method.lower()]
    assert op["operationId"] == operation_id

    @settings(FUZZ, max_examples=EXAMPLES.get(operation_id, FUZZ.max_examples))
    @given(drawn=_request(world, method, path))
    def run(drawn: Drawn) -> None:
        if drawn.method == "DELETE" and drawn.id_kind == "own":  # keep the stored ids: delete a fresh one
            tenant = drawn.who if drawn.who in OTHER else "team-a"
            if "conversation_id" in drawn.ids:
                cid, item = _conversation(world.http, tenant)
                drawn.path = path.replace("{conversation_id}", cid).replace("{item_id}", item)
            else:
                fresh = _create(world.http, tenant, ["fresh"])
                drawn.path = drawn.path.replace(quote(drawn.id_value or "", safe=""), fresh)
        resp, raw = _send(world, drawn)
        _check(world, op, drawn, resp, raw)

    run()
