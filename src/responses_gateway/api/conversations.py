"""Handlers of the Conversations API (`/v1/conversations…`): parse, call ConversationsService, encode."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from responses_gateway.conversations import ConversationsService
from responses_gateway.protocol.conversations import (
    AddItems,
    CreateConversation,
    UpdateConversation,
    parse_body,
)

__all__ = [
    "add_items",
    "create_conversation",
    "delete_conversation",
    "delete_item",
    "get_conversation",
    "get_item",
    "list_items",
    "update_conversation",
]


def _conversations(request: Request) -> ConversationsService:
    return routes._service(request).conversations


async def create_conversation(request: Request) -> Response:
    service = routes._service(request)
    raw = await routes._body(request)
    req = parse_body(raw, CreateConversation, service.request_limits) if raw.strip() else CreateConversation()
    return routes._json(await service.conversations.create(req, routes._ctx(request).owner))


async def get_conversation(request: Request) -> Response:
    cid = request.path_params["conversation_id"]
    return routes._json(await _conversations(request).get(cid, routes._ctx(request).owner))


async def update_conversation(request: Request) -> Response:
    service = routes._service(request)
    req = parse_body(await routes._body(request), UpdateConversation, service.request_limits)
    cid = request.path_params["conversation_id"]
    return routes._json(await service.conversations.update(cid, req.metadata, routes._ctx(request).owner))


async def delete_conversation(request: Request) -> Response:
    cid = request.path_params["conversation_id"]
    return routes._json(await _conversations(request).delete(cid, routes._ctx(request).owner))


async def add_items(request: Request) -> Response:
    service = routes._service(request)
    req = parse_body(await routes._body(request), AddItems, service.request_limits)
    cid = request.path_params["conversation_id"]
    return routes._json(await service.conversations.add_items(cid, req.items, routes._ctx(request).owner))


async def list_items(request: Request) -> Response:
    q = request.query_params
    page = await _conversations(request).list_items(
        request.path_params["conversation_id"],
        routes._ctx(request).owner,
        limit=routes._limit(q.get("limit")),
        order=routes._order(q.get("order")),
        after=q.get("after"),
    )
    return routes._json(page)


async def get_item(request: Request) -> Response:
    p = request.path_params
    return routes._json(
        await _conversations(request).get_item(p["conversation_id"], p["item_id"], routes._ctx(request).owner)
    )


async def delete_item(request: Request) -> Response:
    p = request.path_params
    conv = await _conversations(request).delete_item(
        p["conversation_id"], p["item_id"], routes._ctx(request).owner
    )
    return routes._json(conv)


# Last: routes imports this module for its ROUTES, and these handlers use routes' helpers (looked up
# when a request comes), so either module may be imported first.
from responses_gateway.api import routes  # noqa: E402
