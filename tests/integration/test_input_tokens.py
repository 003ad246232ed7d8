"""`POST /v1/responses/input_tokens` with the openai SDK (`client.responses.input_tokens.count`): the
create request is translated in full (history, instructions, tools) and counted by the backend's own
`POST /tokenize` (the echo backend counts deterministically, see its docstring); a backend without
one (llm-katan) is a 400 `tokenizer_unavailable` naming it, never an estimate."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest
from openai import OpenAI

from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway, gateway_settings, run_gateway
from tests.support.katan import run_katan

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def _client(gw: Gateway) -> OpenAI:
    return OpenAI(base_url=gw.base_url, api_key="sk-test", max_retries=0)


def _tokenize_requests(echo: EchoBackend) -> list[dict[str, object]]:
    return [r for r in echo.requests() if r["path"] == "/tokenize"]


def test_count_of_a_translated_request(gateway: Gateway, echo: EchoBackend) -> None:
    client = _client(gateway)
    counted = client.responses.input_tokens.count(
        model="qwen3", input="what is the weather in Lima", instructions="be brief", tools=[WEATHER]
    )
    assert counted.object == "response.input_tokens"
    # system (1 + 2 words) + user (1 + 6 words) + 1 tool + the generation prompt
    assert counted.input_tokens == 3 + 7 + 1 + 1
    (sent,) = _tokenize_requests(echo)
    body = sent["body"]
    assert isinstance(body, dict)
    assert body["model"] == "qwen3" and body["add_generation_prompt"] is True
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "what is the weather in Lima"},
    ]
    assert body["tools"][0]["function"]["name"] == "get_weather"  # type: ignore[index]
    assert echo.chat_requests() == []  # nothing generated


def test_count_includes_the_chain_and_stores_nothing(gateway: Gateway, echo: EchoBackend) -> None:
    client = _client(gateway)
    r1 = client.responses.create(model="qwen3", input="one two")
    counted = client.responses.input_tokens.count(model="qwen3", input="three", previous_response_id=r1.id)
    # user "one two" (3) + assistant "echo: one two" (4) + user "three" (2) + generation prompt (1)
    assert counted.input_tokens == 10
    body = _tokenize_requests(echo)[-1]["body"]
    assert isinstance(body, dict) and len(body["messages"]) == 3  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.input_tokens.count(model="qwen3", input="x", previous_response_id="resp_" + "0" * 48)
    assert exc.value.code == "previous_response_not_found"


def test_count_with_a_conversation(memory_gateway: Gateway, echo: EchoBackend) -> None:
    client = _client(memory_gateway)
    conv = client.conversations.create(items=[{"role": "user", "content": "earlier words here"}])
    counted = client.responses.input_tokens.count(model="qwen3", input="now", conversation=conv.id)
    assert counted.input_tokens == (1 + 3) + (1 + 1) + 1


def test_missing_model_is_a_400(memory_gateway: Gateway, echo: EchoBackend) -> None:
    r = httpx.post(f"{memory_gateway.base_url}/responses/input_tokens", json={"input": "hi"}, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["param"] == "model"
    assert _tokenize_requests(echo) == []


@pytest.fixture(scope="module")
def katan_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with run_katan(tmp_path_factory.mktemp("katan-tokens")) as url, run_gateway(gateway_settings(url)) as gw:
        yield gw


def test_a_backend_without_a_tokenizer_is_named(katan_gateway: Gateway) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        _client(katan_gateway).responses.input_tokens.count(model="qwen3", input="hello there")
    assert exc.value.code == "tokenizer_unavailable" and exc.value.param == "model"
    assert "'echo'" in exc.value.message and "/tokenize" in exc.value.message


def test_the_routes_exist(memory_gateway: Gateway) -> None:
    """They answered 405 before (as `POST /v1/responses/{id}`); now they are routes of their own."""
    for path in ("/responses/compact", "/responses/input_tokens"):
        r = httpx.post(f"{memory_gateway.base_url}{path}", json={}, timeout=10)
        assert r.status_code == 400 and r.json()["error"]["param"] == "model"


def test_a_slow_count_ends_at_the_request_deadline(echo: EchoBackend) -> None:
    settings = gateway_settings(echo.base_url)
    settings = settings.model_copy(
        update={"server": settings.server.model_copy(update={"request_timeout_seconds": 0.5})}
    )
    with run_gateway(settings) as gw:
        r = httpx.post(
            f"{gw.base_url}/responses/input_tokens",
            json={"model": "qwen3", "input": "[slow:3000] hi"},
            timeout=10,
        )
    assert r.status_code == 504 and r.json()["error"]["code"] == "request_timeout"
    assert "server.request_timeout_seconds" in r.json()["error"]["message"]


def test_count_of_a_compaction_turn_is_its_context(memory_gateway: Gateway, echo: EchoBackend) -> None:
    body = {"model": "qwen3", "input": [{"role": "user", "content": "a b c"}, {"type": "compaction_trigger"}]}
    r = httpx.post(f"{memory_gateway.base_url}/responses/input_tokens", json=body, timeout=10)
    assert r.status_code == 200 and r.json()["input_tokens"] == (1 + 3) + 1
