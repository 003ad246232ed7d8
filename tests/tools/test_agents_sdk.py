"""The `openai-agents` SDK as the client: a Runner with two function tools over several turns, the
state kept by the gateway (previous_response_id), the echo backend scripted to call the tools."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from agents import Agent, Runner, function_tool, set_tracing_disabled
from agents.models.openai_responses import OpenAIResponsesModel
from openai import AsyncOpenAI

from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway


@pytest.fixture
async def client(tool_gateway: Gateway) -> AsyncIterator[AsyncOpenAI]:
    set_tracing_disabled(True)  # or the SDK exports traces to api.openai.com whatever the base_url
    async with AsyncOpenAI(base_url=tool_gateway.base_url, api_key="sk-test", max_retries=0) as c:
        yield c


async def test_runner_with_two_tools_over_several_turns(client: AsyncOpenAI, echo: EchoBackend) -> None:
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

    # turn 1: two parallel calls, chained by the SDK itself (auto_previous_response_id)
    r1 = await Runner.run(
        agent,
        '[call:add {"a": 2, "b": 3}] [call:city_country {"city": "Paris"}]',
        auto_previous_response_id=True,
    )
    assert r1.final_output == "tool said: France"
    assert ran == [("add", {"a": 2, "b": 3}), ("city_country", {"city": "Paris"})]

    # turn 2, streamed: server-managed state by previous_response_id
    streamed = Runner.run_streamed(
        agent, '[call:add {"a": 10, "b": 20}]', previous_response_id=r1.last_response_id
    )
    async for _ in streamed.stream_events():
        pass
    assert streamed.final_output == "tool said: 30"
    assert ran[-1] == ("add", {"a": 10, "b": 20})

    # turn 3: plain text; the backend still sees every earlier call and output
    r3 = await Runner.run(agent, "thanks", previous_response_id=streamed.last_response_id)
    assert r3.final_output == "echo: thanks"
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
    assert msgs[0] == {"role": "system", "content": "You are terse."}
    assert [json.loads(tc["function"]["arguments"]) for tc in msgs[2]["tool_calls"]] == [
        {"a": 2, "b": 3},
        {"city": "Paris"},
    ]
    assert [m["content"] for m in msgs if m["role"] == "tool"] == ["5", "France", "30"]
    assert len(echo.chat_requests()) == 5  # 2 + 2 + 1 model calls

    # the gateway kept the chain: the last turn's stored input is only the new user message
    last = await client.responses.retrieve(r3.last_response_id)  # type: ignore[arg-type]
    assert last.previous_response_id == streamed.last_response_id
    items = await client.responses.input_items.list(r3.last_response_id)  # type: ignore[arg-type]
    assert [i.type for i in items.data] == ["message"]
