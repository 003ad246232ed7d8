"""The Open Responses compliance cases run against a gateway on every store (memory, SQLite, Redis
standalone, Redis Cluster) over the echo backend, through the suite's own config (base URL with /v1,
API key with the Bearer prefix, and a model: the echo backend's tool-using one). The gateway has an
encryption key, as a deployment offering compaction (sealed summaries) and encrypted reasoning has."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.compliance.harness import SuiteConfig
from tests.integration.conftest import STORES, store_block
from tests.support.echo_backend import AUTO_TOOLS_MODEL
from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import gateway_settings, run_gateway


@pytest.fixture(params=STORES)
def suite(request: pytest.FixtureRequest, echo: EchoBackend, tmp_path: Path) -> Iterator[SuiteConfig]:
    """The suite's config, pointing at a fresh gateway on each store backend."""
    store = store_block(request.param, request, tmp_path)
    settings = gateway_settings(echo.base_url, store, encryption_key="test-only compliance key")
    with run_gateway(settings) as gw:
        yield SuiteConfig(base_url=gw.base_url, api_key="sk-compliance", model=AUTO_TOOLS_MODEL)
