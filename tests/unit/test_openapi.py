"""The gateway's own OpenAPI document (`api/openapi.py`): it matches the routes, its schemas are valid
JSON Schema (2020-12, as OpenAPI 3.1 wants) with every reference resolving, and it says which keys
the configuration requires."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import msgspec
import pytest
from starlette.routing import Route

from responses_gateway.api.openapi import build_document, openapi_json
from responses_gateway.api.routes import ROUTES
from responses_gateway.protocol.response import Response

DOC = build_document(api_keys=True, metrics_key=True)
METHODS = {"get", "post", "delete", "put", "patch"}


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_route_is_documented_and_nothing_else() -> None:
    routes = {
        (r.path, m.lower())
        for r in ROUTES
        if isinstance(r, Route) and r.path != "/openapi.json"
        for m in (r.methods or ())
        if m != "HEAD"
    }
    documented = {(path, m) for path, item in DOC["paths"].items() for m in item if m in METHODS}
    assert routes == documented
    assert any(r.path == "/openapi.json" for r in ROUTES if isinstance(r, Route))


def test_schemas_are_valid_and_every_reference_resolves() -> None:
    assert DOC["openapi"].startswith("3.1")
    schemas = DOC["components"]["schemas"]
    for schema in schemas.values():
        jsonschema.Draft202012Validator.check_schema(schema)
    prefix = "#/components/schemas/"
    for ref in _refs(DOC):
        assert ref.startswith(prefix) and ref[len(prefix) :] in schemas, ref
    for name in ("CreateRequest", "Response", "Deleted", "ItemPage", "ErrorResponse", "ResponseStreamEvent"):
        assert name in schemas


def test_path_parameters_match_the_paths() -> None:
    for path, item in DOC["paths"].items():
        for method, op in item.items():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == {seg[1:-1] for seg in path.split("/") if seg.startswith("{")}, (method, path)
            assert op["responses"], (method, path)
            for status, answer in op["responses"].items():
                if int(status[0]) >= 4 and (path, status) != ("/ready", "503"):  # /ready: its own shape
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (method, path, status)


def test_a_real_response_validates_against_its_own_schema() -> None:
    validator = jsonschema.Draft202012Validator(
        {"$ref": "#/components/schemas/Response", "components": DOC["components"]}
    )
    raw = {"id": "resp_" + "0" * 48, "created_at": 1, "model": "m", "output": [], "reasoning": {}}
    response = msgspec.convert({**raw, "text": {}, "tools": [], "metadata": {}}, Response)
    encoded = json.loads(msgspec.json.encode(response))  # the Struct's defaults fill the rest
    validator.validate(encoded)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({**encoded, "status": "nope"})


@pytest.mark.parametrize(
    ("api_keys", "metrics_key", "v1", "metrics"),
    [
        (True, True, [{"apiKey": []}], [{"metricsKey": []}]),
        (False, False, [{}, {"apiKey": []}], []),
    ],
)
def test_security_follows_the_configuration(
    api_keys: bool, metrics_key: bool, v1: list[Any], metrics: list[Any]
) -> None:
    doc = json.loads(openapi_json(api_keys=api_keys, metrics_key=metrics_key))
    assert doc["paths"]["/v1/responses"]["post"]["security"] == v1
    assert doc["paths"]["/v1/models"]["get"]["security"] == v1
    assert doc["paths"]["/metrics"]["get"]["security"] == metrics
    assert doc["paths"]["/health"]["get"]["security"] == []
    assert doc["paths"]["/ready"]["get"]["security"] == []
    assert openapi_json(api_keys=api_keys, metrics_key=metrics_key) is openapi_json(
        api_keys=api_keys, metrics_key=metrics_key
    )  # built once
