"""WebSocket mode with the real clients that speak it: the openai SDK's `responses.connect()` (async and
sync), the Agents SDK's websocket transport (`responses_websocket_session`), and Codex CLI with its
provider's `supports_websockets = true`. Each runs several turns on one socket with `store: false`,
so the chain lives in the socket's own cache; none of their creates goes over HTTP."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from agents import Agent, ModelSettings, function_tool, set_tracing_disabled
from agents.responses_websocket_session import responses_websocket_session
from openai import AsyncOpenAI, OpenAI

from responses_gateway.api.socket_cache import SocketCache
from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway, gateway_settings, run_gateway
from tests.tools.test_codex import Codex, _ok


@pytest.fixture
def gw(echo: EchoBackend) -> Iterator[Gateway]:
    with run_gateway(gateway_settings(echo.base_url)) as gateway:
        yield gateway


@pytest.fixture
def continued(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """One entry per `previous_response_id` looked up in a socket's cache (the gateway runs in this
    process): True when the socket kept it (a `store: false` chain continued on the socket)."""
    found: list[bool] = []
    chain = SocketCache.chain

    def recording(self: SocketCache, response_id: str) -> tuple[str | None, list[bytes]] | None:
        kept = chain(self, response_id)
        found.append(kept is not None)
        return kept

    monkeypatch.setattr(SocketCache, "chain", recording)
    return found


def _http_creates(gateway: Gateway) -> int:
    """`POST /v1/responses` requests the gateway answered over HTTP (a create on a socket is none)."""
    with urllib.request.urlopen(f"{gateway.root_url}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if line.startswith("gateway_requests_total{") and 'route="/v1/responses"' in line and "POST" in line
    )


def _history(echo: EchoBackend) -> list[tuple[str, str]]:
    msgs = echo.chat_requests()[-1]["body"]["messages"]
    return [(m["role"], m.get("content") or "") for m in msgs]


async def test_openai_sdk_async_connect(gw: Gateway, echo: EchoBackend) -> None:
    client = AsyncOpenAI(base_url=gw.base_url, api_key="sk-test", max_retries=0)
    async with client.responses.connect() as conn:
        await conn.response.create(model="gpt-test", input="hello", store=False)
        types = []
        async for event in conn:
            types.append(event.type)
            if event.type == "response.completed":
                first = event.response
                break
        assert types[0] == "response.created" and "response.output_text.delta" in types
        assert first.output_text == "echo: hello"

        await conn.response.create(
            model="gpt-test", input="again", store=False, previous_response_id=first.id
        )
        async for event in conn:
            if event.type == "response.completed":
                assert event.response.output_text == "echo: again"
                assert event.response.previous_response_id == first.id
                break
        assert _history(echo) == [("user", "hello"), ("assistant", "echo: hello"), ("user", "again")]

        # an error is an event the SDK parses (ResponseWsError); the connection goes on
        await conn.response.create(model="gpt-test", input="x", previous_response_id="resp_" + "0" * 48)
        async for event in conn:
            assert event.type == "error"
            assert event.status == 400 and event.error.code == "previous_response_not_found"
            break
        await conn.response.create(model="gpt-test", input="still open")
        async for event in conn:
            if event.type == "response.completed":
                assert event.response.output_text == "echo: still open"
                break
    await client.close()
    assert _http_creates(gw) == 0


def test_openai_sdk_sync_connect(gw: Gateway, echo: EchoBackend) -> None:
    with OpenAI(base_url=gw.base_url, api_key="sk-test", max_retries=0) as client:
        with client.responses.connect() as conn:
            conn.response.create(model="gpt-test", input="sync one", store=False)
            for event in conn:
                if event.type == "response.completed":
                    rid = event.response.id
                    break
            conn.response.create(model="gpt-test", input="sync two", store=False, previous_response_id=rid)
            for event in conn:
                if event.type == "response.completed":
                    assert event.response.output_text == "echo: sync two"
                    break
    assert _history(echo)[-3:] == [
        ("user", "sync one"),
        ("assistant", "echo: sync one"),
        ("user", "sync two"),
    ]


async def test_agents_sdk_websocket_transport(gw: Gateway, echo: EchoBackend, continued: list[bool]) -> None:
    set_tracing_disabled(True)
    ran: list[int] = []

    @function_tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        ran.append(a + b)
        return a + b

    async with responses_websocket_session(api_key="sk-test", base_url=gw.base_url) as session:
        agent = Agent(
            name="helper",
            instructions="You are terse.",
            tools=[add],
            model="qwen3",
            model_settings=ModelSettings(store=False),
        )
        # the tool call and its follow-up chained on the socket (previous_response_id, store: false)
        r1 = await session.run(agent, '[call:add {"a": 2, "b": 3}]', auto_previous_response_id=True)
        assert r1.final_output == "tool said: 5" and ran == [5]
        r2 = await session.run(agent, "thanks", previous_response_id=r1.last_response_id)
        assert r2.final_output == "echo: thanks"
        streamed = session.run_streamed(agent, "streamed", previous_response_id=r2.last_response_id)
        async for _ in streamed.stream_events():
            pass
        assert streamed.final_output == "echo: streamed"
    assert [role for role, _ in _history(echo)] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert len(echo.chat_requests()) == 4
    assert continued == [True, True, True]  # the tool output's turn, r2 and r3: on the socket's chain
    assert _http_creates(gw) == 0


@pytest.fixture
def ws_codex(gw: Gateway, node_modules: Path, tmp_path: Path) -> Codex:
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
base_url = "{gw.base_url}"
env_key = "GATEWAY_API_KEY"
wire_api = "responses"
supports_websockets = true
stream_max_retries = 0
request_max_retries = 0
""")
    return Codex(binary, home, workdir)


def test_codex_over_websocket(ws_codex: Codex, gw: Gateway, echo: EchoBackend, continued: list[bool]) -> None:
    # a turn with a tool call: prewarm (generate: false), the turn, the tool output, each chained
    assert _ok(ws_codex.exec("[call:get_goal {}] hi")).startswith("tool said: ")
    first, second = (r["body"] for r in echo.chat_requests())
    assert first["messages"][-1] == {"role": "user", "content": "[call:get_goal {}] hi"}
    msgs = second["messages"]
    assert msgs[-2]["tool_calls"][0]["function"]["name"] == "get_goal"
    assert msgs[-1]["role"] == "tool" and json.loads(msgs[-1]["content"]).keys() >= {"goal"}
    # the turn continued the prewarm, the tool output continued the turn: both from the socket
    assert continued == [True, True]
    # a new process resumes on a new socket
    assert _ok(ws_codex.exec("resume", "--last", "again please")) == "echo: again please"
    (role, answer), last = _history(echo)[-2:]
    assert role == "assistant" and answer.startswith("tool said: ") and last == ("user", "again please")
    assert _http_creates(gw) == 0
