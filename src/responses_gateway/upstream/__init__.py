"""The client side: Chat Completions backends reached over pooled HTTP (`HTTPUpstream`)."""

from __future__ import annotations

from responses_gateway.upstream.http import HTTPUpstream, RawResponse
from responses_gateway.upstream.router import ModelRouter

__all__ = ["HTTPUpstream", "ModelRouter", "RawResponse"]
