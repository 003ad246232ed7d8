"""Two `responses-gateway serve` processes on one Redis (standalone and Cluster), each with the two
tenants' keys: what team-a stores through one process, team-b cannot reach through the other, and
answers exactly as ids that do not exist; team-a reaches it through both. No key in either log."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway_process import GatewayProcess, write_config
from tests.support.tenants import KEY_A, KEY_B, assert_isolated, auth_block, client


@pytest.mark.parametrize(
    "mode",
    [
        pytest.param("standalone", marks=pytest.mark.redis),
        pytest.param("cluster", marks=pytest.mark.redis_cluster),
    ],
)
def test_tenants_are_isolated_across_two_processes(
    mode: str, request: pytest.FixtureRequest, echo: EchoBackend, tmp_path: Path
) -> None:
    prefix = f"tenants{id(request)}:"
    if mode == "standalone":
        url: str = request.getfixturevalue("redis_standalone_url")
        redis = {"address": url.split("//", 1)[1].split("/", 1)[0], "key_prefix": prefix}
    else:
        redis = {
            "cluster_mode": True,
            "cluster_addresses": request.getfixturevalue("redis_cluster_nodes"),
            "key_prefix": prefix,
        }
    cfg = write_config(
        tmp_path / "config.yaml", echo.base_url, {"store_backend": "redis", "redis": redis}, auth=auth_block()
    )
    with GatewayProcess(cfg, tmp_path / "one.log") as one, GatewayProcess(cfg, tmp_path / "two.log") as two:
        assert_isolated(one.base_url, two.base_url)
        assert_isolated(two.base_url, one.base_url)
        stored = client(one.base_url, KEY_A).responses.create(model="echo", input="across")
        assert client(two.base_url, KEY_A).responses.retrieve(stored.id).output_text == "echo: across"
    for log in (one.log, two.log):
        text = log.read_text()
        assert "Uvicorn running" in text or "starting on" in text
        assert KEY_A not in text and KEY_B not in text
    assert {r["authorization"] for r in echo.requests()} == {None}  # the gateway keys stayed at the gateway
