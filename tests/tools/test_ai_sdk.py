"""The Vercel AI SDK (`ai` + `@ai-sdk/openai` responses model, pinned in package.json) as the client:
`streamText` with a tool and a multi-step loop, the next turn with item_reference, a reasoning model id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway
from tests.tools.conftest import run_node_script


def _run_script(gw: Gateway) -> dict[str, Any]:
    return run_node_script("ai_sdk_stream.mjs", gw.base_url)


def test_stream_text_tool_loop(gateway: Gateway, echo: EchoBackend, node_modules: Path) -> None:
    out = _run_script(gateway)
    assert out["ran"] == ["Paris", "Lima"]  # the tool executed with the arguments the backend chose

    loop = out["loop"]
    assert loop["text"] == 'tool said: {"city":"Paris","temp":21}' and loop["finishReason"] == "stop"
    first, second = loop["steps"]
    assert first["finishReason"] == "tool-calls"
    assert first["toolCalls"][0]["name"] == "get_weather" and first["toolCalls"][0]["input"] == {
        "city": "Paris"
    }
    assert first["toolResults"] == [{"name": "get_weather", "output": {"city": "Paris", "temp": 21}}]
    assert first["responseId"].startswith("resp_") and second["responseId"].startswith(
        "resp_"
    )  # from created
    assert loop["usage"]["totalTokens"] > 0  # response.completed arrived with usage
    assert [r["input"] for r in loop["requests"]] == [
        ["role:user"],
        ["role:user", "function_call", "function_call_output"],
    ]
    assert all(r["stream"] for r in loop["requests"])

    # next turn: the SDK replaced the earlier assistant message with an item_reference; it resolved
    nxt = out["next"]
    assert nxt["text"] == "echo: and tomorrow?"
    (req,) = nxt["requests"]
    assert req["input"] == [
        "role:user",
        "function_call",
        "function_call_output",
        "item_reference",
        "role:user",
    ]
    assert req["references"][0].startswith("msg_")
    msgs = echo.chat_requests()[-3]["body"]["messages"]  # before the reasoning scenario's two calls
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool", "assistant", "user"]
    assert msgs[3]["content"] == loop["text"]

    # reasoning model id: step 2 references step 1's reasoning item inside the loop
    rs = out["reasoning"]
    assert rs["text"] == 'tool said: {"city":"Lima","temp":21}'
    assert rs["requests"][1]["input"] == [
        "role:user",
        "item_reference",
        "function_call",
        "function_call_output",
    ]
    assert rs["requests"][1]["references"][0].startswith("rs_")
    assert rs["usage"]["reasoningTokens"] > 0
