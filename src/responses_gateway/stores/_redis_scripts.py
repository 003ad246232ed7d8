"""Lua sources of the Redis store: put (+ ancestor TTL walk), get_chain, delete. One node, one slot.

Each script derives a parent's key from its id with KEY_OF, the Lua twin of KeySchema.key
(tests check that both agree). Scripts are called with EVALSHA, falling back to EVAL on NOSCRIPT.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

# key_of(prefix, id): `<prefix>response:{<tag>}:<id>`; tag = the 16 hex after `resp_` for our ids
# (`resp_` + 48 lowercase hex), else "_" (KeySchema.FOREIGN_TAG).
KEY_OF = """
local function key_of(prefix, id)
  if string.len(id) == 53 and string.match(id, '^resp_[0-9a-f]+$') then
    return prefix .. 'response:{' .. string.sub(id, 6, 21) .. '}:' .. id
  end
  return prefix .. 'response:{_}:' .. id
end
"""

# KEYS[1] record key. ARGV: 1 meta blob ("" for a tombstone), 2 parent id or "", 3 owner, 4 ttl ms, 5
# key prefix, 6 max hops, 7 slack ms, 8 history blob ("" for a tombstone). Writes the record with its
# TTL (a re-put never shortens it), then makes every ancestor expire no earlier than the record.
# Invariant kept by every put: an ancestor never expires before any of its descendants. So the walk
# stops at the first ancestor that already lives >= ttl (all above it do too), at one without expiry,
# or at a missing one; the ancestors below that point are set to the same target: ttl + slack, but
# never beyond the stop point's own expiry (that keeps the invariant). The slack lets the next puts of
# the thread stop after one hop: a full walk happens about once per slack period, not on every turn.
# Idempotent: running it twice leaves the same state. Returns the number of ancestors extended.
PUT = (
    KEY_OF
    + """
local ttl = tonumber(ARGV[4])
local max_hops = tonumber(ARGV[6])
if ARGV[2] ~= '' and redis.call('EXISTS', key_of(ARGV[5], ARGV[2])) == 0 then
  -- the parent is not here: its slot is being migrated to this node (ASK), or it expired since the
  -- chain was read. Write nothing: a child must never outlive a missing parent.
  return redis.error_reply('TRYAGAIN responses-gateway: parent ' .. ARGV[2] .. ' is not on this node')
end
-- One clock for the whole script, and absolute expiry times: Redis 7.0 reads the clock anew for
-- each command of a script, so relative PEXPIREs issued later than a PTTL would drift later.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local own = redis.call('PTTL', KEYS[1])
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'h', ARGV[8], 'p', ARGV[2], 'o', ARGV[3])
if own < ttl then
  redis.call('PEXPIREAT', KEYS[1], now + ttl)
end
local target = now + ttl + tonumber(ARGV[7])
local walked = {}
local parent = ARGV[2]
while parent ~= '' do
  if #walked >= max_hops then
    return redis.error_reply('ERR responses-gateway: chain deeper than ' .. ARGV[6])
  end
  local k = key_of(ARGV[5], parent)
  local left = redis.call('PTTL', k)
  if left == -2 or left == -1 then
    break
  end
  if left >= ttl then
    -- its expiry is at least now + left (PTTL was read at or after `now`): never extend past it
    if now + left < target then
      target = now + left
    end
    break
  end
  walked[#walked + 1] = k
  parent = redis.call('HGET', k, 'p') or ''
end
for i = 1, #walked do
  redis.call('PEXPIREAT', walked[i], target)
end
return #walked
"""
)

# KEYS[1] head key. ARGV: 1 owner, 2 key prefix, 3 max hops.
# Returns {0} when the head is unknown, a tombstone or another owner's, or when any ancestor is
# another owner's (history never includes another owner's turn); else
# {1, "", blob_newest, ..., blob_oldest} (tombstones skipped; each blob is the record's history
# field `h`, or its whole `d` for records written before `h` existed), or {2, missing_id, blobs...} when an
# ancestor is missing (expired or evicted, not deleted).
GET_CHAIN = (
    KEY_OF
    + """
local max_hops = tonumber(ARGV[3])
local head = redis.call('HMGET', KEYS[1], 'd', 'p', 'o', 'h')
if not head[3] or head[3] ~= ARGV[1] or not head[1] or head[1] == '' then
  return {0}
end
local out = {1, '', head[4] or head[1]}
local parent = head[2] or ''
local hops = 0
while parent ~= '' do
  hops = hops + 1
  if hops > max_hops then
    return redis.error_reply('ERR responses-gateway: chain deeper than ' .. ARGV[3])
  end
  local r = redis.call('HMGET', key_of(ARGV[2], parent), 'd', 'p', 'o', 'h')
  if not r[2] then
    out[1] = 2
    out[2] = parent
    return out
  end
  if r[3] ~= ARGV[1] then
    return {0}
  end
  if r[1] and r[1] ~= '' then
    out[#out + 1] = r[4] or r[1]
  end
  parent = r[2]
end
return out
"""
)

# KEYS[1] record key. ARGV: 1 owner. Turns a live record into a tombstone (empty `d` and `h`; `p`,
# `o` and the TTL stay). Returns 1 when it was live and owned by ARGV[1]; 2 when it already was a
# tombstone of that owner (written again, so that a WAIT after a retried delete covers it); else 0.
DELETE = """
local r = redis.call('HMGET', KEYS[1], 'd', 'o')
if not r[2] or r[2] ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'd', '', 'h', '')
if not r[1] or r[1] == '' then
  return 2
end
return 1
"""


@dataclass(frozen=True, slots=True)
class LuaScript:
    """A script's source and SHA1 (what EVALSHA needs)."""

    name: str
    source: str
    sha: str

    @classmethod
    def of(cls, name: str, source: str) -> LuaScript:
        return cls(name, source, hashlib.sha1(source.encode()).hexdigest())


PUT_SCRIPT = LuaScript.of("put", PUT)
GET_CHAIN_SCRIPT = LuaScript.of("get_chain", GET_CHAIN)
DELETE_SCRIPT = LuaScript.of("delete", DELETE)
