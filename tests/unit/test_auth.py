"""Keys and tenants without HTTP: the key table, fingerprints, the edge's parsing helpers, and the
CLI (`keys new`, the refusal to listen on a non-loopback address without keys, `check-config`)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from responses_gateway import cli
from responses_gateway.api.edge import _is_json, allowed_host_names, host_name, is_loopback_host
from responses_gateway.auth import NO_KEY, KeyTable, MissingKey, bearer, fingerprint
from responses_gateway.config import AuthSettings, ServerSettings, settings_from_dict
from responses_gateway.errors import AuthenticationFailed, ConfigError

KEY_A = "rgw-aaaaaaaaaaaaaaaaaaaaaaaa"
KEY_B = "rgw-bbbbbbbbbbbbbbbbbbbbbbbb"


def _table(**extra: Any) -> KeyTable:
    sha_b = hashlib.sha256(KEY_B.encode()).hexdigest().upper()  # any case is accepted
    keys = [{"tenant": "team-a", "key": KEY_A}, {"tenant": "team-b", "key_sha256": sha_b}]
    return KeyTable(AuthSettings.model_validate({"api_keys": keys, **extra}))


def test_each_key_gives_its_tenant() -> None:
    table = _table()
    assert table.enabled
    assert table.authenticate(f"Bearer {KEY_A}") == "team-a"
    assert table.authenticate(f"bearer {KEY_B}") == "team-b"
    assert table.authenticate(f"BEARER   {KEY_B}  ") == "team-b"


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer   ", KEY_A, f"Basic {KEY_A}", f"Token {KEY_A}"]
)
def test_no_bearer_key_is_missing_key(header: str | None) -> None:
    with pytest.raises(MissingKey) as exc:
        _table().authenticate(header)
    assert exc.value.status_code == 401 and exc.value.code is None and exc.value.message == NO_KEY
    assert exc.value.to_dict()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("key", ["rgw-wrong-key-0000000000", KEY_A + "x", KEY_A[:-1], KEY_A.upper()])
def test_a_wrong_key_is_invalid_api_key_named_by_fingerprint_only(key: str) -> None:
    with pytest.raises(AuthenticationFailed) as exc:
        _table().authenticate(f"Bearer {key}")
    error = exc.value.to_dict()["error"]
    assert exc.value.status_code == 401 and error["code"] == "invalid_api_key"
    assert fingerprint(key) in error["message"]
    assert key not in error["message"] and key[4:12] not in error["message"]


def test_fingerprint_is_8_hex_of_the_sha256() -> None:
    assert fingerprint("abc") == hashlib.sha256(b"abc").hexdigest()[:8] == "ba7816bf"


def test_bearer() -> None:
    assert bearer("Bearer x") == "x" and bearer("bearer  x ") == "x"
    assert bearer("Bearerx") is None and bearer(None) is None and bearer("Bearer ") is None


def test_no_keys_means_auth_off() -> None:
    table = KeyTable(AuthSettings())
    assert not table.enabled and not table.metrics_protected
    table.authenticate_metrics(None)  # /metrics open


def test_the_same_key_twice_is_a_config_error() -> None:
    sha = hashlib.sha256(KEY_A.encode()).hexdigest()
    auth = AuthSettings.model_validate(
        {
            "api_keys": [
                {"tenant": "a", "key": KEY_A},
                {"tenant": "b", "key": KEY_B},
                {"tenant": "c", "key_sha256": sha},
            ]
        }
    )
    with pytest.raises(ConfigError, match=r"^auth.api_keys\[2\]: the same key as auth.api_keys\[0\]"):
        KeyTable(auth)


@pytest.mark.parametrize("form", ["metrics_key", "metrics_key_sha256"])
def test_the_metrics_key(form: str) -> None:
    secret = "metrics-0123456789abcdef"
    value = secret if form == "metrics_key" else hashlib.sha256(secret.encode()).hexdigest()
    table = _table(**{form: value})
    assert table.metrics_protected
    table.authenticate_metrics(f"Bearer {secret}")
    with pytest.raises(MissingKey):
        table.authenticate_metrics(None)
    for other in (KEY_A, secret + "x"):  # a client key is not the metrics key
        with pytest.raises(AuthenticationFailed) as exc:
            table.authenticate_metrics(f"Bearer {other}")
        assert other not in exc.value.message


def test_the_compare_does_not_stop_at_the_first_match() -> None:
    """Every configured digest is compared whichever matched: the first key of 200 takes as long as the
    last (a loose bound: the machine is shared; an early exit would make the first ~100x faster)."""
    keys = [{"tenant": f"t{i}", "key": f"rgw-key-{i:030d}"} for i in range(200)]
    table = KeyTable(AuthSettings.model_validate({"api_keys": keys}))

    def cost(key: str) -> float:
        header = f"Bearer {key}"
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(200):
                table.authenticate(header)
            best = min(best, time.perf_counter() - start)
        return best

    first, last = cost(keys[0]["key"]), cost(keys[-1]["key"])
    assert first > last / 3, (first, last)


def test_the_key_table_is_cheap() -> None:
    """One SHA-256 and one compare per configured key: a few microseconds (bound loose: shared CPU)."""
    table = _table()
    header = f"Bearer {KEY_B}"
    start = time.perf_counter()
    for _ in range(10_000):
        table.authenticate(header)
    assert (time.perf_counter() - start) / 10_000 < 50e-6


# --- the edge's helpers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.1.2.3", "localhost", "LocalHost", "::1", "[::1]", "::ffff:127.0.0.1"]
)
def test_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "::", "", "10.0.0.1", "192.168.1.2", "myhost", "localhost.example", "::ffff:10.0.0.1"]
)
def test_non_loopback_hosts(host: str) -> None:
    assert not is_loopback_host(host)


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("localhost:8801", "localhost"),
        ("[::1]:1", "[::1]"),
        ("::1", "[::1]"),
        ("Ex.COM.", "ex.com"),
        ("a.b", "a.b"),
    ],
)
def test_host_name(value: str, name: str) -> None:
    assert host_name(value) == name


def test_allowed_host_names() -> None:
    assert allowed_host_names(ServerSettings()) == {"localhost", "127.0.0.1", "[::1]"}
    assert allowed_host_names(ServerSettings(host="127.0.0.2")) == {
        "localhost",
        "127.0.0.1",
        "[::1]",
        "127.0.0.2",
    }
    assert allowed_host_names(ServerSettings(host="0.0.0.0")) is None
    assert allowed_host_names(ServerSettings(host="0.0.0.0", allowed_hosts=["gw.example:443"])) == {
        "gw.example"
    }
    assert allowed_host_names(ServerSettings(allowed_hosts=["*"])) is None


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (b"application/json", True),
        (b"application/json; charset=utf-8", True),
        (b'APPLICATION/JSON;CHARSET="UTF8"', True),
        (b"application/json; charset=iso-8859-1", False),
        (b"text/plain", False),
        (b"application/json-seq", False),
        (b"", False),
    ],
)
def test_is_json(value: bytes, ok: bool) -> None:
    assert _is_json(value) is ok


# --- the CLI -------------------------------------------------------------------------------------


def test_keys_new_prints_a_key_and_its_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["keys", "new", "--tenant", "team-a"]) == 0
    out = capsys.readouterr().out
    key, rest = out.split("\n", 1)
    assert key.startswith("rgw-") and len(key) == 47 and key not in rest
    config = yaml.safe_load(rest)
    assert config == {
        "auth": {"api_keys": [{"tenant": "team-a", "key_sha256": hashlib.sha256(key.encode()).hexdigest()}]}
    }
    assert fingerprint(key) in rest
    settings = settings_from_dict({**config, "backends": []})
    assert KeyTable(settings.auth).authenticate(f"Bearer {key}") == "team-a"
    assert cli.main(["keys", "new", "--tenant", "team-a"]) == 0
    assert capsys.readouterr().out.split("\n", 1)[0] != key  # fresh every time


@pytest.mark.parametrize("tenant", ["-x", "a b", "x" * 65, "", "é"])
def test_keys_new_checks_the_tenant_as_the_config_does(
    tenant: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["keys", "new", f"--tenant={tenant}"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("error: --tenant: must be 1-64 characters")


def _config(tmp_path: Path, **blocks: Any) -> Path:
    data = {
        "backends": [{"name": "b", "base_url": "http://127.0.0.1:9/v1"}],
        "response_api": {"store_backend": "sqlite", "sqlite": {"path": str(tmp_path / "r.db")}},
        **blocks,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """What `serve` went on to run, instead of running it (these tests are about what comes before)."""
    calls: list[tuple[str, Any]] = []
    monkeypatch.setattr(cli, "_build_app", lambda settings: object())
    monkeypatch.setattr(cli, "_run_uvicorn", lambda app, settings: calls.append(("uvicorn", settings)) or 0)
    monkeypatch.setattr(cli, "_run_workers", lambda settings, n: calls.append(("workers", n)) or 0)
    return calls


@pytest.mark.parametrize(
    ("config_host", "argv"),
    [
        ("0.0.0.0", []),
        ("10.1.2.3", []),
        ("127.0.0.1", ["--host", "0.0.0.0"]),
        ("127.0.0.1", ["--host", "::"]),
        ("127.0.0.1", ["--host", "my-host.example"]),
        ("0.0.0.0", ["--workers", "2"]),
        ("127.0.0.1", ["--host", "0.0.0.0", "--workers", "3"]),
    ],
)
def test_serve_refuses_a_non_loopback_address_without_keys(
    tmp_path: Path, served: list[Any], capsys: pytest.CaptureFixture[str], config_host: str, argv: list[str]
) -> None:
    path = _config(tmp_path, server={"host": config_host})
    assert cli.main(["serve", "--config", str(path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {'--host' if '--host' in argv else 'server.host'} ")
    assert "auth.api_keys" in err and "server.allow_unauthenticated" in err
    assert served == []  # nothing was started


@pytest.mark.parametrize("argv", [[], ["--host", "127.0.0.5"], ["--host", "localhost"], ["--host", "::1"]])
def test_serve_on_loopback_needs_no_keys(tmp_path: Path, served: list[Any], argv: list[str]) -> None:
    assert cli.main(["serve", "--config", str(_config(tmp_path)), *argv]) == 0
    assert [kind for kind, _ in served] == ["uvicorn"]


@pytest.mark.parametrize("argv", [[], ["--workers", "2"]])
def test_serve_on_any_address_with_keys(tmp_path: Path, served: list[Any], argv: list[str]) -> None:
    auth = {"api_keys": [{"tenant": "a", "key_sha256": "0" * 64}]}
    path = _config(tmp_path, server={"host": "0.0.0.0"}, auth=auth)
    assert cli.main(["serve", "--config", str(path), *argv]) == 0
    assert len(served) == 1


def test_serve_unauthenticated_when_told_so_with_a_warning(
    tmp_path: Path, served: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(tmp_path, server={"host": "0.0.0.0", "allow_unauthenticated": True})
    assert cli.main(["serve", "--config", str(path), "--workers", "2"]) == 0  # logs to stderr
    assert served == [("workers", 2)]
    err = capsys.readouterr().err
    assert "WARNING responses_gateway: listening on 0.0.0.0 without API keys" in err
    assert "(server.allow_unauthenticated: true)" in err


def test_check_config_shows_no_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TEAM_A_KEY", KEY_A)
    sha_b = hashlib.sha256(KEY_B.encode()).hexdigest()
    auth = {
        "api_keys": [{"tenant": "team-a", "key": "${TEAM_A_KEY}"}, {"tenant": "team-b", "key_sha256": sha_b}],
        "metrics_key": "metrics-secret-0123456789",
    }
    assert cli.main(["check-config", str(_config(tmp_path, auth=auth))]) == 0
    out = capsys.readouterr().out
    shown = yaml.safe_load(out)["auth"]
    assert shown["api_keys"][0] == {"tenant": "team-a", "key": "***", "key_sha256": None}
    assert shown["api_keys"][1]["key_sha256"] == sha_b and shown["metrics_key"] == "***"
    for secret in (KEY_A, "metrics-secret-0123456789"):
        assert secret not in out


def test_a_short_key_is_refused_without_showing_it() -> None:
    with pytest.raises(ConfigError) as exc:
        settings_from_dict({"auth": {"api_keys": [{"tenant": "a", "key": "short-secret"}]}})
    assert "auth.api_keys[0].key" in str(exc.value) and "short-secret" not in str(exc.value)
