"""HTTP layer: thin Starlette handlers over ResponsesService."""

from __future__ import annotations
