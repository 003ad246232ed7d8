"""What deleting a turn does to the turns after it, the same on every store (README "Deleting a
turn"): the deleted turn's input and output leave the context of every later turn; the later turns
themselves stay, and chaining on the deleted turn itself is a 400."""

from __future__ import annotations

import openai
import pytest
from openai import OpenAI

from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway


def _client(gw: Gateway) -> OpenAI:
    return OpenAI(base_url=gw.base_url, api_key="sk-test", max_retries=0)


def _sent(echo: EchoBackend) -> list[str]:
    """The contents of the messages the backend received on the last call."""
    return [m["content"] for m in echo.chat_requests()[-1]["body"]["messages"]]


def test_a_deleted_middle_turn_leaves_later_turns_context(gateway: Gateway, echo: EchoBackend) -> None:
    client = _client(gateway)
    one = client.responses.create(model="qwen3", input="one")
    two = client.responses.create(model="qwen3", input="two", previous_response_id=one.id)
    three = client.responses.create(model="qwen3", input="three", previous_response_id=two.id)
    client.responses.delete(two.id)

    four = client.responses.create(model="qwen3", input="four", previous_response_id=three.id)
    assert four.status == "completed"
    assert _sent(echo) == ["one", "echo: one", "three", "echo: three", "four"]  # "two" is gone
    # the later turns themselves are untouched, and still name the deleted one as their parent
    kept = client.responses.retrieve(three.id)
    assert kept.previous_response_id == two.id and kept.output_text == "echo: three"
    assert [i.content[0].text for i in client.responses.input_items.list(three.id).data] == ["three"]  # type: ignore[union-attr]
    # the deleted turn is gone everywhere a client can name it
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(two.id)
    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.create(model="qwen3", input="x", previous_response_id=two.id)
    assert exc.value.code == "previous_response_not_found" and exc.value.param == "previous_response_id"


def test_deleting_the_first_turn_keeps_the_rest(gateway: Gateway, echo: EchoBackend) -> None:
    client = _client(gateway)
    one = client.responses.create(model="qwen3", input="one", instructions="only for turn one")
    two = client.responses.create(model="qwen3", input="two", previous_response_id=one.id)
    client.responses.delete(one.id)
    client.responses.create(model="qwen3", input="three", previous_response_id=two.id)
    assert _sent(echo) == ["two", "echo: two", "three"]
