"""Routing and backend failures as clients see them: model_not_found, timeouts, unreachable backends,
and ids that stay the same in events, the final object and retrieval."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from openai import OpenAI

from responses_gateway.config import settings_from_dict
from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway, run_gateway
from tests.support.processes import free_port


def test_model_routing_and_model_not_found(echo: EchoBackend) -> None:
    settings = settings_from_dict(
        {
            "backends": [
                {"name": "a", "base_url": echo.base_url, "models": ["qwen3"]},
                {"name": "dead", "base_url": f"http://127.0.0.1:{free_port()}/v1", "models": ["other"]},
            ]
        }
    )
    with run_gateway(settings) as gw:
        client = OpenAI(base_url=gw.base_url, api_key="sk-client", max_retries=0)
        assert client.responses.create(model="qwen3", input="hi").status == "completed"
        with pytest.raises(openai.NotFoundError) as nf:
            client.responses.create(model="gpt-unknown", input="hi")
        assert nf.value.code == "model_not_found"
        with pytest.raises(openai.InternalServerError) as down:
            client.responses.create(model="other", input="hi")
        assert down.value.status_code == 502 and "dead" in str(down.value)
        # no api_key on the backend: the client's Authorization header is passed on
        assert echo.chat_requests()[0]["authorization"] == "Bearer sk-client"


def test_backend_api_key_replaces_the_clients(echo: EchoBackend) -> None:
    settings = settings_from_dict(
        {"backends": [{"name": "a", "base_url": echo.base_url, "models": ["*"], "api_key": "sk-backend"}]}
    )
    with run_gateway(settings) as gw:
        OpenAI(base_url=gw.base_url, api_key="sk-client", max_retries=0).responses.create(
            model="m", input="x"
        )
    assert echo.chat_requests()[-1]["authorization"] == "Bearer sk-backend"


def test_backend_timeout_is_504(echo: EchoBackend) -> None:
    settings = settings_from_dict(
        {"backends": [{"name": "slow", "base_url": echo.base_url, "models": ["*"], "timeout_seconds": 0.5}]}
    )
    with run_gateway(settings) as gw:
        resp = httpx.post(f"{gw.base_url}/responses", json={"model": "m", "input": "[hang]"}, timeout=10)
    assert resp.status_code == 504 and resp.json()["error"]["type"] == "server_error"


def test_backend_stalling_mid_stream_is_504_and_stored_failed(echo: EchoBackend) -> None:
    settings = settings_from_dict(
        {"backends": [{"name": "slow", "base_url": echo.base_url, "models": ["*"], "timeout_seconds": 0.5}]}
    )
    with run_gateway(settings) as gw, httpx.Client(timeout=10) as client:
        resp = client.post(
            f"{gw.base_url}/responses", json={"model": "m", "input": "a b c [stall-mid-stream]"}
        )
        assert resp.status_code == 504, resp.text
        body = {"model": "m", "input": "a b c [stall-mid-stream]", "stream": True}
        with client.stream("POST", f"{gw.base_url}/responses", json=body) as r:
            events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
        assert events[-1]["type"] == "response.failed"
        assert (
            client.get(f"{gw.base_url}/responses/{events[-1]['response']['id']}").json()["status"] == "failed"
        )


def test_ids_identical_in_events_final_object_and_retrieval(memory_gateway: Gateway) -> None:
    body = {"model": "qwen3", "input": "same ids everywhere", "stream": True}
    with httpx.stream("POST", f"{memory_gateway.base_url}/responses", json=body, timeout=10) as resp:
        events = [json.loads(line[6:]) for line in resp.iter_lines() if line.startswith("data: ")]
    response_ids = {e["response"]["id"] for e in events if "response" in e}
    item_ids = {e["item"]["id"] for e in events if "item" in e} | {
        e["item_id"] for e in events if "item_id" in e
    }
    assert len(response_ids) == 1 and len(item_ids) == 1
    final = events[-1]["response"]
    assert final["output"][0]["id"] in item_ids
    stored = httpx.get(f"{memory_gateway.base_url}/responses/{final['id']}", timeout=5).json()
    assert stored == final
    # every lifecycle snapshot carries every key the Open Responses schema requires
    required = {
        "id",
        "object",
        "created_at",
        "completed_at",
        "status",
        "incomplete_details",
        "model",
        "previous_response_id",
        "instructions",
        "output",
        "error",
        "tools",
        "tool_choice",
        "truncation",
        "parallel_tool_calls",
        "text",
        "top_p",
        "presence_penalty",
        "frequency_penalty",
        "top_logprobs",
        "temperature",
        "reasoning",
        "usage",
        "max_output_tokens",
        "max_tool_calls",
        "store",
        "background",
        "service_tier",
        "metadata",
        "safety_identifier",
        "prompt_cache_key",
    }
    for e in events:
        if "response" in e:
            assert required <= set(e["response"]), required - set(e["response"])
