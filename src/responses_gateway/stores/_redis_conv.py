"""Conversations in the Redis store: three keys per conversation, all in its own hash slot.

`<prefix>conv:{<conversation id>}` HASH (o owner, t created_at, m metadata, n items ever appended),
`…:seq` ZSET (item id scored by its position) and `…:items` HASH (item id -> item JSON). A page is a
ZRANGEBYSCORE with LIMIT plus one HMGET: an index read, never SCAN/KEYS, whatever the length. Every
operation is one script (atomic on its node); with conversation_ttl_seconds set, each write sets the
three keys to expire that long after it, otherwise they never expire.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from responses_gateway.stores._redis_conn import Arg
from responses_gateway.stores._redis_scripts import LuaScript
from responses_gateway.stores.conversations import (
    ConversationItem,
    ItemsPage,
    Order,
    StoredConversation,
)

if TYPE_CHECKING:
    from responses_gateway.stores.redis import RedisStore

__all__ = ["CONVERSATION_SCRIPTS", "RedisConversations"]

# Shared: keys of the conversation, the owner check, expiry, appending a batch.
_COMMON = """
local k = KEYS[1]
local z, h = k .. ':seq', k .. ':items'
local function owned(owner)
  return redis.call('HGET', k, 'o') == owner
end
local function expire(ttl)
  if tonumber(ttl) > 0 then
    redis.call('PEXPIRE', k, ttl)
    redis.call('PEXPIRE', z, ttl)
    redis.call('PEXPIRE', h, ttl)
  end
end
-- ARGV[first], ARGV[first + 1], ...: item id, item JSON pairs; the batch takes consecutive positions
local function append(first)
  local count = (#ARGV - first + 1) / 2
  if count < 1 then
    return
  end
  if redis.call('HEXISTS', h, ARGV[first]) == 1 then
    return -- a retried append that was applied (item ids are never reused in a conversation)
  end
  local n = redis.call('HINCRBY', k, 'n', count) - count
  for i = 0, count - 1 do
    redis.call('ZADD', z, n + i, ARGV[first + 2 * i])
    redis.call('HSET', h, ARGV[first + 2 * i], ARGV[first + 2 * i + 1])
  end
end
"""

# ARGV: 1 owner, 2 created_at, 3 metadata, 4 ttl ms (0: none), 5.. items
CREATE = (
    _COMMON
    + """
if redis.call('EXISTS', k) == 1 then
  if not owned(ARGV[1]) then
    return redis.error_reply('ERR responses-gateway: conversation id taken')
  end
  return 1 -- a retried create that was applied
end
redis.call('HSET', k, 'o', ARGV[1], 't', ARGV[2], 'm', ARGV[3], 'n', 0)
append(5)
expire(ARGV[4])
return 1
"""
)

# ARGV: 1 owner. {o, t, m} or {} for unknown / another owner's.
GET = (
    _COMMON
    + """
if not owned(ARGV[1]) then
  return {}
end
return redis.call('HMGET', k, 'o', 't', 'm')
"""
)

# ARGV: 1 owner, 2 metadata, 3 ttl ms. The created_at, or 0 when unknown.
UPDATE = (
    _COMMON
    + """
if not owned(ARGV[1]) then
  return 0
end
redis.call('HSET', k, 'm', ARGV[2])
expire(ARGV[3])
return tonumber(redis.call('HGET', k, 't'))
"""
)

# ARGV: 1 owner
DELETE = (
    _COMMON
    + """
if not owned(ARGV[1]) then
  return 0
end
redis.call('UNLINK', k, z, h) -- the items are freed in the background
return 1
"""
)

# ARGV: 1 owner, 2 ttl ms, 3.. items
APPEND = (
    _COMMON
    + """
if not owned(ARGV[1]) then
  return 0
end
append(3)
expire(ARGV[2])
return 1
"""
)

# ARGV: 1 owner, 2 limit (-1: all), 3 "asc" / "desc", 4 after item id or "".
# {0}: unknown; {2}: `after` is not an item of it; {1, has_more, ids, items}.
LIST = (
    _COMMON
    + """
if not owned(ARGV[1]) then
  return {0}
end
local limit, asc, after = tonumber(ARGV[2]), ARGV[3] == 'asc', ARGV[4]
local bound = nil
if after ~= '' then
  local s = redis.call('ZSCORE', z, after)
  if not s then
    return {2}
  end
  bound = '(' .. s
end
local ids
if asc then
  if limit >= 0 then
    ids = redis.call('ZRANGEBYSCORE', z, bound or '-inf', '+inf', 'LIMIT', 0, limit + 1)
  else
    ids = redis.call('ZRANGEBYSCORE', z, bound or '-inf', '+inf')
  end
elseif limit >= 0 then
  ids = redis.call('ZREVRANGEBYSCORE', z, bound or '+inf', '-inf', 'LIMIT', 0, limit + 1)
else
  ids = redis.call('ZREVRANGEBYSCORE', z, bound or '+inf', '-inf')
end
local more = 0
if limit >= 0 and #ids > limit then
  more = 1
  ids[#ids] = nil
end
local items = {}
for i = 1, #ids, 1000 do -- HMGET in chunks: Lua's unpack has a stack limit
  local chunk = {}
  for j = i, math.min(i + 999, #ids) do
    chunk[#chunk + 1] = ids[j]
  end
  local got = redis.call('HMGET', h, unpack(chunk))
  for j = 1, #got do
    items[#items + 1] = got[j]
  end
end
return {1, more, ids, items}
"""
)

# ARGV: 1 owner, 2 item id. The item JSON, or false.
GET_ITEM = (
    _COMMON
    + """
if not owned(ARGV[1]) then
  return false
end
return redis.call('HGET', h, ARGV[2])
"""
)

# ARGV: 1 owner, 2 item id, 3 ttl ms. 1 when deleted.
DELETE_ITEM = (
    _COMMON
    + """
if not owned(ARGV[1]) then
  return 0
end
if redis.call('ZREM', z, ARGV[2]) == 0 then
  return 0
end
redis.call('HDEL', h, ARGV[2])
expire(ARGV[3])
return 1
"""
)

_CREATE = LuaScript.of("conv_create", CREATE)
_GET = LuaScript.of("conv_get", GET)
_UPDATE = LuaScript.of("conv_update", UPDATE)
_DELETE = LuaScript.of("conv_delete", DELETE)
_APPEND = LuaScript.of("conv_append", APPEND)
_LIST = LuaScript.of("conv_list", LIST)
_GET_ITEM = LuaScript.of("conv_get_item", GET_ITEM)
_DELETE_ITEM = LuaScript.of("conv_delete_item", DELETE_ITEM)
CONVERSATION_SCRIPTS = (_CREATE, _GET, _UPDATE, _DELETE, _APPEND, _LIST, _GET_ITEM, _DELETE_ITEM)


def _flat(items: Sequence[ConversationItem]) -> list[Arg]:
    return [part for item in items for part in item]


class RedisConversations:
    """The ConversationStore of a RedisStore (its connection, retries, WAIT and error mapping)."""

    def __init__(self, store: RedisStore, ttl_seconds: int | None) -> None:
        self._store = store
        self._ttl_ms = 0 if ttl_seconds is None else ttl_seconds * 1000

    def _key(self, conversation_id: str) -> str:
        return f"{self._store.keys.prefix}conv:{{{conversation_id}}}"

    async def _write(self, op: str, script: LuaScript, cid: str, args: list[Arg]) -> Any:
        return await self._store.run_script(op, script, self._key(cid), args, write=True)

    async def _read(self, op: str, script: LuaScript, cid: str, args: list[Arg]) -> Any:
        return await self._store.run_script(op, script, self._key(cid), args, write=False)

    async def create(self, conversation: StoredConversation, items: Sequence[ConversationItem]) -> None:
        c = conversation
        args: list[Arg] = [c.owner, c.created_at, c.metadata, self._ttl_ms, *_flat(items)]
        await self._write("conversation_create", _CREATE, c.id, args)

    async def get(self, conversation_id: str, *, owner: str) -> StoredConversation | None:
        reply = await self._read("conversation_get", _GET, conversation_id, [owner])
        if not reply:
            return None
        return StoredConversation(conversation_id, owner, int(reply[1]), bytes(reply[2]))

    async def update(self, conversation_id: str, metadata: bytes, *, owner: str) -> StoredConversation | None:
        args: list[Arg] = [owner, metadata, self._ttl_ms]
        created = int(await self._write("conversation_update", _UPDATE, conversation_id, args))
        return StoredConversation(conversation_id, owner, created, metadata) if created else None

    async def delete(self, conversation_id: str, *, owner: str) -> bool:
        return int(await self._write("conversation_delete", _DELETE, conversation_id, [owner])) == 1

    async def append(self, conversation_id: str, items: Sequence[ConversationItem], *, owner: str) -> bool:
        args: list[Arg] = [owner, self._ttl_ms, *_flat(items)]
        return int(await self._write("conversation_append", _APPEND, conversation_id, args)) == 1

    async def list_items(
        self,
        conversation_id: str,
        *,
        owner: str,
        limit: int | None,
        order: Order = "asc",
        after: str | None = None,
    ) -> ItemsPage | None:
        args: list[Arg] = [owner, -1 if limit is None else limit, order, after or ""]
        reply = await self._read("conversation_list", _LIST, conversation_id, args)
        status = int(reply[0])
        if status == 0:
            return None
        if status == 2:
            return ItemsPage(after_missing=True)
        ids = [bytes(i).decode() for i in reply[2]]
        return ItemsPage([(i, bytes(v)) for i, v in zip(ids, reply[3], strict=True)], bool(int(reply[1])))

    async def get_item(self, conversation_id: str, item_id: str, *, owner: str) -> bytes | None:
        reply = await self._read("conversation_get_item", _GET_ITEM, conversation_id, [owner, item_id])
        return bytes(reply) if reply else None

    async def delete_item(self, conversation_id: str, item_id: str, *, owner: str) -> bool:
        args: list[Arg] = [owner, item_id, self._ttl_ms]
        return int(await self._write("conversation_delete_item", _DELETE_ITEM, conversation_id, args)) == 1
