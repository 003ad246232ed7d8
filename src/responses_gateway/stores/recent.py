"""A bounded index of each owner's recent responses on Redis, for `/ui` (written only with `ui.enabled`).

SQLite and memory find recent responses in what they keep already (insertion order); Redis keeps
nothing ordered by owner, so with the UI on every put also runs one small script: `ZADD` of the id,
scored by the time, in the owner's `<prefix>recent:{<digest>}` ZSET, trimmed to the newest `limit`,
expiring with the responses' TTL. One more round trip per create; none when the UI is off.
"""

from __future__ import annotations

import logging
import time

from responses_gateway.errors import StoreUnavailable
from responses_gateway.stores._redis_conn import Arg
from responses_gateway.stores._redis_scripts import LuaScript
from responses_gateway.stores.base import ResponseStore, StoredResponse
from responses_gateway.stores.conversations import ConversationStore
from responses_gateway.stores.redis import RedisStore

log = logging.getLogger("responses_gateway.stores.redis")

RECENT_SCRIPT = LuaScript.of(
    "recent",
    """
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
local extra = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[3])
if extra > 0 then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, extra - 1) end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
""",
)


class RecentIndexStore:
    """`inner` (the service's store), plus the recent index on `redis` after each successful put.
    A failed index write is logged, never failed: the response is stored."""

    def __init__(self, inner: ResponseStore, redis: RedisStore, limit: int) -> None:
        self.inner = inner
        self.backend_name = inner.backend_name
        self._redis = redis
        self._limit = limit
        self._ttl_ms = redis.ttl_seconds * 1000

    @property
    def conversations(self) -> ConversationStore:
        return self.inner.conversations

    async def put(self, record: StoredResponse) -> None:
        await self.inner.put(record)
        key = self._redis.keys.recent(record.owner)
        args: list[Arg] = [repr(time.time()), record.id, self._limit, self._ttl_ms]
        try:
            await self._redis.eval_script("recent", RECENT_SCRIPT, key, args)
        except StoreUnavailable as exc:
            log.warning("recent responses index not updated for %s: %s", record.id, exc)

    async def get(self, response_id: str, *, owner: str = "") -> StoredResponse | None:
        return await self.inner.get(response_id, owner=owner)

    async def get_history(self, response_id: str, *, owner: str = "") -> list[bytes] | None:
        return await self.inner.get_history(response_id, owner=owner)

    async def delete(self, response_id: str, *, owner: str = "") -> bool:
        return await self.inner.delete(response_id, owner=owner)

    async def get_item(self, item_id: str, *, owner: str = "") -> bytes | None:
        return await self.inner.get_item(item_id, owner=owner)

    async def ping(self) -> None:
        await self.inner.ping()

    async def aclose(self) -> None:
        await self.inner.aclose()


def with_recent_index(service_store: ResponseStore, store: ResponseStore, limit: int) -> ResponseStore:
    """`service_store` with the recent index when `store` (the bare backend) is Redis, else unchanged."""
    if isinstance(store, RedisStore):
        return RecentIndexStore(service_store, store, limit)
    return service_store
