"""Two gateway processes on the same Redis: read-your-writes across replicas, and branching."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway_process import GatewayProcess, write_config


def _api(kind: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    if kind == "redis":
        url: str = request.getfixturevalue("redis_clean")
        return {"store_backend": "redis", "redis": {"address": url.split("//", 1)[1].split("/", 1)[0]}}
    nodes: list[str] = request.getfixturevalue("redis_cluster_clean")
    return {"store_backend": "redis", "redis": {"cluster_mode": True, "cluster_addresses": nodes}}


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("redis_cluster", marks=pytest.mark.redis_cluster),
    ],
)
def test_two_replicas_share_conversations(
    kind: str, request: pytest.FixtureRequest, echo: EchoBackend, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path / "gw.yaml", echo.base_url, _api(kind, request))
    with GatewayProcess(cfg, tmp_path / "a.log") as a, GatewayProcess(cfg, tmp_path / "b.log") as b:
        c = httpx.Client(timeout=10)

        def create(gw: GatewayProcess, text: str, prev: str | None = None) -> dict[str, Any]:
            body: dict[str, Any] = {"model": "qwen3", "input": text}
            if prev:
                body["previous_response_id"] = prev
            resp = c.post(f"{gw.base_url}/responses", json=body)
            assert resp.status_code == 200, resp.text
            result: dict[str, Any] = resp.json()
            return result

        # read-your-writes: each turn continues, at once, on the other replica
        tip = create(a, "turn 0")
        for i in range(1, 20):
            gw = b if i % 2 else a
            assert c.get(f"{gw.base_url}/responses/{tip['id']}").json()["id"] == tip["id"]
            tip = create(gw, f"turn {i}", tip["id"])
        msgs = echo.chat_requests()[-1]["body"]["messages"]
        assert [m["content"] for m in msgs if m["role"] == "user"] == [f"turn {i}" for i in range(20)]

        # branching off one parent on two replicas: each child sees only its own branch
        root = create(a, "root")
        left = create(a, "left", root["id"])
        right = create(b, "right", root["id"])
        assert left["previous_response_id"] == right["previous_response_id"] == root["id"]
        create(b, "after left", left["id"])
        assert [m["content"] for m in echo.chat_requests()[-1]["body"]["messages"]] == [
            "root",
            "echo: root",
            "left",
            "echo: left",
            "after left",
        ]
        create(a, "after right", right["id"])
        assert [m["content"] for m in echo.chat_requests()[-1]["body"]["messages"]] == [
            "root",
            "echo: root",
            "right",
            "echo: right",
            "after right",
        ]
        # delete on one replica is seen by the other
        assert c.delete(f"{b.base_url}/responses/{left['id']}").status_code == 200
        assert c.get(f"{a.base_url}/responses/{left['id']}").status_code == 404
        c.close()
