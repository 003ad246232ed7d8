"""The CLI: check-config's output and errors, serve's overrides, and a real serve/SIGTERM cycle."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

from responses_gateway import cli
from responses_gateway.config import Settings

GOOD = """
server: {host: 127.0.0.1, port: 8801}
backends:
  - name: katan
    base_url: "http://127.0.0.1:8000/v1"
    api_key: "${TEST_BACKEND_KEY}"
    models: [qwen3]
response_api:
  store_backend: redis
  ttl_seconds: 86400
  redis:
    address: "127.0.0.1:6379"
    password: "redis-pass-42"
    key_prefix: sr
"""


@pytest.fixture
def good_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TEST_BACKEND_KEY", "sk-secret-123")
    path = tmp_path / "config.yaml"
    path.write_text(GOOD)
    return path


def test_check_config_prints_the_effective_config_redacted(
    good_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["check-config", str(good_config)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "sk-secret-123" not in out and "redis-pass-42" not in out
    effective = yaml.safe_load(out)
    assert effective["backends"][0]["api_key"] == "***"
    assert effective["response_api"]["redis"]["password"] == "***"
    assert effective["response_api"]["redis"]["key_prefix"] == "sr:"  # effective, not as written
    assert effective["response_api"]["redis"]["pool_size"] == 10  # defaults are shown


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("response_api:\n  ttl_seconds: -5\n", "response_api.ttl_seconds:"),
        ("response_api:\n  store_backend: redis\n  redis: {cluster_mode: true}\n", "cluster_addresses"),
        ("server: {prot: 1}\n", "server.prot: unknown key"),
        ("server: [oops\n", "invalid YAML"),
    ],
)
def test_check_config_error_is_one_line_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, reason: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert cli.main(["check-config", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and reason in err
    assert "Traceback" not in err


def test_check_config_lists_every_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("server: {prot: 1, port: -1}\nlog_level: loud\nbackends: [{name: a}]\n")
    assert cli.main(["check-config", str(path)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(":")[1].strip() for line in lines] == [
        "server.port",
        "server.prot",
        "backends[0].base_url",
        "log_level",
    ]
    assert all(line.startswith("error: ") for line in lines)


@pytest.mark.parametrize("text", ["", "# only a comment\n"])
def test_check_config_refuses_an_empty_file_naming_backends(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    assert cli.main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: backends: required: ") and err.count("\n") == 1


def test_serve_help_says_the_config_decides_the_log_level(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "overrides the config's log_level" in text and "default: info" not in text


def test_check_config_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check-config", str(tmp_path / "nope.yaml")]) == 2
    assert capsys.readouterr().err.startswith("error: cannot read config file")


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "check-config" in capsys.readouterr().err


class _Captured:
    settings: Settings | None = None
    app: Any = None


@pytest.fixture
def stub_server(monkeypatch: pytest.MonkeyPatch) -> _Captured:
    """Replace the app factory and uvicorn: what would `serve` run, with which settings?"""
    captured = _Captured()

    def create_app(settings: Settings) -> object:
        captured.settings = settings
        return object()

    def run(app: Any, settings: Settings) -> int:
        captured.app = app
        return 0

    monkeypatch.setitem(sys.modules, "responses_gateway.app", types.SimpleNamespace(create_app=create_app))
    monkeypatch.setattr(cli, "_run_uvicorn", run)
    return captured


def test_serve_flags_override_the_server_block(good_config: Path, stub_server: _Captured) -> None:
    argv = ["serve", "--config", str(good_config), "--host", "127.0.0.9", "--port", "9999"]
    assert cli.main([*argv, "--log-level", "WARNING"]) == 0
    assert stub_server.settings is not None and stub_server.app is not None
    assert (stub_server.settings.server.host, stub_server.settings.server.port) == ("127.0.0.9", 9999)
    assert stub_server.settings.log_level == "warning"
    assert stub_server.settings.response_api.redis is not None  # the rest is untouched


def test_serve_uses_the_config_without_flags(good_config: Path, stub_server: _Captured) -> None:
    assert cli.main(["serve", "--config", str(good_config)]) == 0
    assert stub_server.settings is not None
    assert (stub_server.settings.server.host, stub_server.settings.server.port) == ("127.0.0.1", 8801)
    assert stub_server.settings.log_level == "info"


def test_serve_with_a_bad_config_exits_2_without_traceback(
    tmp_path: Path, stub_server: _Captured, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("backends: [{name: a, base_url: 'http://x', api_key: '${UNSET_TEST_VAR_XYZ}'}]\n")
    assert cli.main(["serve", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == "error: backends[0].api_key: environment variable UNSET_TEST_VAR_XYZ is not set\n"
    assert stub_server.settings is None


def test_serve_rejects_a_bad_port(good_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["serve", "--config", str(good_config), "--port", "70000"])
    assert info.value.code == 2
    assert "port out of range" in capsys.readouterr().err


class _Workers:
    count: int | None = None
    settings: Settings | None = None


@pytest.fixture
def stub_workers(monkeypatch: pytest.MonkeyPatch, stub_server: _Captured) -> _Workers:
    """Replace the multi-process supervisor too: with how many workers would `serve` run?"""
    captured = _Workers()

    def run_workers(settings: Settings, workers: int) -> int:
        captured.settings, captured.count = settings, workers
        return 0

    monkeypatch.setattr(cli, "_run_workers", run_workers)
    return captured


def _sqlite_config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "sqlite.yaml"
    path.write_text(
        f"response_api: {{store_backend: sqlite, sqlite: {{path: {tmp_path / 'r.db'}}}}}\n{extra}"
    )
    return path


def test_serve_runs_one_process_by_default(
    tmp_path: Path, stub_server: _Captured, stub_workers: _Workers
) -> None:
    assert cli.main(["serve", "--config", str(_sqlite_config(tmp_path))]) == 0
    assert stub_server.app is not None and stub_workers.count is None  # uvicorn in this process


@pytest.mark.parametrize(("flag", "cores", "expected"), [("2", 8, 2), ("auto", 6, 6), ("AUTO", 3, 3)])
def test_serve_workers_flag(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    stub_workers: _Workers,
    flag: str,
    cores: int,
    expected: int,
) -> None:
    monkeypatch.setattr(cli, "cpu_count", lambda: cores)
    assert cli.main(["serve", "--config", str(_sqlite_config(tmp_path)), "--workers", flag]) == 0
    assert stub_workers.count == expected
    assert stub_workers.settings is not None
    assert stub_workers.settings.server.workers == (flag.lower() if flag.isalpha() else int(flag))


def test_serve_workers_auto_on_one_core_is_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stub_server: _Captured, stub_workers: _Workers
) -> None:
    monkeypatch.setattr(cli, "cpu_count", lambda: 1)
    path = tmp_path / "memory.yaml"
    path.write_text("response_api: {store_backend: memory}\n")  # fine with 1 worker
    assert cli.main(["serve", "--config", str(path), "--workers", "auto"]) == 0
    assert stub_server.app is not None and stub_workers.count is None


def test_serve_workers_from_the_config(tmp_path: Path, stub_workers: _Workers) -> None:
    assert cli.main(["serve", "--config", str(_sqlite_config(tmp_path, "server: {workers: 3}\n"))]) == 0
    assert stub_workers.count == 3


def test_cpu_count_is_at_least_one() -> None:
    assert cli.cpu_count() >= 1
    assert cli.resolve_workers(5) == 5 and cli.resolve_workers("auto") == cli.cpu_count()


@pytest.mark.parametrize("flag", ["0", "-2", "two", ""])
def test_serve_rejects_a_bad_workers_flag(
    good_config: Path, capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["serve", "--config", str(good_config), "--workers", flag])
    assert info.value.code == 2
    assert "--workers" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "config", "named"),
    [
        (["--workers", "2"], "", "--workers 2: "),
        ([], "server: {workers: 4}\n", "server.workers 4: "),
        (["--workers", "auto"], "", "--workers auto (8 cores): "),
    ],
)
def test_serve_refuses_several_workers_on_the_memory_store(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    stub_server: _Captured,
    stub_workers: _Workers,
    argv: list[str],
    config: str,
    named: str,
) -> None:
    monkeypatch.setattr(cli, "cpu_count", lambda: 8)
    path = tmp_path / "memory.yaml"
    path.write_text(config or "response_api: {store_backend: memory}\n")
    assert cli.main(["serve", "--config", str(path), *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith(f"error: {named}the memory store (response_api.store_backend: memory)")
    assert "404" in err and "sqlite or redis" in err
    assert stub_server.settings is None and stub_workers.count is None  # nothing was started


def test_serve_allows_several_workers_without_a_store(tmp_path: Path, stub_workers: _Workers) -> None:
    path = tmp_path / "proxy.yaml"
    path.write_text("response_api: {enabled: false}\n")  # a stateless proxy: nothing to share
    assert cli.main(["serve", "--config", str(path), "--workers", "2"]) == 0
    assert stub_workers.count == 2


def test_python_dash_m_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "responses_gateway", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "serve" in result.stdout and "check-config" in result.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# A child process that runs the real `serve` (uvicorn, uvloop, httptools) with a stub ASGI app,
# so this test does not depend on the real app being importable.
_SERVE_WITH_STUB_APP = textwrap.dedent(
    """
    import sys, types
    from responses_gateway import cli

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    print("lifespan shutdown", file=sys.stderr, flush=True)
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        headers = [(b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"stub"})

    sys.modules["responses_gateway.app"] = types.SimpleNamespace(create_app=lambda settings: app)
    raise SystemExit(cli.main(sys.argv[1:]))
    """
)


def test_serve_runs_and_stops_gracefully_on_sigterm(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("server: {host: 127.0.0.1, port: 1}\n")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVE_WITH_STUB_APP, "serve", "--config", str(config), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    reply = b"".join(iter(lambda: s.recv(4096), b""))
                assert reply.startswith(b"HTTP/1.1 200") and b"stub" in reply
                break
            except OSError:
                assert time.monotonic() < deadline, "serve did not start listening"
                time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # uvicorn shuts down, then re-raises the signal so the process ends "killed by SIGTERM" as usual
    assert proc.returncode in (0, -signal.SIGTERM), err
    assert "Application shutdown complete" in err
    assert "lifespan shutdown" in err
    assert " INFO responses_gateway: responses-gateway " in err  # our log format
    assert "GET / HTTP/1.1" not in err  # access log is off


def test_check_config_masks_credentials_inside_urls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression (issue 8, probe 8): `base_url: https://user:pw@…` was printed whole."""
    path = tmp_path / "config.yaml"
    path.write_text(
        textwrap.dedent(
            """
            backends:
              - {name: a, base_url: "https://alice:s3cr3t-pw@llm.example.com/v1"}
              - {name: b, base_url: "http://tok3n-only@10.0.0.5:8000/v1"}
            """
        )
    )
    assert cli.main(["check-config", str(path)]) == 0
    out, _ = capsys.readouterr()
    assert "s3cr3t-pw" not in out and "alice" not in out and "tok3n-only" not in out
    effective = yaml.safe_load(out)
    assert [b["base_url"] for b in effective["backends"]] == [
        "https://***@llm.example.com/v1",
        "http://***@10.0.0.5:8000/v1",
    ]
