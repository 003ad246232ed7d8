"""The read-only inspector page `/ui` (on with `ui.enabled`): a static page (`ui_static/`, no build
step) over a small JSON API under `/ui/api/`, which the edge gates like `/v1` (the key's tenant sees
its own responses only). The page sends the key in the Authorization header, never in a URL or cookie.
"""

from __future__ import annotations

from importlib import resources

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from responses_gateway import ids, inspector
from responses_gateway.api.edge import request_context
from responses_gateway.api.routes import AppState, service_of
from responses_gateway.config import UISettings
from responses_gateway.errors import InvalidRequest, NotFound
from responses_gateway.protocol.errors import shown
from responses_gateway.stores.inspect import StoreInspector, inspector_for

__all__ = ["CSP", "ui_routes"]

# Nothing inline, nothing from elsewhere: a script injected into a response's text could not run.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
_STATIC = {
    "/ui": ("index.html", "text/html; charset=utf-8"),
    "/ui/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/ui/app.css": ("app.css", "text/css; charset=utf-8"),
}


def _asset(name: str) -> bytes:
    return (resources.files("responses_gateway.api") / "ui_static" / name).read_bytes()


def _json(data: object, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status, headers=_SECURITY_HEADERS, media_type="application/json")


def _inspector(request: Request) -> StoreInspector:
    found: StoreInspector | None = getattr(request.app.state, "ui_inspector", None)
    if found is None:
        state: AppState = request.app.state.gateway
        found = inspector_for(service_of(state).store)
        request.app.state.ui_inspector = found
    return found


def ui_routes(settings: UISettings) -> list[Route]:
    """The page, its two assets and the JSON API."""
    assets = {path: (_asset(name), media) for path, (name, media) in _STATIC.items()}

    async def static(request: Request) -> Response:
        body, media = assets[request.url.path.removesuffix("/") or "/ui"]
        return Response(body, headers=_SECURITY_HEADERS, media_type=media)

    async def health(request: Request) -> Response:
        owner = request_context(request.scope).owner
        return _json({"owner": owner, "health": await inspector.health(_inspector(request))})

    async def recent(request: Request) -> Response:
        owner = request_context(request.scope).owner
        raw = request.query_params.get("limit", str(settings.recent_limit))
        if not raw.isdigit() or not 1 <= int(raw) <= settings.recent_limit:
            raise InvalidRequest(
                f"Invalid 'limit': expected an integer from 1 to {settings.recent_limit} (ui.recent_limit).",
                param="limit",
            )
        entries = await inspector.recent(_inspector(request), owner, int(raw))
        return _json({"object": "list", "data": entries})

    async def chain(request: Request) -> Response:
        owner = request_context(request.scope).owner
        response_id: str = request.path_params["response_id"]
        if not ids.is_response_id(response_id):
            raise InvalidRequest(f"Invalid 'response_id': '{shown(response_id)}'.", param="response_id")
        tree = await inspector.chain(_inspector(request), response_id, owner)
        if tree is None:
            raise NotFound(f"Response with id '{shown(response_id)}' not found.", param="response_id")
        return _json(tree)

    return [
        *(Route(path, static, methods=["GET"]) for path in _STATIC),
        Route("/ui/", static, methods=["GET"]),
        Route("/ui/api/health", health, methods=["GET"]),
        Route("/ui/api/recent", recent, methods=["GET"]),
        Route("/ui/api/responses/{response_id}", chain, methods=["GET"]),
    ]
