"""The `openai-agents` SDK's OpenAIConversationsSession against the gateway's Conversations API: a
Runner with two function tools over several turns, its history kept in a gateway conversation, on
the memory store and on Redis Cluster."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from agents import Agent, Runner, function_tool, set_tracing_disabled
from agents.memory import OpenAIConversationsSession
from agents.models.openai_responses import OpenAIResponsesModel
from openai import AsyncOpenAI

from tests.integration.conftest import store_block
from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway, gateway_settings, run_gateway


@pytest.fixture(params=["memory", pytest.param("redis_cluster", marks=pytest.mark.redis_cluster)])
def conv_gateway(request: pytest.FixtureRequest, echo: EchoBackend, tmp_path: Path) -> Iterator[Gateway]:
    with run_gateway(gateway_settings(echo.base_url, store_block(request.param, request, tmp_path))) as gw:
        yield gw


@pytest.fixture
async def client(conv_gateway: Gateway) -> AsyncIterator[AsyncOpenAI]:
    set_tracing_disabled(True)  # or the SDK exports traces to api.openai.com whatever the base_url
    async with AsyncOpenAI(base_url=conv_gateway.base_url, api_key="sk-test", max_retries=0) as c:
        yield c


async def test_conversations_session_with_tools_over_several_turns(
    client: AsyncOpenAI, echo: EchoBackend
) -> None:
    ran: list[tuple[str, dict[str, object]]] = []

    @function_tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        ran.append(("add", {"a": a, "b": b}))
        return a + b

    @function_tool
    def city_country(city: str) -> str:
        """The country a city is in."""
        ran.append(("city_country", {"city": city}))
        return {"Paris": "France", "Lima": "Peru"}.get(city, "unknown")

    agent = Agent(
        name="helper",
        instructions="You are terse.",
        tools=[add, city_country],
        model=OpenAIResponsesModel(model="qwen3", openai_client=client),
    )
    session = OpenAIConversationsSession(openai_client=client)

    r1 = await Runner.run(
        agent, '[call:add {"a": 2, "b": 3}] [call:city_country {"city": "Paris"}]', session=session
    )
    assert r1.final_output == "tool said: France"
    assert ran == [("add", {"a": 2, "b": 3}), ("city_country", {"city": "Paris"})]
    conversation_id = session.session_id
    assert conversation_id.startswith("conv_")

    r2 = await Runner.run(agent, '[call:add {"a": 10, "b": 20}]', session=session)
    assert r2.final_output == "tool said: 30"
    r3 = await Runner.run(agent, "thanks", session=session)
    assert r3.final_output == "echo: thanks"

    # the last model call saw every earlier turn, read back from the gateway's conversation
    msgs = echo.chat_requests()[-1]["body"]["messages"]
    assert [m["role"] for m in msgs] == [
        "system",
        "user",
        "assistant",
        "tool",
        "tool",
        "assistant",
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]
    assert [json.loads(tc["function"]["arguments"]) for tc in msgs[2]["tool_calls"]] == [
        {"a": 2, "b": 3},
        {"city": "Paris"},
    ]
    assert [m["content"] for m in msgs if m["role"] == "tool"] == ["5", "France", "30"]

    # the conversation holds the whole history, in order; a fresh session on the same id reads it
    items = await OpenAIConversationsSession(
        conversation_id=conversation_id, openai_client=client
    ).get_items()
    types = [i["type"] for i in items]
    assert types == [
        "message",
        "function_call",
        "function_call",
        "function_call_output",
        "function_call_output",
        "message",
        "message",
        "function_call",
        "function_call_output",
        "message",
        "message",
        "message",
    ]
    last = await session.get_items(limit=1)
    assert last[0]["content"][0]["text"] == "echo: thanks"  # type: ignore[index]
    popped = await session.pop_item()
    assert popped is not None and popped["content"][0]["text"] == "echo: thanks"  # type: ignore[index]
    assert len(await session.get_items()) == len(items) - 1
    await session.clear_session()
