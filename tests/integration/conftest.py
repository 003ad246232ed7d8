"""Integration fixtures: a real gateway (in-process uvicorn) over a real echo backend process,
parametrized over every store backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway, gateway_settings, run_gateway

STORES = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
    pytest.param("redis_cluster", id="redis_cluster", marks=pytest.mark.redis_cluster),
]


def store_block(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    if kind == "memory":
        return {"store_backend": "memory"}
    if kind == "sqlite":
        return {"store_backend": "sqlite", "sqlite": {"path": str(tmp_path / "responses.db")}}
    if kind == "redis":
        url: str = request.getfixturevalue("redis_standalone_url")
        address = url.split("//", 1)[1].split("/", 1)[0]
        return {"store_backend": "redis", "redis": {"address": address, "key_prefix": f"t{id(request)}:"}}
    nodes: list[str] = request.getfixturevalue("redis_cluster_nodes")
    return {
        "store_backend": "redis",
        "redis": {"cluster_mode": True, "cluster_addresses": nodes, "key_prefix": f"t{id(request)}:"},
    }


@pytest.fixture(params=STORES)
def gateway(request: pytest.FixtureRequest, echo: EchoBackend, tmp_path: Path) -> Iterator[Gateway]:
    """A gateway on each store backend, over the echo backend."""
    with run_gateway(gateway_settings(echo.base_url, store_block(request.param, request, tmp_path))) as gw:
        yield gw


@pytest.fixture
def memory_gateway(echo: EchoBackend) -> Iterator[Gateway]:
    """A gateway on the memory store, for tests about translation rather than storage."""
    with run_gateway(gateway_settings(echo.base_url)) as gw:
        yield gw
