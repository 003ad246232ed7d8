"""Retention through the gateway: a response expires after ttl_seconds (then it is "not found", like a
deleted one), while a chain that keeps growing keeps its oldest turn alive."""

from __future__ import annotations

import time
from pathlib import Path

import openai
import pytest
from openai import OpenAI

from tests.integration.conftest import STORES, store_block
from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import gateway_settings, run_gateway


@pytest.mark.parametrize("kind", STORES)
def test_ttl_expiry_and_live_chain(
    kind: str, request: pytest.FixtureRequest, echo: EchoBackend, tmp_path: Path
) -> None:
    settings = gateway_settings(echo.base_url, store_block(kind, request, tmp_path), ttl_seconds=2)
    with run_gateway(settings) as gw:
        client = OpenAI(base_url=gw.base_url, api_key="sk-test", max_retries=0)
        lonely = client.responses.create(model="qwen3", input="forget me")
        root = client.responses.create(model="qwen3", input="root")
        tip = root
        for i in range(3):  # 3 x 0.9 s: the root is older than the TTL by the end
            time.sleep(0.9)
            tip = client.responses.create(model="qwen3", input=f"turn {i}", previous_response_id=tip.id)
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(lonely.id)
        with pytest.raises(openai.BadRequestError) as exc:
            client.responses.create(model="qwen3", input="x", previous_response_id=lonely.id)
        assert exc.value.code == "previous_response_not_found"
        # the root is older than the TTL but its chain is live: still there, still chainable
        assert client.responses.retrieve(root.id).id == root.id
        client.responses.create(model="qwen3", input="more", previous_response_id=tip.id)
        msgs = echo.chat_requests()[-1]["body"]["messages"]
        assert msgs[0] == {"role": "user", "content": "root"}
