"""The wire types of the Responses and Chat Completions APIs, and the one parse of a create request.

Imports nothing else from the package: every other layer depends on this one, never the reverse.
"""

from __future__ import annotations

from responses_gateway.protocol.errors import RequestInvalid, shown
from responses_gateway.protocol.parse import (
    DEFAULT_LIMITS,
    RequestLimits,
    format_error,
    parse_create,
    parse_json,
)
from responses_gateway.protocol.request import CreateRequest
from responses_gateway.protocol.response import Response

__all__ = [
    "DEFAULT_LIMITS",
    "CreateRequest",
    "RequestInvalid",
    "RequestLimits",
    "Response",
    "format_error",
    "parse_create",
    "parse_json",
    "shown",
]
