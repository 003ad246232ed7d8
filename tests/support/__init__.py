"""Shared helpers for the test suite (import as `tests.support.…`)."""

from __future__ import annotations
