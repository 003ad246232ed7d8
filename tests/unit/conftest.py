"""TEMPORARY: the echo backend fixtures for tests/unit until tests/conftest.py imports them."""

from __future__ import annotations

from tests.support.echo_fixtures import echo, echo_backend  # noqa: F401
