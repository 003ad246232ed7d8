"""The `openai-agents` SDK's `OpenAIResponsesCompactionSession` against the gateway: after a turn it
calls `POST /v1/responses/compact` (by `previous_response_id`, or with the session's items as
`input`), keeps the returned user messages and compaction item as the session, and sends them back
as input on the next turn, where the gateway restores the summary for the backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from agents import Agent, Runner, SQLiteSession, set_tracing_disabled
from agents.memory import OpenAIResponsesCompactionSession
from agents.models.openai_responses import OpenAIResponsesModel
from openai import AsyncOpenAI

from responses_gateway.translate.compaction import RESTORED_PREFIX, SUMMARY_PROMPT
from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway

MODEL = "gpt-4.1"  # the session accepts OpenAI model names only; the echo backend serves any name


@pytest.fixture
async def client(tool_gateway: Gateway) -> AsyncIterator[AsyncOpenAI]:
    set_tracing_disabled(True)  # or the SDK exports traces to api.openai.com whatever the base_url
    async with AsyncOpenAI(base_url=tool_gateway.base_url, api_key="sk-test", max_retries=0) as c:
        yield c


def _always(context: dict[str, Any]) -> bool:
    return True


@pytest.mark.parametrize("mode", ["previous_response_id", "input"])
async def test_compaction_session_over_two_turns(client: AsyncOpenAI, echo: EchoBackend, mode: str) -> None:
    agent = Agent(name="a", instructions="be brief", model=OpenAIResponsesModel(MODEL, client))
    session = OpenAIResponsesCompactionSession(
        session_id=f"s-{mode}",
        underlying_session=SQLiteSession(f"s-{mode}"),
        client=client,
        model=MODEL,
        compaction_mode=mode,  # type: ignore[arg-type]
        should_trigger_compaction=_always,
    )
    first = await Runner.run(agent, "plan a trip to Lima", session=session)
    assert first.final_output == "echo: plan a trip to Lima"
    # the compaction ran after the turn: the backend got the turn and our prompt
    summarising = echo.chat_requests()[-1]["body"]["messages"]
    assert summarising[-1] == {"role": "user", "content": SUMMARY_PROMPT}
    assert {"role": "assistant", "content": "echo: plan a trip to Lima"} in summarising
    stored = await session.get_items()
    assert [i.get("type", "message") for i in stored] == ["message", "compaction"]
    assert stored[-1]["encrypted_content"].startswith("rgwc1:")  # type: ignore[typeddict-item]

    second = await Runner.run(agent, "and hotels?", session=session)
    assert second.final_output == "echo: and hotels?"
    turn = next(
        r["body"]["messages"]
        for r in reversed(echo.chat_requests())
        if r["body"]["messages"][-1] == {"role": "user", "content": "and hotels?"}
    )
    assert turn == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "plan a trip to Lima"},
        {"role": "user", "content": RESTORED_PREFIX + "echo: " + SUMMARY_PROMPT},
        {"role": "user", "content": "and hotels?"},
    ]
