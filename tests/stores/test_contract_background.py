"""What background mode needs of every store: a response updated in place (queued -> in_progress
-> settled, by re-putting the same id) and the control state of a run (stores/control.py)."""

from __future__ import annotations

import asyncio

import orjson

from responses_gateway.stores.base import ResponseStore, StoredResponse
from responses_gateway.stores.control import InProcessControl, RedisControl, control_for
from responses_gateway.stores.events import LoggedEvent, event_log_for
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


def _events(*seqs: int) -> list[LoggedEvent]:
    return [LoggedEvent(s, "response.output_text.delta", b'{"sequence_number":%d}' % s) for s in seqs]


async def test_event_log(store: ResponseStore) -> None:
    log = event_log_for(store)
    rid, other = make_record().id, make_record().id
    assert await log.read(rid, -1, 100) == (False, [])
    await log.append(rid, _events(0, 1, 2), 60)
    await log.append(rid, _events(2, 3), 60)  # a retried batch: the kept event is skipped
    await log.append(rid, _events(4), 60)
    assert await log.read(rid, -1, 100) == (True, _events(0, 1, 2, 3, 4))
    assert await log.read(rid, 1, 100) == (True, _events(2, 3, 4))
    assert await log.read(rid, 1, 2) == (True, _events(2, 3))
    assert await log.read(rid, 4, 100) == (True, [])
    assert await log.read(other, -1, 100) == (False, [])
    await log.append(other, _events(0), 0.2)  # kept this long after its last event
    assert (await log.read(other, -1, 10))[0] is True
    await asyncio.sleep(0.4)
    assert await log.read(other, -1, 10) == (False, [])
    assert await log.read(rid, 3, 10) == (True, _events(4))
