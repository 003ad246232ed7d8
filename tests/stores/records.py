"""Record builders shared by the store tests: realistic StoredResponse turns (bytes) with our own ids."""

from __future__ import annotations

from typing import Any

import orjson

from responses_gateway.ids import INPUT_INDEX_BASE, item_id, new_response_id
from responses_gateway.stores.base import ResponseStore, StoredResponse

CREATED_AT = 1_700_000_000


def make_record(
    parent: StoredResponse | None = None,
    *,
    owner: str = "",
    text: str = "hello",
    output_text: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> StoredResponse:
    """One completed turn: a user message in, an assistant message out (`echo: <text>` unless
    `output_text`), ids derived from the response id, and the Chat messages the turn adds."""
    parent_id = parent.id if parent else None
    rid = new_response_id(parent_id)
    answer = f"echo: {text}" if output_text is None else output_text
    input_items = [
        {
            "id": item_id("msg", rid, INPUT_INDEX_BASE),
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        }
    ]
    response = {
        "id": rid,
        "object": "response",
        "created_at": CREATED_AT,
        "status": "completed",
        "model": "test-model",
        "previous_response_id": parent_id,
        "metadata": metadata or {},
        "output": [
            {
                "id": item_id("msg", rid, 0),
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": answer, "annotations": []}],
            }
        ],
    }
    chat = [{"role": "user", "content": text}, {"role": "assistant", "content": answer}]
    return StoredResponse(
        id=rid,
        previous_response_id=parent_id,
        response=orjson.dumps(response),
        input_items=orjson.dumps(input_items),
        chat=orjson.dumps(chat),
        owner=owner,
        created_at=CREATED_AT,
    )


def output_item(record: StoredResponse, index: int = 0) -> bytes:
    """The JSON of one output item of `record`, as get_item returns it."""
    return orjson.dumps(orjson.loads(record.response)["output"][index])


def input_item(record: StoredResponse, index: int = 0) -> bytes:
    """The JSON of one input item of `record`, as get_item returns it."""
    return orjson.dumps(orjson.loads(record.input_items)[index])


def output_id(record: StoredResponse, index: int = 0) -> str:
    item: str = orjson.loads(record.response)["output"][index]["id"]
    return item


async def put_chain(
    store: ResponseStore, depth: int, *, parent: StoredResponse | None = None, owner: str = ""
) -> list[StoredResponse]:
    """Write `depth` turns, each the child of the previous one; return them oldest first."""
    chain: list[StoredResponse] = []
    for i in range(depth):
        record = make_record(chain[-1] if chain else parent, owner=owner, text=f"turn {i}")
        await store.put(record)
        chain.append(record)
    return chain


def history(records: list[StoredResponse]) -> list[bytes]:
    """What `get_history` returns for a chain of these (live, not deleted) records."""
    return [r.chat for r in records]


def join_history(turns: list[bytes]) -> bytes:
    """The messages of several turns' `chat` arrays as one JSON array (what the service sends
    upstream; it joins them in translate/request.py, stores only keep and return the turns)."""
    return orjson.dumps([message for turn in turns for message in orjson.loads(turn)])


class FakeClock:
    """A clock the test moves by hand (`clock.now += 10`), for TTL tests without sleeping."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
