"""Reasoning, structured output, refusals, images, and the non-function tool types Codex sends."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from openai import OpenAI
from pydantic import BaseModel

from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway, gateway_settings, run_gateway
from tests.tools.sse import post_events, types_at


class Echo(BaseModel):
    echo: str


def _client(gw: Gateway) -> OpenAI:
    return OpenAI(base_url=gw.base_url, api_key="sk-test", max_retries=0)


def test_reasoning_item_streams_before_the_message(tool_gateway: Gateway, echo: EchoBackend) -> None:
    events = post_events(
        tool_gateway.base_url,
        {"model": "qwen3", "input": "[reasoning] why", "reasoning": {"effort": "low"}},  # no summary
    )
    assert echo.chat_requests()[-1]["body"]["reasoning_effort"] == "low"
    assert types_at(events, 0) == [
        "response.output_item.added",
        "response.content_part.added",
        "response.reasoning_text.delta",
        "response.reasoning_text.delta",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ]
    assert types_at(events, 1)[0] == "response.output_item.added"
    first_text = next(i for i, e in enumerate(events) if e["type"] == "response.output_text.delta")
    last_reasoning = max(i for i, e in enumerate(events) if e["type"].startswith("response.reasoning_text"))
    assert last_reasoning < first_text
    final = events[-1]["response"]
    rs, msg = final["output"]
    assert rs["id"].startswith("rs_") and rs["type"] == "reasoning" and rs["summary"] == []
    assert rs["content"] == [{"type": "reasoning_text", "text": "thinking about it"}]
    assert "encrypted_content" not in rs  # only when include asks for it
    assert msg["content"][0]["text"] == "echo: why"
    assert final["usage"]["output_tokens_details"]["reasoning_tokens"] == 3
    assert final["reasoning"] == {"effort": "low", "summary": None}


def test_reasoning_is_not_sent_back_and_sdk_reads_it(tool_gateway: Gateway, echo: EchoBackend) -> None:
    client = _client(tool_gateway)
    r1 = client.responses.create(
        model="qwen3", input="[reasoning] one", include=["reasoning.encrypted_content"]
    )
    rs = r1.output[0]
    assert rs.type == "reasoning" and rs.content is not None and rs.content[0].text == "thinking about it"
    assert rs.encrypted_content and rs.encrypted_content.startswith("rgw1:")
    assert r1.usage is not None and r1.usage.output_tokens_details.reasoning_tokens == 3
    client.responses.create(model="qwen3", input="two", previous_response_id=r1.id)
    msgs = echo.chat_requests()[-1]["body"]["messages"]
    assert msgs == [
        {"role": "user", "content": "[reasoning] one"},
        {"role": "assistant", "content": "echo: one"},
        {"role": "user", "content": "two"},
    ]


def test_include_without_a_key_is_best_effort(echo: EchoBackend) -> None:
    with run_gateway(gateway_settings(echo.base_url)) as gw:
        r = _client(gw).responses.create(
            model="qwen3", input="[reasoning] x", store=False, include=["reasoning.encrypted_content"]
        )
    assert r.output[0].type == "reasoning" and r.output[0].encrypted_content is None


def test_structured_output_and_refusal_with_parse(tool_gateway: Gateway, echo: EchoBackend) -> None:
    client = _client(tool_gateway)
    parsed = client.responses.parse(model="qwen3", input="fill it", text_format=Echo)
    assert parsed.output_parsed == Echo(echo="fill it")
    fmt = echo.chat_requests()[-1]["body"]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "Echo"
    assert fmt["json_schema"]["strict"] is True and fmt["json_schema"]["schema"]["required"] == ["echo"]
    assert parsed.text is not None and parsed.text.format.type == "json_schema"

    r = client.responses.create(model="qwen3", input="obj", text={"format": {"type": "json_object"}})
    assert json.loads(r.output_text) == {"echo": "obj"}
    assert echo.chat_requests()[-1]["body"]["response_format"] == {"type": "json_object"}

    refused = client.responses.parse(model="qwen3", input="[refuse] bad idea", text_format=Echo)
    part = refused.output[0].content[0]  # type: ignore[union-attr]
    assert part.type == "refusal" and part.refusal == "I can't help with that."
    assert refused.output_parsed is None


def test_refusal_events(tool_gateway: Gateway) -> None:
    events = post_events(tool_gateway.base_url, {"model": "qwen3", "input": "[refuse]"})
    types = types_at(events, 0)
    assert types[:2] == ["response.output_item.added", "response.content_part.added"]
    assert "response.refusal.delta" in types and "response.output_text.delta" not in types
    assert types[-3:] == ["response.refusal.done", "response.content_part.done", "response.output_item.done"]
    done = next(e for e in events if e["type"] == "response.refusal.done")
    assert done["refusal"] == "I can't help with that."
    assert events[2]["item"]["role"] == "assistant" and events[3]["part"] == {
        "type": "refusal",
        "refusal": "",
    }


def test_input_image_reaches_the_backend_and_a_broken_input_file_is_400(
    tool_gateway: Gateway, echo: EchoBackend
) -> None:
    client = _client(tool_gateway)
    r = client.responses.create(
        model="qwen3",
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "what is this"},
                    {"type": "input_image", "image_url": "https://example.com/cat.png", "detail": "high"},
                    {
                        "type": "input_image",
                        "image_url": "data:image/png;base64,iVBORw0KGgo=",
                        "detail": "auto",
                    },
                ],
            }
        ],
    )
    assert r.status == "completed"
    assert echo.chat_requests()[-1]["body"]["messages"][0]["content"] == [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    with pytest.raises(openai.BadRequestError, match="could not be read as a PDF"):
        client.responses.create(
            model="qwen3",
            input=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "input_file",
                            "file_data": "data:application/pdf;base64,AAAA",
                            "filename": "a.pdf",
                        }
                    ],
                }
            ],
        )
    with pytest.raises(openai.BadRequestError, match="image_url"):
        client.responses.create(
            model="qwen3",
            input=[
                {"role": "user", "content": [{"type": "input_image", "file_id": "file_1", "detail": "auto"}]}
            ],
        )


CODEX_TOOLS = [
    {
        "type": "function",
        "name": "get_goal",
        "description": "The goal.",
        "strict": False,
        "parameters": {"type": "object", "properties": {}},
    },
    {
        "type": "namespace",
        "name": "multi_agent_v1",
        "description": "agents",
        "tools": [
            {
                "type": "function",
                "name": "spawn",
                "description": "Spawn.",
                "parameters": {"type": "object", "properties": {"task": {"type": "string"}}},
            }
        ],
    },
    {
        "type": "custom",
        "name": "apply_patch",
        "description": "Apply a patch.",
        "format": {"type": "grammar", "syntax": "lark", "definition": "start: begin_patch hunk+ end_patch"},
    },
    {
        "type": "tool_search",
        "execution": "client",
        "description": "Search tools.",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
    },
    {"type": "web_search", "external_web_access": False},
]


def test_codex_tool_array_custom_and_namespace_calls(tool_gateway: Gateway, echo: EchoBackend) -> None:
    events = post_events(
        tool_gateway.base_url,
        {
            "model": "qwen3",
            "tools": CODEX_TOOLS,
            "tool_choice": "auto",
            "store": True,
            "input": '[call:apply_patch {"input": "*** Begin Patch\\n*** End Patch"}] '
            '[call:multi_agent_v1__spawn {"task": "t"}]',
        },
    )
    sent = echo.chat_requests()[-1]["body"]["tools"]
    assert [t["function"]["name"] for t in sent] == [
        "get_goal",
        "multi_agent_v1__spawn",
        "apply_patch",
        "tool_search",
    ]  # web_search left out
    assert sent[2]["function"]["parameters"]["required"] == ["input"]
    assert "lark grammar" in sent[2]["function"]["description"]
    assert types_at(events, 0) == [
        "response.output_item.added",
        "response.custom_tool_call_input.delta",
        "response.custom_tool_call_input.done",
        "response.output_item.done",
    ]
    custom, spawn = events[-1]["response"]["output"]
    assert custom["type"] == "custom_tool_call" and custom["name"] == "apply_patch"
    assert custom["input"] == "*** Begin Patch\n*** End Patch" and custom["id"].startswith("ctc_")
    delta = next(e for e in events if e["type"] == "response.custom_tool_call_input.done")
    assert delta["input"] == custom["input"] and delta["item_id"] == custom["id"]
    assert (
        spawn["type"] == "function_call"
        and spawn["name"] == "spawn"
        and spawn["namespace"] == "multi_agent_v1"
    )
    assert types_at(events, 1)[1] == "response.function_call_arguments.delta"

    # the outputs go back as tool messages, the calls under their backend names
    r2 = httpx.post(
        f"{tool_gateway.base_url}/responses",
        timeout=10,
        json={
            "model": "qwen3",
            "tools": CODEX_TOOLS,
            "previous_response_id": events[-1]["response"]["id"],
            "input": [
                {"type": "custom_tool_call_output", "call_id": custom["call_id"], "output": "Done!"},
                {"type": "function_call_output", "call_id": spawn["call_id"], "output": "spawned"},
            ],
        },
    )
    assert r2.status_code == 200, r2.text
    msgs = echo.chat_requests()[-1]["body"]["messages"]
    calls = msgs[1]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["apply_patch", "multi_agent_v1__spawn"]
    assert json.loads(calls[0]["function"]["arguments"]) == {"input": "*** Begin Patch\n*** End Patch"}
    assert msgs[2:] == [
        {"role": "tool", "tool_call_id": custom["call_id"], "content": "Done!"},
        {"role": "tool", "tool_call_id": spawn["call_id"], "content": "spawned"},
    ]


def test_hosted_tools_can_be_rejected_by_config(echo: EchoBackend) -> None:
    with run_gateway(gateway_settings(echo.base_url, reject_hosted_tools=True)) as gw:
        resp = httpx.post(
            f"{gw.base_url}/responses",
            timeout=10,
            json={
                "model": "qwen3",
                "input": "x",
                "tools": [
                    {"type": "function", "name": "f"},
                    {"type": "file_search", "vector_store_ids": ["vs"]},
                ],
            },
        )
    assert resp.status_code == 400
    assert "file_search" in resp.json()["error"]["message"] and resp.json()["error"]["param"] == "tools[1]"
