"""responses-gateway: the stateful OpenAI Responses API over Chat Completions backends."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
