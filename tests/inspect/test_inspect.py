"""`responses-gateway inspect` and the `/ui/api` JSON behind the page: a real gateway (in-process) over
the real echo backend writes threads through the openai SDK, then the CLI (`cli.main`, as a user runs it)
reads them from SQLite, Redis and a Redis Cluster; the JSON API is checked on every backend."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from responses_gateway.api.ui import CSP
from responses_gateway.cli import main
from responses_gateway.config import Settings, settings_from_dict
from tests.integration.conftest import STORES, store_block
from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway, run_gateway
from tests.support.tenants import KEY_A, KEY_B, auth_block

CLI_STORES = [p for p in STORES if p.id != "memory"]


def _config(backend_url: str, store: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "backends": [{"name": "echo", "base_url": backend_url, "models": ["*"], "timeout_seconds": 10}],
        "response_api": store,
        "ui": {"enabled": True},
        **extra,
    }


def _settings(backend_url: str, store: dict[str, Any], **extra: Any) -> Settings:
    return settings_from_dict(_config(backend_url, store, **extra))


def make_thread(client: openai.OpenAI) -> dict[str, str]:
    """root -> second -> third, and a branch from root: `side`."""
    root = client.responses.create(model="echo", input="first turn")
    second = client.responses.create(model="echo", input="second turn", previous_response_id=root.id)
    third = client.responses.create(model="echo", input="third turn", previous_response_id=second.id)
    side = client.responses.create(model="echo", input="a side branch", previous_response_id=root.id)
    return {"root": root.id, "second": second.id, "third": third.id, "side": side.id}


@pytest.fixture(params=STORES)
def ui_gateway(request: pytest.FixtureRequest, echo: EchoBackend, tmp_path: Path) -> Iterator[Gateway]:
    with run_gateway(_settings(echo.base_url, store_block(request.param, request, tmp_path))) as gw:
        yield gw


def _inspect(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["inspect", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("kind", CLI_STORES)
def test_cli_shows_health_and_the_thread_as_a_tree(
    kind: str,
    request: pytest.FixtureRequest,
    echo: EchoBackend,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = store_block(kind, request, tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(_config(echo.base_url, store)))
    with run_gateway(_settings(echo.base_url, store)) as gw:
        ids = make_thread(openai.OpenAI(base_url=gw.base_url, api_key="unused", max_retries=0))
        code, out, err = _inspect(capsys, "--config", str(config), ids["third"], "--json", "--recent", "10")
        assert code == 0, err
        report = json.loads(out)
        text_code, text, _ = _inspect(capsys, "--config", str(config), ids["third"])

    health = report["health"]
    assert health["backend"] in ("sqlite", "redis") and health["ok"] is True
    if kind == "sqlite":
        assert health["responses"] == 4 and health["file_bytes"] > 0
    else:
        assert health["keys"] >= 7 and health["used_memory"] > 0  # 4 hashes, 2 segments, the recent index
        assert all(m["role"] == "master" for m in health["masters"])
        if kind == "redis_cluster":
            assert len(health["masters"]) == 3
            assert {m["cluster_state"] for m in health["masters"]} == {"ok"}
            assert len(health["cluster_nodes"]) == 6

    chain = report["chain"]
    assert chain["complete"] is True
    assert chain["path"] == [ids["root"], ids["second"], ids["third"]]
    turns = chain["turns"]
    # the path is the spine at level 0; the branch hangs right after the turn it leaves
    assert [(t["id"], t["level"], t["branch"]) for t in turns] == [
        (ids["root"], 0, False),
        (ids["side"], 1, True),
        (ids["second"], 0, False),
        (ids["third"], 0, False),
    ]
    assert sorted(turns[0]["children"]) == sorted([ids["second"], ids["side"]])
    assert turns[3]["selected"] is True and turns[1]["on_path"] is False
    assert turns[2]["input"][0]["text"] == "second turn" and turns[2]["input"][0]["role"] == "user"
    assert turns[2]["output"][0]["type"] == "message" and turns[2]["output"][0]["role"] == "assistant"
    assert turns[2]["output"][0]["text"]  # the echo backend's answer
    assert [r["id"] for r in report["recent"]] == [ids["side"], ids["third"], ids["second"], ids["root"]]

    assert text_code == 0
    if kind == "redis_cluster":
        assert text.count("cluster_state=ok") == 3 and "cluster_nodes:" in text
    assert f"thread of {ids['third']}: 4 turns" in text
    assert f"    └─   {ids['side']}" in text and f"(branch from {ids['root']})" in text
    assert f"* {ids['third']}" in text and "inp message user: third turn" in text


@pytest.mark.parametrize("kind", CLI_STORES)
def test_cli_owner_and_errors(
    kind: str,
    request: pytest.FixtureRequest,
    echo: EchoBackend,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = store_block(kind, request, tmp_path)
    extra = {"auth": auth_block()}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(_config(echo.base_url, store, **extra)))
    with run_gateway(_settings(echo.base_url, store, **extra)) as gw:
        theirs = openai.OpenAI(base_url=gw.base_url, api_key=KEY_A, max_retries=0)
        rid = theirs.responses.create(model="echo", input="team a's").id
        code, out, _ = _inspect(capsys, "--config", str(config), rid, "--tenant", "team-a", "--json")
        assert code == 0 and json.loads(out)["chain"]["path"] == [rid]
        for owner in ("team-b", ""):  # another tenant's id answers as an unknown one
            code, out, err = _inspect(capsys, "--config", str(config), rid, "--owner", owner, "--json")
            assert code == 1 and json.loads(out)["chain"] is None
            assert f"no response {rid} for owner {owner!r}" in err
        unknown = "resp_" + "0" * 48
        assert _inspect(capsys, "--config", str(config), unknown)[0] == 1
        code, _, err = _inspect(capsys, "--config", str(config), "not-an-id")
        assert code == 2 and "not a response id" in err


def test_cli_memory_store_is_a_clear_error(
    echo: EchoBackend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(_config(echo.base_url, {"store_backend": "memory"})))
    code, out, err = _inspect(capsys, "--config", str(config))
    assert code == 2 and out == ""
    assert "memory store" in err and "inside the gateway process" in err and "ui.enabled" in err


def test_cli_sqlite_missing_file_is_not_created(
    echo: EchoBackend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "nothing.db"
    config = tmp_path / "config.yaml"
    store = {"store_backend": "sqlite", "sqlite": {"path": str(path)}}
    config.write_text(yaml.safe_dump(_config(echo.base_url, store)))
    code, _, err = _inspect(capsys, "--config", str(config))
    assert code == 1 and f"no database file at {path}" in err
    assert not path.exists()


def _get(gw: Gateway, path: str, key: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.get(gw.root_url + path, headers=headers, timeout=15)


def test_ui_api_on_every_store(ui_gateway: Gateway) -> None:
    client = openai.OpenAI(base_url=ui_gateway.base_url, api_key="unused", max_retries=0)
    ids = make_thread(client)
    client.responses.delete(ids["second"])  # a tombstone keeps its place in the tree

    page = _get(ui_gateway, "/ui")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CSP
    assert "script-src 'self'" in CSP and "'unsafe-inline'" not in CSP
    assert _get(ui_gateway, "/ui/app.js").headers["content-type"].startswith("text/javascript")

    health = _get(ui_gateway, "/ui/api/health").json()
    assert health["owner"] == "" and health["health"]["ok"] is True

    recent = _get(ui_gateway, "/ui/api/recent").json()["data"]
    assert [r["id"] for r in recent] == [ids["side"], ids["third"], ids["root"]]  # the deleted one is gone
    assert recent[0]["preview"] == "a side branch" and recent[0]["status"] == "completed"

    tree = _get(ui_gateway, f"/ui/api/responses/{ids['third']}").json()
    assert [t["id"] for t in tree["turns"]] == [ids["root"], ids["side"], ids["second"], ids["third"]]
    deleted = tree["turns"][2]
    assert deleted["deleted"] is True and deleted["input"] == [] and deleted["output"] == []

    missing = _get(ui_gateway, "/ui/api/responses/resp_" + "0" * 48)
    assert missing.status_code == 404
    assert missing.json()["error"]["param"] == "response_id" and missing.json()["error"]["type"]
    bad = _get(ui_gateway, "/ui/api/responses/nope")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "response_id"
    limit = _get(ui_gateway, "/ui/api/recent?limit=0")
    assert limit.status_code == 400 and limit.json()["error"]["param"] == "limit"


@pytest.mark.parametrize("kind", [p for p in STORES if p.id in ("sqlite", "redis_cluster")])
def test_ui_api_needs_the_key_and_shows_only_the_tenants_own(
    kind: str, request: pytest.FixtureRequest, echo: EchoBackend, tmp_path: Path
) -> None:
    settings = _settings(echo.base_url, store_block(kind, request, tmp_path), auth=auth_block())
    with run_gateway(settings) as gw:
        a = openai.OpenAI(base_url=gw.base_url, api_key=KEY_A, max_retries=0)
        rid = a.responses.create(model="echo", input="<img src=x onerror=alert(1)> team a").id
        assert _get(gw, "/ui").status_code == 200  # the page itself holds no data
        for path in ("/ui/api/health", "/ui/api/recent", f"/ui/api/responses/{rid}"):
            answer = _get(gw, path)
            assert answer.status_code == 401 and answer.headers["www-authenticate"].startswith("Bearer")
        mine = _get(gw, f"/ui/api/responses/{rid}", KEY_A).json()
        assert mine["turns"][0]["input"][0]["text"] == "<img src=x onerror=alert(1)> team a"
        assert [r["id"] for r in _get(gw, "/ui/api/recent", KEY_A).json()["data"]] == [rid]
        assert _get(gw, "/ui/api/recent", KEY_B).json()["data"] == []
        theirs = _get(gw, f"/ui/api/responses/{rid}", KEY_B)
        unknown = _get(gw, "/ui/api/responses/resp_" + "1" * 48, KEY_B)
        assert theirs.status_code == unknown.status_code == 404
        assert theirs.json()["error"]["message"].replace(rid, "X") == unknown.json()["error"][
            "message"
        ].replace("resp_" + "1" * 48, "X")


def test_ui_is_off_by_default(echo: EchoBackend, tmp_path: Path) -> None:
    settings = settings_from_dict(
        {
            "backends": [{"name": "echo", "base_url": echo.base_url}],
            "response_api": {"store_backend": "memory"},
        }
    )
    assert settings.ui.enabled is False
    with run_gateway(settings) as gw:
        for path in ("/ui", "/ui/app.js", "/ui/api/health"):
            assert _get(gw, path).status_code == 404


@pytest.mark.redis
def test_no_recent_index_is_written_without_the_ui(
    echo: EchoBackend, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    import redis

    store = store_block("redis", request, tmp_path)
    prefix = store["redis"]["key_prefix"]
    for enabled in (False, True):
        config = _config(echo.base_url, store)
        config["ui"] = {"enabled": enabled}
        with run_gateway(settings_from_dict(config)) as gw:
            openai.OpenAI(base_url=gw.base_url, api_key="unused", max_retries=0).responses.create(
                model="echo", input="hello"
            )
        host, port = store["redis"]["address"].split(":")
        with redis.Redis(host=host, port=int(port)) as client:
            recent = list(client.scan_iter(match=f"{prefix}recent:*"))
        assert len(recent) == (1 if enabled else 0)
