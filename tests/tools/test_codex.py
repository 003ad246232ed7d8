"""Codex CLI (`@openai/codex`, pinned in package.json) as the client: `codex exec` in a temp folder with
a temp HOME/CODEX_HOME, read-only sandbox, approvals off, a custom provider with wire_api = "responses".
Codex always sends store:false and the whole history, and takes its answer only from
response.output_item.done (and fails without response.completed)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway
from tests.tools.conftest import node_env


@dataclass
class Codex:
    binary: Path
    home: Path
    workdir: Path

    def exec(self, *args: str, model: str | None = None) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.binary), "exec", "--skip-git-repo-check", "-s", "read-only", "-C", str(self.workdir)]
        if model:
            cmd += ["-m", model]
        env = node_env(HOME=str(self.home), CODEX_HOME=str(self.home / ".codex"), GATEWAY_API_KEY="sk-test")
        return subprocess.run(
            [*cmd, *args],
            env=env,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )


def make_codex(base_url: str, node_modules: Path, tmp_path: Path, provider_extra: str = "") -> Codex:
    """Codex CLI with a fresh home whose one provider is the gateway at `base_url` (no retries);
    `provider_extra`: more lines of that provider's table (e.g. `supports_websockets = true`)."""
    binary = node_modules / ".bin" / "codex"
    if not binary.exists():
        pytest.fail("node_modules/.bin/codex is missing: run `make node-deps`")
    home, workdir = tmp_path / "home", tmp_path / "work"
    (home / ".codex").mkdir(parents=True)
    workdir.mkdir()
    (home / ".codex" / "config.toml").write_text(f"""\
model = "gpt-test"
model_provider = "gateway"
approval_policy = "never"
sandbox_mode = "read-only"

[model_providers.gateway]
name = "Gateway"
base_url = "{base_url}"
env_key = "GATEWAY_API_KEY"
wire_api = "responses"
{provider_extra}stream_max_retries = 0
request_max_retries = 0
""")
    return Codex(binary, home, workdir)


@pytest.fixture
def codex(tool_gateway: Gateway, node_modules: Path, tmp_path: Path) -> Codex:
    return make_codex(tool_gateway.base_url, node_modules, tmp_path)


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, (
        f"codex exit {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr[-4000:]}"
    )
    return done.stdout.strip()


def test_two_turns_exec_then_resume(codex: Codex, echo: EchoBackend) -> None:
    assert _ok(codex.exec("Say hi")) == "echo: Say hi"
    assert _ok(codex.exec("resume", "--last", "again please")) == "echo: again please"
    first, second = (r["body"] for r in echo.chat_requests())
    # Codex's developer messages arrive as one leading system message
    assert [m["role"] for m in first["messages"]][:2] == ["system", "user"]
    assert sum(m["role"] == "system" for m in first["messages"]) == 1
    # resume sends the whole history again (store:false): the first answer is in it
    assert second["messages"][-2:] == [
        {"role": "assistant", "content": "echo: Say hi"},
        {"role": "user", "content": "again please"},
    ]
    assert "web_search" not in json.dumps(first["tools"])  # Codex's hosted tool is left out


def test_turn_with_a_tool_call_and_reasoning(codex: Codex, echo: EchoBackend) -> None:
    # a known model id: Codex adds reasoning effort, apply_patch (custom) and tool_search to the tools
    out = _ok(codex.exec("[reasoning] [call:get_goal {}]", model="gpt-5.5"))
    assert out.startswith("tool said: ") and "goal" in out
    first, second = (r["body"] for r in echo.chat_requests())
    assert first["reasoning_effort"] == "medium"
    names = [t["function"]["name"] for t in first["tools"]]
    assert {"get_goal", "apply_patch", "tool_search"} <= set(names)
    msgs = second["messages"]
    call = msgs[-2]["tool_calls"][0]
    assert call["function"]["name"] == "get_goal" and msgs[-1]["tool_call_id"] == call["id"]
    assert msgs[-1]["role"] == "tool" and json.loads(msgs[-1]["content"]).keys() >= {"goal"}
    assert "thinking about it" not in json.dumps(msgs)  # Codex sent its reasoning item back; not forwarded
