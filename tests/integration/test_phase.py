"""Assistant `phase` (`commentary` / `final_answer`): accepted on input messages, kept in the stored
history and listed unchanged, never sent to the Chat backend; any other value is a 400."""

from __future__ import annotations

import httpx
import openai

from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway
from tests.support.open_responses import check


def test_phase_is_kept_listed_and_not_forwarded(gateway: Gateway, echo: EchoBackend) -> None:
    client = openai.OpenAI(base_url=gateway.base_url, api_key="sk-test", max_retries=0)
    first = client.responses.create(
        model="m",
        input=[
            {"type": "message", "role": "assistant", "phase": "commentary", "content": "checking"},
            {"type": "message", "role": "assistant", "phase": "final_answer", "content": "four"},
            {"type": "message", "role": "user", "content": "phase-marker repeat it"},
        ],
    )
    assert first.status == "completed"
    second = client.responses.create(model="m", previous_response_id=first.id, input="again")
    listed = client.responses.input_items.list(first.id, order="asc")
    assert [getattr(item, "phase", None) for item in listed.data] == ["commentary", "final_answer", None]
    for item in listed.data:
        check("ItemField", item.model_dump(exclude_none=True))
    # the stored history behind `second` still has the phases (its own items are only "again")
    assert [i.content[0].text for i in client.responses.input_items.list(second.id).data] == ["again"]  # type: ignore[union-attr]
    sent = [r["body"] for r in echo.chat_requests() if "phase-marker" in str(r["body"])]
    assert len(sent) >= 2, "the backend did not see both requests"
    for body in sent:
        for message in body["messages"]:
            assert "phase" not in message
    client.close()


def test_unknown_phase_is_a_400(memory_gateway: Gateway) -> None:
    body = {
        "model": "m",
        "input": [{"type": "message", "role": "assistant", "phase": "draft", "content": "x"}],
    }
    resp = httpx.post(f"{memory_gateway.base_url}/responses", json=body, timeout=10)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["param"] == "input[0].phase"
