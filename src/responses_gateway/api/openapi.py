"""The gateway's own OpenAPI 3.1 document, served at `GET /openapi.json`.

Generated, not written by hand: the schemas come from the msgspec wire types (`protocol/`, and the
item page of `service.py`) through `msgspec.json.schema_components`, the paths from `OPERATIONS`
below, one entry per route of `routes.ROUTES` (a unit test keeps the two equal). Which operations
need a key depends on the configuration (`auth.api_keys`, `auth.metrics_key`), so there is one
document per combination, each built once (`openapi_json`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

import msgspec
import orjson

from responses_gateway import __version__
from responses_gateway.protocol.compaction import CompactedResponse, CompactRequest, InputTokenCount
from responses_gateway.protocol.conversations import (
    AddItems,
    Conversation,
    ConversationDeleted,
    ConversationItemList,
    CreateConversation,
    UpdateConversation,
)
from responses_gateway.protocol.events import Event
from responses_gateway.protocol.request import CreateRequest
from responses_gateway.protocol.response import Deleted, Response
from responses_gateway.service import ItemPage

Schema = dict[str, Any]
REF = "#/components/schemas/{name}"
RESPONSE_ID_PATTERN = "^resp_[0-9a-f]{48}$"
CONVERSATION_ID_PATTERN = "^conv_[0-9a-f]{48}$"


class ErrorObject(msgspec.Struct):
    """The fields of an OpenAI error."""

    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(msgspec.Struct):
    """Every error answer of the gateway: the OpenAI error envelope."""

    error: ErrorObject


def _ref(name: str) -> Schema:
    return {"$ref": REF.format(name=name)}


_ERRORS: dict[int | str, str] = {
    400: "Invalid request (a field, a limit, a query parameter, the Host header).",
    401: "Missing or wrong API key.",
    403: "A browser request from an origin not in server.cors_allowed_origins.",
    404: "Unknown response id (or another tenant's), unknown model, or the Responses API disabled.",
    408: "The request body came too slowly (server.body_timeout_seconds).",
    413: "The request body is over limits.max_body_bytes.",
    415: "A POST body that is not Content-Type: application/json.",
    429: "Rate limited: the tenant's limits, or the backend's own 429 (with Retry-After).",
    502: "The backend failed or answered something unusable.",
    503: "The store is unavailable, or the gateway is at a capacity cap (with Retry-After).",
    504: "The backend did not answer in time.",
    "4XX": "The backend's own 4xx status, in the gateway's envelope (its text is not relayed).",
}
_SSE = {
    "schema": {
        "type": "string",
        "description": "Server-sent events; each `data:` line is one ResponseStreamEvent (JSON).",
    }
}
_RESPONSE_ID = {
    "name": "response_id",
    "in": "path",
    "required": True,
    "description": "A response id of this gateway; any other value answers as an unknown id (404).",
    "schema": {"type": "string", "pattern": RESPONSE_ID_PATTERN},
}
_CONVERSATION_ID = {
    "name": "conversation_id",
    "in": "path",
    "required": True,
    "description": "A conversation id of this gateway; any other value answers as an unknown id (404).",
    "schema": {"type": "string", "pattern": CONVERSATION_ID_PATTERN},
}
_ITEM_ID = {"name": "item_id", "in": "path", "required": True, "schema": {"type": "string"}}
_INCLUDE = {
    "name": "include",
    "in": "query",
    "description": "Accepted for compatibility; it has no effect here.",
    "schema": {"type": "array", "items": {"type": "string"}},
}
_MODELS: Schema = {
    "type": "object",
    "required": ["object", "data"],
    "properties": {
        "object": {"const": "list"},
        "data": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "object"],
                "properties": {
                    "id": {"type": "string"},
                    "object": {"type": "string"},
                    "created": {"type": "integer"},
                    "owned_by": {"type": "string"},
                },
            },
        },
    },
}
_READY: Schema = {
    "type": "object",
    "required": ["status", "store"],
    "properties": {
        "status": {"enum": ["ready", "not_ready"]},
        "store": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "reason": {"type": "string"},
    },
}
# the paging parameters of a list (input items, conversation items)
_PAGE: tuple[dict[str, Any], ...] = (
    {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
    },
    {"name": "order", "in": "query", "schema": {"enum": ["asc", "desc"], "default": "desc"}},
    {
        "name": "after",
        "in": "query",
        "description": "An item id: the page starts after it.",
        "schema": {"type": "string"},
    },
)


@dataclass(frozen=True)
class Operation:
    """One route: its successful answers (status -> media type -> schema) and its error statuses."""

    method: str
    path: str
    operation_id: str
    summary: str
    ok: dict[int, dict[str, Schema]]
    errors: tuple[int | str, ...] = ()
    body: Schema | None = None
    parameters: tuple[Schema, ...] = ()
    security: str | None = "api"  # "api" (/v1 key), "metrics" (the metrics key) or None (open)
    tags: tuple[str, ...] = field(default=("responses",))


_ID_ERRORS = (400, 401, 403, 404, 503)
_CREATE_ERRORS = (400, 401, 403, 404, 408, 413, 415, 429, 502, 503, 504, "4XX")

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "POST",
        "/v1/responses",
        "createResponse",
        "Create a response (JSON, or server-sent events with stream: true).",
        ok={200: {"application/json": _ref("Response"), "text/event-stream": _SSE}},
        errors=_CREATE_ERRORS,
        body=_ref("CreateRequest"),
    ),
    Operation(
        "POST",
        "/v1/responses/compact",
        "compactResponse",
        "Summarise a context (input and/or previous_response_id) into a sealed compaction item.",
        ok={200: {"application/json": _ref("CompactedResponse")}},
        errors=(400, 401, 403, 404, 408, 413, 415, 429, 502, 503, 504),
        body=_ref("CompactRequest"),
    ),
    Operation(
        "POST",
        "/v1/responses/input_tokens",
        "countInputTokens",
        "Count the input tokens of a create request with the backend's own tokenizer.",
        ok={200: {"application/json": _ref("InputTokenCount")}},
        errors=(400, 401, 403, 404, 408, 413, 415, 429, 502, 503, 504),
        body=_ref("CreateRequest"),
    ),
    Operation(
        "GET",
        "/v1/responses/{response_id}",
        "getResponse",
        "Retrieve a stored response (stream=true: replay a background response's events).",
        ok={200: {"application/json": _ref("Response"), "text/event-stream": _SSE}},
        errors=_ID_ERRORS,
        parameters=(
            _RESPONSE_ID,
            {
                "name": "stream",
                "in": "query",
                "description": "true: the events of a background response (text/event-stream), replayed "
                "then followed live until the terminal event; 400 for any other response.",
                "schema": {"type": "boolean"},
            },
            {
                "name": "starting_after",
                "in": "query",
                "description": "With stream=true: only the events after this sequence number.",
                "schema": {"type": "integer", "minimum": -1},
            },
            _INCLUDE,
        ),
    ),
    Operation(
        "DELETE",
        "/v1/responses/{response_id}",
        "deleteResponse",
        "Delete a stored response.",
        ok={200: {"application/json": _ref("Deleted")}},
        errors=_ID_ERRORS,
        parameters=(_RESPONSE_ID,),
    ),
    Operation(
        "POST",
        "/v1/responses/{response_id}/cancel",
        "cancelResponse",
        "Cancel a background response that is queued or in progress (from any replica); idempotent.",
        ok={200: {"application/json": _ref("Response")}},
        errors=_ID_ERRORS,
        parameters=(_RESPONSE_ID,),
    ),
    Operation(
        "GET",
        "/v1/responses/{response_id}/input_items",
        "listInputItems",
        "List the input items of a stored response, a page at a time.",
        ok={200: {"application/json": _ref("ItemPage")}},
        errors=_ID_ERRORS,
        parameters=(
            _RESPONSE_ID,
            *_PAGE,
            _INCLUDE,
        ),
    ),
    Operation(
        "POST",
        "/v1/conversations",
        "createConversation",
        "Create a conversation (optional metadata and up to 20 initial items).",
        ok={200: {"application/json": _ref("Conversation")}},
        errors=(400, 401, 403, 408, 413, 415, 503),
        body=_ref("CreateConversation"),
        tags=("conversations",),
    ),
    Operation(
        "GET",
        "/v1/conversations/{conversation_id}",
        "getConversation",
        "Retrieve a conversation.",
        ok={200: {"application/json": _ref("Conversation")}},
        errors=_ID_ERRORS,
        parameters=(_CONVERSATION_ID,),
        tags=("conversations",),
    ),
    Operation(
        "POST",
        "/v1/conversations/{conversation_id}",
        "updateConversation",
        "Replace a conversation's metadata.",
        ok={200: {"application/json": _ref("Conversation")}},
        errors=(*_ID_ERRORS, 408, 413, 415),
        body=_ref("UpdateConversation"),
        parameters=(_CONVERSATION_ID,),
        tags=("conversations",),
    ),
    Operation(
        "DELETE",
        "/v1/conversations/{conversation_id}",
        "deleteConversation",
        "Delete a conversation and its items.",
        ok={200: {"application/json": _ref("ConversationDeleted")}},
        errors=_ID_ERRORS,
        parameters=(_CONVERSATION_ID,),
        tags=("conversations",),
    ),
    Operation(
        "POST",
        "/v1/conversations/{conversation_id}/items",
        "createConversationItems",
        "Add up to 20 items to a conversation (appended as one unit); answers the items added.",
        ok={200: {"application/json": _ref("ConversationItemList")}},
        errors=(*_ID_ERRORS, 408, 413, 415),
        body=_ref("AddItems"),
        parameters=(_CONVERSATION_ID, _INCLUDE),
        tags=("conversations",),
    ),
    Operation(
        "GET",
        "/v1/conversations/{conversation_id}/items",
        "listConversationItems",
        "List a conversation's items, a page at a time.",
        ok={200: {"application/json": _ref("ConversationItemList")}},
        errors=_ID_ERRORS,
        parameters=(
            _CONVERSATION_ID,
            *_PAGE,
            _INCLUDE,
        ),
        tags=("conversations",),
    ),
    Operation(
        "GET",
        "/v1/conversations/{conversation_id}/items/{item_id}",
        "getConversationItem",
        "Retrieve one item of a conversation.",
        ok={200: {"application/json": {"type": "object", "description": "A conversation item."}}},
        errors=_ID_ERRORS,
        parameters=(_CONVERSATION_ID, _ITEM_ID, _INCLUDE),
        tags=("conversations",),
    ),
    Operation(
        "DELETE",
        "/v1/conversations/{conversation_id}/items/{item_id}",
        "deleteConversationItem",
        "Delete one item of a conversation; answers the conversation.",
        ok={200: {"application/json": _ref("Conversation")}},
        errors=_ID_ERRORS,
        parameters=(_CONVERSATION_ID, _ITEM_ID),
        tags=("conversations",),
    ),
    Operation(
        "POST",
        "/v1/chat/completions",
        "createChatCompletion",
        "Pass-through to the backend serving `model`; its answer is relayed as it is.",
        ok={
            200: {"application/json": {"type": "object"}, "text/event-stream": {"schema": {"type": "string"}}}
        },
        errors=_CREATE_ERRORS,
        body={
            "type": "object",
            "required": ["model"],
            "properties": {
                "model": {"type": "string"},
                "messages": {"type": "array", "items": {"type": "object"}},
                "stream": {"type": "boolean"},
            },
            "additionalProperties": True,
        },
        tags=("chat",),
    ),
    Operation(
        "GET",
        "/v1/models",
        "listModels",
        "The models of every backend, and the configured model names.",
        ok={200: {"application/json": _MODELS}},
        errors=(400, 401, 403),
        tags=("models",),
    ),
    Operation(
        "GET",
        "/health",
        "health",
        "Liveness: the process answers.",
        ok={
            200: {
                "application/json": {
                    "type": "object",
                    "required": ["status"],
                    "properties": {"status": {"const": "ok"}},
                }
            }
        },
        errors=(400, 403),
        security=None,
        tags=("operations",),
    ),
    Operation(
        "GET",
        "/ready",
        "ready",
        "Readiness: the store answers (503 with the same shape when it does not).",
        ok={200: {"application/json": _READY}, 503: {"application/json": _READY}},
        errors=(400, 403),
        security=None,
        tags=("operations",),
    ),
    Operation(
        "GET",
        "/metrics",
        "metrics",
        "Prometheus metrics.",
        ok={200: {"text/plain": {"type": "string"}}},
        errors=(400, 401, 403),
        security="metrics",
        tags=("operations",),
    ),
)


def _content(media: dict[str, Schema]) -> dict[str, Schema]:
    return {m: s if m == "text/event-stream" else {"schema": s} for m, s in media.items()}


def _security(kind: str | None, *, api_keys: bool, metrics_key: bool) -> list[dict[str, list[str]]]:
    if kind == "api":
        # without auth.api_keys a client's own key is optional and passed on to the backend
        return [{"apiKey": []}] if api_keys else [{}, {"apiKey": []}]
    if kind == "metrics" and metrics_key:
        return [{"metricsKey": []}]
    return []


def _operation(op: Operation, *, api_keys: bool, metrics_key: bool) -> Schema:
    responses: Schema = {}
    for status, media in op.ok.items():
        responses[str(status)] = {
            "description": "OK" if status < 300 else "Not ready",
            "content": _content(media),
        }
    for error in op.errors:
        responses[str(error)] = {
            "description": _ERRORS[error],
            "content": {"application/json": {"schema": _ref("ErrorResponse")}},
        }
    result: Schema = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": list(op.tags),
        "security": _security(op.security, api_keys=api_keys, metrics_key=metrics_key),
        "responses": responses,
    }
    if op.parameters:
        result["parameters"] = list(op.parameters)
    if op.body is not None:
        result["requestBody"] = {"required": True, "content": {"application/json": {"schema": op.body}}}
    return result


def _components() -> dict[str, Schema]:
    (event,), schemas = msgspec.json.schema_components([Event], ref_template=REF)
    _, more = msgspec.json.schema_components(
        [
            CreateRequest,
            Response,
            Deleted,
            CompactRequest,
            CompactedResponse,
            InputTokenCount,
            ItemPage,
            ErrorResponse,
            CreateConversation,
            UpdateConversation,
            AddItems,
            Conversation,
            ConversationDeleted,
            ConversationItemList,
        ],
        ref_template=REF,
    )
    return {**schemas, **more, "ResponseStreamEvent": event}


def build_document(*, api_keys: bool, metrics_key: bool) -> Schema:
    """The OpenAPI document for a gateway with (or without) client keys and a metrics key."""
    paths: dict[str, Schema] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(
            op, api_keys=api_keys, metrics_key=metrics_key
        )
    auth = "required" if api_keys else "optional: without auth.api_keys it is passed on to the backend"
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "responses-gateway",
            "version": __version__,
            "description": "The OpenAI Responses API (stateful) over Chat Completions backends. "
            "Generated from the gateway's wire types; see docs/API.md for what each field does.",
        },
        "paths": paths,
        "components": {
            "schemas": _components(),
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": f"A gateway key (auth.api_keys) on every /v1 route: {auth}.",
                },
                "metricsKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The metrics key (auth.metrics_key), when one is configured.",
                },
            },
        },
    }


@cache
def openapi_json(*, api_keys: bool, metrics_key: bool) -> bytes:
    """`build_document` as JSON bytes, built once per combination."""
    return orjson.dumps(build_document(api_keys=api_keys, metrics_key=metrics_key))
