"""Shared helpers for the test suite (importable as `support` with tests/ on sys.path)."""

from __future__ import annotations
