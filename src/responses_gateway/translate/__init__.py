"""Pure translation between the Responses API and Chat Completions."""

from __future__ import annotations
