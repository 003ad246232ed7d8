"""The control state of running background responses: a lease and a cancel request per response.

The replica running a background response renews its lease (`heartbeat`) about every half second;
the same call tells it whether a cancel was asked for (from any replica). A replica that finds a
`queued` / `in_progress` background response whose lease is gone knows its runner died.

- Redis (standalone and cluster): two small keys in the response's hash slot,
  `<prefix>bglease:{<tag>}:<id>` (PX = the lease) and `<prefix>bgcancel:{<tag>}:<id>`; a heartbeat
  is one script call (renew, read the cancel flag): one round trip per running response per poll.
- SQLite: a row per response in the file's `bg_control` table (lease_until, cancel_until; wall-clock
  times), shared by every process on the file (`serve --workers N`, or gateways on one file); a
  heartbeat is one upsert through the store's writer, group-committed with the other writes
  (`SQLiteControl`, stores/_sqlite_background.py). Rows whose lease and flag are both over go with
  the store's periodic purge.
- memory: in this process only (`InProcessControl`): there is no other process to tell
  (`leased` is None).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from responses_gateway.stores._redis_conn import Arg
from responses_gateway.stores._redis_keys import KeySchema, tag_of
from responses_gateway.stores._redis_scripts import LuaScript
from responses_gateway.stores.base import ResponseStore

__all__ = ["BackgroundControl", "ControlState", "InProcessControl", "RedisControl", "control_for"]


@dataclass(frozen=True, slots=True)
class ControlState:
    """`leased`: a runner holds the lease (None: this store cannot tell); `cancel`: a cancel was asked."""

    leased: bool | None
    cancel: bool


class BackgroundControl(Protocol):
    async def heartbeat(self, response_id: str, lease_seconds: float) -> bool:
        """Take or renew the lease; True when a cancel was asked for."""
        ...

    async def request_cancel(self, response_id: str, keep_seconds: float) -> None: ...

    async def state(self, response_id: str) -> ControlState: ...

    async def release(self, response_id: str) -> None:
        """The run is over: drop the lease (a cancel flag expires by itself)."""
        ...


class InProcessControl:
    """For a store whose data is one process's (memory)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._leases: dict[str, float] = {}
        self._cancels: dict[str, float] = {}

    def _purge(self, now: float) -> None:
        for table in (self._leases, self._cancels):
            for key in [k for k, until in table.items() if until < now]:
                del table[key]

    async def heartbeat(self, response_id: str, lease_seconds: float) -> bool:
        now = self._clock()
        self._leases[response_id] = now + lease_seconds
        return self._cancels.get(response_id, -1.0) >= now

    async def request_cancel(self, response_id: str, keep_seconds: float) -> None:
        now = self._clock()
        self._purge(now)
        self._cancels[response_id] = now + keep_seconds

    async def state(self, response_id: str) -> ControlState:
        return ControlState(None, self._cancels.get(response_id, -1.0) >= self._clock())

    async def release(self, response_id: str) -> None:
        self._leases.pop(response_id, None)


# KEYS[1] the lease; ARGV: 1 the cancel flag's key (same slot), 2 what to do, 3 milliseconds.
# heartbeat: renew the lease, answer the cancel flag; cancel: set the flag; state: {lease, flag};
# release: drop the lease.
CONTROL_SCRIPT = LuaScript.of(
    "bg_control",
    """
local op = ARGV[2]
if op == 'heartbeat' then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[3])
  return redis.call('EXISTS', ARGV[1])
elseif op == 'cancel' then
  redis.call('SET', ARGV[1], '1', 'PX', ARGV[3])
  return 1
elseif op == 'state' then
  return {redis.call('EXISTS', KEYS[1]), redis.call('EXISTS', ARGV[1])}
end
redis.call('DEL', KEYS[1])
return 1
""",
)


class ScriptRunner(Protocol):
    """What RedisControl needs of RedisStore (`RedisStore.eval_script`)."""

    @property
    def keys(self) -> KeySchema: ...

    async def eval_script(self, operation: str, script: LuaScript, key: str, args: Sequence[Arg]) -> Any: ...


class RedisControl:
    """Leases and cancel flags as keys in the response's slot, through the store's connection
    (its pool, retries and timeouts)."""

    def __init__(self, store: ScriptRunner) -> None:
        self._store = store
        self._prefix = store.keys.prefix

    async def _run(self, response_id: str, op: str, ms: int = 0) -> Any:
        tag = tag_of(response_id)
        lease = f"{self._prefix}bglease:{{{tag}}}:{response_id}"
        cancel = f"{self._prefix}bgcancel:{{{tag}}}:{response_id}"
        return await self._store.eval_script(f"bg_{op}", CONTROL_SCRIPT, lease, [cancel, op, ms])

    async def heartbeat(self, response_id: str, lease_seconds: float) -> bool:
        return bool(await self._run(response_id, "heartbeat", max(1, int(lease_seconds * 1000))))

    async def request_cancel(self, response_id: str, keep_seconds: float) -> None:
        await self._run(response_id, "cancel", max(1, int(keep_seconds * 1000)))

    async def state(self, response_id: str) -> ControlState:
        lease, cancel = await self._run(response_id, "state")
        return ControlState(bool(lease), bool(cancel))

    async def release(self, response_id: str) -> None:
        await self._run(response_id, "release")


def control_for(store: ResponseStore) -> BackgroundControl:
    """The control of `store` (through an InstrumentedStore wrapper too)."""
    from responses_gateway.stores._sqlite_background import SQLiteControl
    from responses_gateway.stores.redis import RedisStore
    from responses_gateway.stores.sqlite import SQLiteStore

    inner = getattr(store, "inner", store)
    if isinstance(inner, RedisStore):
        return RedisControl(inner)
    if isinstance(inner, SQLiteStore):
        return SQLiteControl(inner)
    return InProcessControl()
