"""What background mode needs of every store: a response updated in place (queued -> in_progress
-> settled, by re-putting the same id) and the control state of a run (stores/control.py)."""

from __future__ import annotations

import asyncio

import orjson

from responses_gateway.stores.base import ResponseStore, StoredResponse
from responses_gateway.stores.control import InProcessControl, RedisControl, control_for
from tests.stores.records import history, make_record, put_chain


def _updated(record: StoredResponse, status: str, answer: str) -> StoredResponse:
    response = orjson.loads(record.response)
    response["status"] = status
    response["output"][0]["content"][0]["text"] = answer
    chat = orjson.loads(record.chat)
    chat[-1]["content"] = answer
    return StoredResponse(
        id=record.id,
        previous_response_id=record.previous_response_id,
        response=orjson.dumps(response),
        input_items=record.input_items,
        chat=orjson.dumps(chat),
        owner=record.owner,
        created_at=record.created_at,
    )


async def test_a_re_put_replaces_the_record_in_its_place(store: ResponseStore) -> None:
    chain = await put_chain(store, 3)
    for i in (0, 1, 2):  # a root, a middle turn, the tip
        for status in ("in_progress", "completed"):
            chain[i] = _updated(chain[i], status, f"answer {i} {status}")
            await store.put(chain[i])
            assert await store.get(chain[i].id) == chain[i]
            assert await store.get_history(chain[2].id) == history(chain)
    child = make_record(chain[2])  # the chain goes on from the replaced tip
    await store.put(child)
    assert await store.get_history(child.id) == history([*chain, child])
    branch = make_record(chain[0])  # and branches from a replaced root
    await store.put(branch)
    assert await store.get_history(branch.id) == history([chain[0], branch])


async def test_a_re_put_of_another_owner_does_not_reveal_it(store: ResponseStore) -> None:
    mine = make_record(owner="a")
    await store.put(mine)
    replaced = _updated(mine, "completed", "new")
    await store.put(replaced)
    assert await store.get(mine.id, owner="b") is None
    assert await store.get(mine.id, owner="a") == replaced


async def test_background_control(store: ResponseStore) -> None:
    control = control_for(store)
    rid = make_record().id
    other = make_record().id
    assert await control.heartbeat(rid, 5) is False  # takes the lease; no cancel asked
    state = await control.state(rid)
    assert state.cancel is False
    await control.request_cancel(rid, 60)
    assert await control.heartbeat(rid, 5) is True
    assert (await control.state(rid)).cancel is True
    assert (await control.state(other)).cancel is False  # one response's flag only
    if isinstance(control, RedisControl):
        assert state.leased is True
        assert (await control.state(other)).leased is False
        await control.release(rid)
        assert (await control.state(rid)).leased is False
        await control.heartbeat(other, 0.2)  # a lease not renewed expires
        await asyncio.sleep(0.4)
        assert (await control.state(other)).leased is False
    else:
        assert isinstance(control, InProcessControl)
        assert state.leased is None  # this process cannot tell whether another one's runner lives
