"""The configs shipped in config/: each passes `check-config`, points where `make run` and
`make cluster-up` put things (so they run with no editing), and serves a create, a chained turn and a
delete on its store as a real `serve` process.

The serve test gives the shipped file's own content with two values swapped: the store's addresses
(the test's Redis, not 7001-7006 or 6379, which may be in use) and the backend's URL (the echo backend,
not llm-katan on :8000). Everything else (store kind, pool, timeouts, key prefix, TTL) is the file's.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from responses_gateway import cli
from responses_gateway.config import load_settings
from tests.support import redis_servers
from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway_process import GatewayProcess

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "config").glob("*.yaml"))


def _run_sh(name: str) -> str:
    """A `NAME=value` line of scripts/run.sh (what `make run` starts)."""
    m = re.search(rf"^{name}=(\S+)$", (ROOT / "scripts" / "run.sh").read_text(), re.M)
    assert m is not None, name
    return m.group(1)


def test_every_yaml_in_config_is_checked() -> None:
    names = {p.name for p in SHIPPED}
    assert {"config.yaml", "cluster.yaml", "redis.yaml"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_config_passes_check_config(
    path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # as `make run` runs it: relative paths from the repository
    assert cli.main(["check-config", str(path.relative_to(ROOT))]) == 0, capsys.readouterr().err
    settings = load_settings(path, {})
    # `make run` starts llm-katan's echo backend for model qwen3 on this address
    backend = f"http://{_run_sh('BACKEND_HOST')}:{_run_sh('BACKEND_PORT')}/v1"
    assert [b.base_url for b in settings.backends] == [backend]
    assert "qwen3" in settings.backends[0].models
    assert "--model qwen3" in (ROOT / "scripts" / "run.sh").read_text()
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8801)  # the README's curl commands


def test_cluster_config_names_the_nodes_make_cluster_up_starts() -> None:
    redis = load_settings(ROOT / "config" / "cluster.yaml", {}).response_api.redis
    assert redis is not None and redis.cluster_mode
    # scripts/redis_cluster.py (`make cluster-up`) starts exactly these
    assert list(redis.cluster_addresses) == [f"127.0.0.1:{p}" for p in redis_servers.SEED_PORTS]
    assert "redis_servers.SEED_PORTS" in (ROOT / "scripts" / "redis_cluster.py").read_text()


def test_redis_config_is_a_standalone_redis_on_the_default_port() -> None:
    redis = load_settings(ROOT / "config" / "redis.yaml", {}).response_api.redis
    assert redis is not None and not redis.cluster_mode and redis.address == "127.0.0.1:6379"


def _swapped(name: str, backend_url: str, redis: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "config" / name).read_text())
    assert len(data["backends"]) == 1
    data["backends"][0]["base_url"] = backend_url
    data["response_api"]["redis"].update(redis)
    return data


def _serve_a_conversation(cfg: Path, log: Path, echo: EchoBackend) -> str:
    with GatewayProcess(cfg, log) as gw:
        client = openai.OpenAI(base_url=gw.base_url, api_key="unused", max_retries=0, timeout=15)
        one = client.responses.create(
            model="qwen3", input="What is Redis Cluster?", instructions="You are a database expert."
        )
        two = client.responses.create(
            model="qwen3", input="Tell me more about sharding", previous_response_id=one.id
        )
        assert two.previous_response_id == one.id and two.status == "completed"
        assert [m["content"] for m in echo.chat_requests()[-1]["body"]["messages"]] == [
            "What is Redis Cluster?",
            "echo: What is Redis Cluster?",
            "Tell me more about sharding",
        ]
        assert client.responses.retrieve(two.id).output_text == "echo: Tell me more about sharding"
        assert client.responses.delete(one.id) is None  # the SDK returns nothing on success
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(one.id)
        return one.id


@pytest.mark.e2e
@pytest.mark.redis_cluster
def test_cluster_config_serves_on_a_cluster(
    started_cluster: redis_servers.RedisCluster, echo: EchoBackend, tmp_path: Path
) -> None:
    data = _swapped("cluster.yaml", echo.base_url, {"cluster_addresses": started_cluster.addresses})
    cfg = tmp_path / "cluster.yaml"
    cfg.write_text(yaml.safe_dump(data))
    created = _serve_a_conversation(cfg, tmp_path / "gw.log", echo)
    log = (tmp_path / "gw.log").read_text()
    assert "RedisStore: creating cluster client (nodes=6, pool_size=20)" in log
    assert "RedisStore: initialized successfully (cluster_mode=true, key_prefix=sr:, ttl=24h0m0s)" in log
    assert "Response API enabled with redis backend" in log
    # the deleted turn's record is still a key of the cluster (a tombstone), under the file's prefix
    keys = [k for n in started_cluster.masters() for k in redis_servers.command(n.port, "KEYS", "sr:*")]
    assert any(created.encode() in k for k in keys)


@pytest.mark.e2e
@pytest.mark.redis
def test_redis_config_serves_on_a_standalone_redis(
    redis_clean: str, echo: EchoBackend, tmp_path: Path
) -> None:
    address = redis_clean.split("//", 1)[1].split("/", 1)[0]
    data = _swapped("redis.yaml", echo.base_url, {"address": address})
    cfg = tmp_path / "redis.yaml"
    cfg.write_text(yaml.safe_dump(data))
    _serve_a_conversation(cfg, tmp_path / "gw.log", echo)
    log = (tmp_path / "gw.log").read_text()
    assert f"RedisStore: creating standalone client (address={address}, db=0, pool_size=10)" in log
