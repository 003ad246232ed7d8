"""Record builders shared by the store tests: realistic StoredResponse turns with our own ids."""

from __future__ import annotations

from responses_gateway.ids import INPUT_INDEX_BASE, item_id, new_response_id
from responses_gateway.stores.base import ResponseStore, StoredResponse, decode_history, encode_parts

CREATED_AT = 1_700_000_000


def make_record(
    parent: StoredResponse | None = None, *, owner: str = "", text: str = "hello"
) -> StoredResponse:
    """One completed turn: a user message in, an assistant message out, ids derived from the response id."""
    parent_id = parent.id if parent else None
    rid = new_response_id(parent_id)
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
        "output": [
            {
                "id": item_id("msg", rid, 0),
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": f"echo: {text}", "annotations": []}],
            }
        ],
    }
    return StoredResponse(
        id=rid,
        previous_response_id=parent_id,
        input_items=input_items,
        response=response,
        owner=owner,
        created_at=CREATED_AT,
    )


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


class FakeClock:
    """A clock the test moves by hand (`clock.now += 10`), for TTL tests without sleeping."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def light(records: list[StoredResponse]) -> list[StoredResponse]:
    """What `get_chain` returns for these records: id, parent, input and output items only."""
    return [decode_history(encode_parts(r)[1], r.owner) for r in records]
