"""The gateway started as a user starts it (`responses-gateway serve`), over llm-katan's echo backend
(the seed's third-party upstream): the seed's curl tests 1, 3, 4 and 5, then a restart (SQLite)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.gateway_process import GatewayProcess
from tests.support.katan import run_katan

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def katan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llm-katan's echo backend serving `qwen3`."""
    with run_katan(tmp_path_factory.mktemp("katan")) as url:
        yield url


def _config(tmp: Path, backend_url: str) -> Path:
    cfg = tmp / "config.yaml"
    cfg.write_text(f"""
server: {{host: 127.0.0.1, port: 1}}
backends:
  - name: llm-katan
    base_url: "{backend_url}"
    api_key: "${{KATAN_KEY}}"
    models: ["qwen3"]
    timeout_seconds: 30
response_api:
  enabled: true
  store_backend: sqlite
  ttl_seconds: 86400
  sqlite:
    path: "{tmp / "responses.db"}"
""")
    return cfg


class Gateway(GatewayProcess):
    def __init__(self, cfg: Path, log: Path) -> None:
        super().__init__(cfg, log, env={"KATAN_KEY": "sk-katan"})

    def stop(self) -> int:
        code = super().stop()
        assert "Application shutdown complete" in self.log.read_text()
        return code


def test_seed_flow_then_restart(katan: str, tmp_path: Path) -> None:
    cfg = _config(tmp_path, katan)
    gw = Gateway(cfg, tmp_path / "gateway.log")
    try:
        # Test 1: create
        r1 = httpx.post(
            f"{gw.url}/v1/responses",
            json={
                "model": "qwen3",
                "input": "What is Redis Cluster?",
                "instructions": "You are a database expert.",
                "store": True,
            },
            timeout=30,
        )
        assert r1.status_code == 200, r1.text
        one = r1.json()
        assert one["id"].startswith("resp_") and one["object"] == "response"
        assert (
            one["status"] == "completed"
            and one["model"] == "qwen3"
            and one["output"][0]["content"][0]["text"]
        )
        # Test 3: retrieve
        got = httpx.get(f"{gw.url}/v1/responses/{one['id']}", timeout=10)
        assert got.status_code == 200 and got.json() == one
        # Test 4: chain
        r2 = httpx.post(
            f"{gw.url}/v1/responses",
            json={
                "model": "qwen3",
                "input": "Tell me more about sharding",
                "previous_response_id": one["id"],
                "store": True,
            },
            timeout=30,
        )
        assert r2.status_code == 200, r2.text
        two = r2.json()
        assert two["previous_response_id"] == one["id"] and two["status"] == "completed"
        # Test 5: delete
        d = httpx.delete(f"{gw.url}/v1/responses/{one['id']}", timeout=10)
        assert d.status_code == 200 and d.json() == {"id": one["id"], "object": "response", "deleted": True}
        assert httpx.get(f"{gw.url}/v1/responses/{one['id']}", timeout=10).status_code == 404
        assert "Response API enabled with sqlite backend" in gw.log.read_text()
    finally:
        assert gw.stop() == 0

    # restart: what was stored is still there and still chains
    gw2 = Gateway(cfg, tmp_path / "gateway2.log")
    try:
        again = httpx.get(f"{gw2.url}/v1/responses/{two['id']}", timeout=10)
        assert again.status_code == 200 and again.json() == two
        three = httpx.post(
            f"{gw2.url}/v1/responses",
            json={"model": "qwen3", "input": "and replicas?", "previous_response_id": two["id"]},
            timeout=30,
        )
        assert three.status_code == 200 and three.json()["previous_response_id"] == two["id"]
        assert httpx.get(f"{gw2.url}/v1/responses/{one['id']}", timeout=10).status_code == 404
    finally:
        assert gw2.stop() == 0


def test_bad_config_exits_with_one_line(tmp_path: Path) -> None:
    import subprocess

    cfg = tmp_path / "bad.yaml"
    cfg.write_text("response_api:\n  store_backend: redis\n  redis:\n    cluster_mode: true\n")
    out = subprocess.run(
        [sys.executable, "-m", "responses_gateway", "serve", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert out.returncode != 0
    assert "cluster_addresses" in out.stderr and "Traceback" not in out.stderr
