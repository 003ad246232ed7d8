"""The event log of background responses: their stream events, kept for a bounded time so that any
replica can replay them (`GET /v1/responses/{id}?stream=true&starting_after=N`).

Each event is kept as (sequence number, type, JSON). The log of a response lives `keep_seconds`
after its last event (`response_api.background.events_keep_seconds`).

- Redis (standalone and cluster): a Redis Stream `<prefix>bgevents:{<tag>}:<id>` in the response's
  slot, entry id `0-<sequence number + 1>` (so `starting_after=N` is the range `(0-<N+1> +`); one
  script call per batch of events (the events made together) and one per read.
- SQLite: rows of the file's `bg_events` table keyed by (response, sequence number), each log's
  expiry in `bg_event_logs`; one writer job per batch, one range read per read; every process on
  the file reads them (`SQLiteEventLog`, stores/_sqlite_background.py). Expired logs go with the
  store's periodic purge.
- memory: in this process only (`InProcessEventLog`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from responses_gateway.stores._redis_conn import Arg
from responses_gateway.stores._redis_keys import tag_of
from responses_gateway.stores._redis_scripts import LuaScript
from responses_gateway.stores.base import ResponseStore
from responses_gateway.stores.control import ScriptRunner

__all__ = ["EventLog", "InProcessEventLog", "LoggedEvent", "RedisEventLog", "event_log_for"]


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    sequence_number: int
    type: str
    data: bytes  # the event's JSON, as it was streamed


class EventLog(Protocol):
    async def append(self, response_id: str, events: Sequence[LoggedEvent], keep_seconds: float) -> None:
        """Add events (increasing sequence numbers; one already kept is skipped: retries are safe)."""
        ...

    async def read(self, response_id: str, after: int, limit: int) -> tuple[bool, list[LoggedEvent]]:
        """(whether the log exists, up to `limit` events with a sequence number above `after`)."""
        ...


@dataclass(slots=True)
class _Log:
    expires_at: float
    events: list[LoggedEvent] = field(default_factory=list)


class InProcessEventLog:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._logs: dict[str, _Log] = {}

    def _purge(self, now: float) -> None:
        for key in [k for k, log in self._logs.items() if log.expires_at < now]:
            del self._logs[key]

    async def append(self, response_id: str, events: Sequence[LoggedEvent], keep_seconds: float) -> None:
        now = self._clock()
        log = self._logs.get(response_id)
        if log is None or log.expires_at < now:
            self._purge(now)
            log = self._logs[response_id] = _Log(now + keep_seconds)
        log.expires_at = now + keep_seconds
        last = log.events[-1].sequence_number if log.events else -1
        log.events.extend(e for e in events if e.sequence_number > last)

    async def read(self, response_id: str, after: int, limit: int) -> tuple[bool, list[LoggedEvent]]:
        log = self._logs.get(response_id)
        if log is None or log.expires_at < self._clock():
            return False, []
        events = log.events
        lo, hi = 0, len(events)  # the first event above `after` (sequence numbers increase)
        while lo < hi:
            mid = (lo + hi) // 2
            if events[mid].sequence_number <= after:
                lo = mid + 1
            else:
                hi = mid
        return True, events[lo : lo + limit]


# KEYS[1] the stream. APPEND: ARGV 1 'append', 2 keep ms, then (id, type, data) triples.
# READ: ARGV 1 'read', 2 the exclusive start id, 3 count: {exists, entries}.
EVENTS_SCRIPT = LuaScript.of(
    "bg_events",
    """
if ARGV[1] == 'append' then
  for i = 3, #ARGV, 3 do
    redis.pcall('XADD', KEYS[1], ARGV[i], 't', ARGV[i + 1], 'd', ARGV[i + 2])
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
local exists = redis.call('EXISTS', KEYS[1])
if exists == 0 then
  return {0, {}}
end
return {1, redis.call('XRANGE', KEYS[1], ARGV[2], '+', 'COUNT', ARGV[3])}
""",
)


class RedisEventLog:
    def __init__(self, store: ScriptRunner) -> None:
        self._store = store
        self._prefix = store.keys.prefix

    def _key(self, response_id: str) -> str:
        return f"{self._prefix}bgevents:{{{tag_of(response_id)}}}:{response_id}"

    async def append(self, response_id: str, events: Sequence[LoggedEvent], keep_seconds: float) -> None:
        args: list[Arg] = ["append", max(1, int(keep_seconds * 1000))]
        for e in events:
            args += [f"0-{e.sequence_number + 1}", e.type, e.data]
        await self._store.eval_script("bg_events_append", EVENTS_SCRIPT, self._key(response_id), args)

    async def read(self, response_id: str, after: int, limit: int) -> tuple[bool, list[LoggedEvent]]:
        start = f"(0-{after + 1}" if after >= 0 else "-"
        args: list[Arg] = ["read", start, limit]
        exists, entries = await self._store.eval_script(
            "bg_events_read", EVENTS_SCRIPT, self._key(response_id), args
        )
        events = []
        for entry_id, fields in entries:
            values = dict(zip(fields[::2], fields[1::2], strict=True))
            seq = int(entry_id.split(b"-", 1)[1]) - 1
            events.append(LoggedEvent(seq, values[b"t"].decode(), values[b"d"]))
        return bool(exists), events


def event_log_for(store: ResponseStore) -> EventLog:
    """The event log of `store` (through an InstrumentedStore wrapper too)."""
    from responses_gateway.stores._sqlite_background import SQLiteEventLog
    from responses_gateway.stores.redis import RedisStore
    from responses_gateway.stores.sqlite import SQLiteStore

    inner = getattr(store, "inner", store)
    if isinstance(inner, RedisStore):
        return RedisEventLog(inner)
    if isinstance(inner, SQLiteStore):
        return SQLiteEventLog(inner)
    return InProcessEventLog()
