"""Lua sources of the Redis store (put, history, delete), each run on one node in one slot.

A thread is a tree of branch segments: LISTs whose element 0 is a header and whose elements 1.. are
the `chat` blobs of consecutive turns. See docs/STORE-LAYOUT.md for the layout and its costs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

# key_of(prefix, kind, id): `<prefix><kind>:{<tag>}:<id>`; tag = the 16 hex after `resp_` for our
# ids (`resp_` + 48 lowercase hex), else "_" (FOREIGN_TAG). kind is 'response' or 'seg'.
KEY_OF = """
local function key_of(prefix, kind, id)
  if string.len(id) == 53 and string.match(id, '^resp_[0-9a-f]+$') then
    return prefix .. kind .. ':{' .. string.sub(id, 6, 21) .. '}:' .. id
  end
  return prefix .. kind .. ':{_}:' .. id
end
"""

# Response HASH fields: r response, i input items, c chat (all three "" once deleted: a tombstone),
# o owner, p parent id ("" for a root), t created_at, s segment id, x index of the turn in its segment.
# `c` is also in the segment (history reads need it there); the copy here makes `get` one HMGET that
# does not depend on the segment.
# Segment LIST: [header, chat of turn 1, chat of turn 2, ...]; a deleted turn's chat is "".
# Header: "" for a thread's root segment; "<offset> <parent segment id>" for a branch (its turn 1
# is a child of element <offset> of the parent segment); "!" when that parent is another owner's
# (the branch then has no readable history); "?<parent id>" when the parent was already gone (expired
# or evicted) when the turn was written (its history is incomplete).

# KEYS[1] the parent's key (the record's for a root): declared so that, while its slot migrates,
# Redis routes the call to the node that holds the parent (ASK). ARGV: 1 response, 2 input items,
# 3 chat, 4 owner, 5 created_at, 6 parent id or "", 7 ttl ms, 8 slack ms, 9 key prefix, 10 max hops,
# 11 record id.
# A new turn whose parent is the tip of its segment is appended to it (RPUSH); any other turn starts
# a segment. A re-put (a retried write that was applied) keeps its place and appends nothing. Where the
# place of the turn is fixed whether or not it was written before (element 1 of its own segment for a
# root; element <parent's + 1> of the parent's segment when the parent is its tip, which it would not
# be had this turn been appended there already) the record's key is not read: HSET's count of new
# fields tells whether it is new. Elsewhere (branches) it is read first (HMGET s x).
# TTL: the record lives ttl. Invariant kept by every put: an ancestor (turn or segment) never expires
# before a descendant, and a segment never before a turn in it. So the walk up the parents stops at
# the first one that already lives >= ttl, at one without expiry, or at a missing one; the turns
# below that point, and their segments, are set to ttl + slack, never beyond the stop point's own
# expiry. With the slack the next puts of a thread stop after one or two hops: O(1) amortised.
# A key that may exist already is only ever extended (PEXPIREAT to a later time), never shortened.
# One clock (TIME) and absolute expiries: Redis 7.0 reads the clock anew for every command.
PUT = (
    KEY_OF
    + """
local prefix, parent, owner, chat = ARGV[9], ARGV[6], ARGV[4], ARGV[3]
local ttl, max_hops, id = tonumber(ARGV[7]), tonumber(ARGV[10]), ARGV[11]
local key = key_of(prefix, 'response', id)
local pr = nil
if parent ~= '' then
  pr = redis.call('HMGET', KEYS[1], 'o', 's', 'x', 'p')
  if not pr[1] then
    pr = nil -- gone (expired or evicted) since the chain was read: the turn's history is incomplete
  end
end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local function extend(key, at)
  local left = redis.call('PTTL', key)
  if left >= 0 and now + left < at then
    redis.call('PEXPIREAT', key, at)
  end
end
local function expire(key, new)
  if new then
    redis.call('PEXPIREAT', key, now + ttl)
  else
    extend(key, now + ttl)
  end
end
-- the whole record; true when its key is new (a put writes every field: none added = it existed)
local function write(seg, idx)
  return redis.call('HSET', key, 'r', ARGV[1], 'i', ARGV[2], 'c', chat, 'o', owner, 'p', parent,
    't', ARGV[5], 's', seg, 'x', idx) > 0
end
-- element 1 of a segment of its own, after `header`: a fresh list, or one left from an earlier life of
-- this id (its segment outlived its record, or a root's retried put) rewritten in place
local function own_segment(header)
  local sk = key_of(prefix, 'seg', id)
  local n = redis.call('RPUSH', sk, header, chat)
  if n > 2 then
    redis.call('LTRIM', sk, 0, n - 3)
    redis.call('LSET', sk, 0, header)
    redis.call('LSET', sk, 1, chat)
  end
  expire(sk, n == 2)
  expire(key, write(id, 1))
end
local px = pr and tonumber(pr[3])
if parent == '' then
  own_segment('')
elseif pr and pr[1] == owner and redis.call('LLEN', key_of(prefix, 'seg', pr[2])) == px + 1 then
  redis.call('RPUSH', key_of(prefix, 'seg', pr[2]), chat)
  expire(key, write(pr[2], px + 1))
else
  local placed = redis.call('HMGET', key, 's', 'x')
  if placed[1] then
    redis.call('HSET', key, 'r', ARGV[1], 'i', ARGV[2], 'c', chat, 'o', owner, 't', ARGV[5])
    local sk = key_of(prefix, 'seg', placed[1])
    redis.pcall('LSET', sk, tonumber(placed[2]), chat)
    extend(key, now + ttl)
    extend(sk, now + ttl)
  elseif not pr then
    own_segment('?' .. parent)
  elseif pr[1] ~= owner then
    own_segment('!')
  else
    own_segment(px .. ' ' .. pr[2])
  end
end
local target = now + ttl + tonumber(ARGV[8])
local walked, segs = {}, {}
local info, cur, last_x, stopped = pr, parent, nil, false
if not pr then
  cur = ''
end
while cur ~= '' do
  if #walked >= max_hops then
    return redis.error_reply('ERR responses-gateway: chain deeper than ' .. ARGV[10])
  end
  local k = key_of(prefix, 'response', cur)
  local left = redis.call('PTTL', k)
  if left == -2 or left == -1 then
    break
  end
  if left >= ttl then
    if now + left < target then
      target = now + left
    end
    stopped = true
    break
  end
  info = info or redis.call('HMGET', k, 'o', 's', 'x', 'p')
  walked[#walked + 1] = k
  if info[2] and info[2] ~= segs[#segs] then
    segs[#segs + 1] = info[2]
  end
  last_x = tonumber(info[3])
  cur = info[4] or ''
  info = nil
end
for i = 1, #walked do
  redis.call('PEXPIREAT', walked[i], target)
end
-- the segment of the turn the walk stopped at already lives as long as that turn
local n = #segs
if stopped and last_x and last_x > 1 then
  n = n - 1
end
for i = 1, n do
  extend(key_of(prefix, 'seg', segs[i]), target)
end
return #walked
"""
)

# KEYS[1] head key. ARGV: 1 owner, 2 key prefix, 3 max segments. One LRANGE per segment on the path.
# Returns {0} when the head is unknown, deleted or another owner's, or its path crosses another
# owner's turn; {2, id} when a segment on the path is missing (expired or evicted; id = its first
# turn's) or a turn on it was written after its parent was gone (id = that parent's);
# else {1, segment_oldest, ..., segment_head}: each the LRANGE of a segment on the path (its header,
# then its turns' chat blobs up to the path's turn; "" for a deleted turn).
HISTORY = (
    KEY_OF
    + """
local head = redis.call('HMGET', KEYS[1], 'o', 's', 'x')
if not head[1] or head[1] ~= ARGV[1] or not head[2] then
  return {0}
end
local parts = {}
local seg, upto = head[2], tonumber(head[3])
while true do
  if #parts >= tonumber(ARGV[3]) then
    return redis.error_reply('ERR responses-gateway: more segments than ' .. ARGV[3])
  end
  local l = redis.call('LRANGE', key_of(ARGV[2], 'seg', seg), 0, upto)
  if #l < upto + 1 then
    return {2, seg}
  end
  if #parts == 0 and l[upto + 1] == '' then
    return {0}
  end
  parts[#parts + 1] = l
  local h = l[1]
  if h == '' then
    break
  end
  if string.sub(h, 1, 1) == '?' then
    return {2, string.sub(h, 2)}
  end
  local offset, parent_seg = string.match(h, '^(%d+) (.*)$')
  if not offset then
    return {0}
  end
  seg, upto = parent_seg, tonumber(offset)
end
-- the LRANGE replies as they are, oldest segment first: copying elements in Lua costs ~1 us each
local out = {1}
for i = #parts, 1, -1 do
  out[#out + 1] = parts[i]
end
return out
"""
)

# KEYS[1] record key. ARGV: 1 owner, 2 key prefix. Tombstones the record (empty `r`, `i`, `c`, its
# chat "" in its segment; place, owner and TTL stay). Returns 1 when it was live and ARGV[1]'s; 2 when
# already a tombstone of that owner (written again, so that a WAIT after a retried delete covers it).
DELETE = (
    KEY_OF
    + """
local r = redis.call('HMGET', KEYS[1], 'o', 's', 'x')
if not r[1] or r[1] ~= ARGV[1] then
  return 0
end
local was = redis.call('HSTRLEN', KEYS[1], 'r')
redis.call('HSET', KEYS[1], 'r', '', 'i', '', 'c', '')
if r[2] then
  redis.pcall('LSET', key_of(ARGV[2], 'seg', r[2]), tonumber(r[3]), '')
end
if was == 0 then
  return 2
end
return 1
"""
)


# KEYS[1] record key. ARGV: 1 owner. The record's fields o r i c p t when it is ARGV[1]'s (a tombstone
# too: `r` empty), else an empty array. Only the owner field of another owner's record is read, so it
# costs what an unknown id costs and none of its bytes leave Redis (no timing tells the two apart).
GET = """
if redis.call('HGET', KEYS[1], 'o') ~= ARGV[1] then
  return {}
end
return redis.call('HMGET', KEYS[1], 'o', 'r', 'i', 'c', 'p', 't')
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
HISTORY_SCRIPT = LuaScript.of("history", HISTORY)
DELETE_SCRIPT = LuaScript.of("delete", DELETE)
GET_SCRIPT = LuaScript.of("get", GET)


# --- the rate limiter's (responses_gateway.ratelimit.redis_limiter) ------------------------------
# A tenant's keys: `<prefix>rl:{<tenant>}:rpm` (a string: the GCRA's theoretical arrival time, in
# microseconds of Redis' clock) and `<prefix>rl:{<tenant>}:streams` (a sorted set: open stream ids
# scored by lease expiry, in microseconds). Both in the tenant's slot; expired leases (a replica that
# died holding them) are removed by every script that reads the set.
RL_NOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
"""

# KEYS[1] the rpm key. ARGV: 1 requests per minute (0: unlimited), 2 concurrent streams (0: no slot
# wanted), 3 stream id, 4 lease ms, 5 the streams key. Takes nothing unless everything is allowed.
# Returns {0} admitted; {1, used, retry ms} requests per minute reached; {2, used, retry ms} streams.
RL_ADMIT = (
    RL_NOW
    + """
local rpm, slots, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[4])
local sk = ARGV[5]
if slots > 0 then
  redis.call('ZREMRANGEBYSCORE', sk, '-inf', now)
  local open = redis.call('ZCARD', sk)
  if open >= slots and not redis.call('ZSCORE', sk, ARGV[3]) then
    return {2, open, 1000}
  end
end
if rpm > 0 then
  local interval = 60000000 / rpm
  local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
  if tat < now then
    tat = now
  end
  local allowed_at = tat + interval - 60000000
  if allowed_at > now then
    local used = math.ceil((tat - now) / interval - 0.000001)
    return {1, used, math.ceil((allowed_at - now) / 1000)}
  end
  tat = tat + interval
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
end
if slots > 0 then
  redis.call('ZADD', sk, string.format('%.0f', now + lease * 1000), ARGV[3])
  redis.call('PEXPIRE', sk, 2 * lease)
end
return {0}
"""
)

# KEYS[1] the streams key. ARGV: 1 lease ms, 2.. the ids of streams this replica still runs (their
# leases renewed; re-added if they had expired while Redis was unreachable). Returns the open count.
RL_RENEW = (
    RL_NOW
    + """
local lease = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local expiry = string.format('%.0f', now + lease * 1000)
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], expiry, ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], 2 * lease)
return redis.call('ZCARD', KEYS[1])
"""
)

# KEYS[1] the streams key. ARGV: 1 a stream id. Its slot is given back.
RL_RELEASE = """
return redis.call('ZREM', KEYS[1], ARGV[1])
"""

RL_ADMIT_SCRIPT = LuaScript.of("rl_admit", RL_ADMIT)
RL_RENEW_SCRIPT = LuaScript.of("rl_renew", RL_RENEW)
RL_RELEASE_SCRIPT = LuaScript.of("rl_release", RL_RELEASE)
# every script, loaded on every master at start-up
SCRIPTS = (
    PUT_SCRIPT,
    HISTORY_SCRIPT,
    DELETE_SCRIPT,
    GET_SCRIPT,
    RL_ADMIT_SCRIPT,
    RL_RENEW_SCRIPT,
    RL_RELEASE_SCRIPT,
)
