"""The Redis / Redis Cluster store's inspector: INFO and cluster state per node, a thread's keys (the
slot's key list on a cluster, a SCAN on standalone), and the owner's recent index (stores/recent.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.crc import key_slot

from responses_gateway import ids
from responses_gateway.stores._redis_keys import FOREIGN_TAG, RESPONSE
from responses_gateway.stores._redis_support import connection_races, map_errors
from responses_gateway.stores.inspect import Health, Thread, Turn
from responses_gateway.stores.redis import RedisStore

T = TypeVar("T")
MAX_SLOT_KEYS = 100_000  # CLUSTER GETKEYSINSLOT bound (the slot's keys of every thread sharing it)
MAX_SCAN_CALLS = 1_000  # standalone: SCAN ... COUNT 1000 at most this often (a million keys)
_FIELDS = ("o", "p", "t", "r", "i")
_BATCH = 500


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _address(client: Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"


class RedisInspector:
    """Reads a RedisStore's nodes with its own clients; every failure is StoreUnavailable."""

    backend = "redis"

    def __init__(self, store: RedisStore) -> None:
        self._store = store
        self._timeout = max(store.settings.read_timeout, 1.0) * 5

    async def _call(self, operation: str, call: Awaitable[T]) -> T:
        with map_errors(f"inspect {operation}"), connection_races():
            async with asyncio.timeout(self._timeout):
                return await call

    async def health(self) -> Health:
        await self._store.ping()  # connects first if needed (503 while Redis is down)
        connection = self._store.connection
        nodes = [await self._node(client) for client in connection.masters()]
        health: Health = {
            "backend": "redis",
            "ok": True,
            "cluster_mode": connection.cluster,
            "key_prefix": self._store.keys.prefix,
            "keys": sum(int(str(n["keys"])) for n in nodes),
            "used_memory": sum(int(str(n["used_memory"])) for n in nodes),
            "masters": nodes,
        }
        if connection.cluster:
            first = connection.masters()[0]
            raw = await self._call("cluster nodes", first.execute_command("CLUSTER", "NODES"))  # type: ignore[no-untyped-call]
            health["cluster_nodes"] = _cluster_nodes(raw)
        return health

    async def _node(self, client: Redis) -> dict[str, object]:
        memory = await self._call("info", client.info("memory"))
        replication = await self._call("info", client.info("replication"))
        keys = await self._call("dbsize", client.dbsize())
        node: dict[str, object] = {
            "address": _address(client),
            "role": _text(replication.get("role", "?")),
            "connected_replicas": int(replication.get("connected_slaves", 0)),
            "keys": int(keys),
            "used_memory": int(memory.get("used_memory", 0)),
            "used_memory_human": _text(memory.get("used_memory_human", "")),
            "maxmemory": int(memory.get("maxmemory", 0)),
            "maxmemory_policy": _text(memory.get("maxmemory_policy", "")),
        }
        if self._store.connection.cluster:
            info = await self._call("cluster info", client.execute_command("CLUSTER", "INFO"))  # type: ignore[no-untyped-call]
            fields = info if isinstance(info, dict) else _pairs(_text(info))
            for name in ("cluster_state", "cluster_slots_ok", "cluster_known_nodes", "cluster_size"):
                node[name] = _text(fields.get(name, "?"))
        return node

    async def thread(self, response_id: str, owner: str) -> Thread | None:
        store = self._store
        key = store.keys.key(response_id)
        await store.ping()
        client = store.connection.client_for(key)
        # only the owner field first: another owner's id answers as an unknown one, reading nothing else
        asked = await self._call("hget", client.hget(key, "o"))
        if asked is None or _text(asked) != owner:
            return None
        tag = ids.thread_tag(response_id) or FOREIGN_TAG
        prefix = f"{store.keys.prefix}{RESPONSE}:{{{tag}}}:"
        keys, complete, method = await self._thread_keys(client, key, prefix)
        turns: list[Turn] = []
        for start in range(0, len(keys), _BATCH):
            turns += await self._turns(client, keys[start : start + _BATCH], len(prefix), owner)
        return Thread(turns, complete, method)

    async def _thread_keys(self, client: Redis, key: str, prefix: str) -> tuple[list[str], bool, str]:
        if self._store.connection.cluster:
            slot = key_slot(key.encode())
            reply = await self._call(
                "getkeysinslot",
                client.execute_command("CLUSTER", "GETKEYSINSLOT", slot, MAX_SLOT_KEYS),  # type: ignore[no-untyped-call]
            )
            names = [_text(k) for k in reply]
            found = [k for k in names if k.startswith(prefix)]
            method = f"CLUSTER GETKEYSINSLOT {slot} on the slot's master ({len(names)} keys in the slot)"
            return found, len(names) < MAX_SLOT_KEYS, method
        matched: list[str] = []
        cursor: int = 0
        for calls in range(1, MAX_SCAN_CALLS + 1):
            cursor, batch = await self._call("scan", client.scan(cursor, match=f"{prefix}*", count=1000))
            matched += [_text(k) for k in batch]
            if cursor == 0:
                return matched, True, f"SCAN MATCH {prefix}* over the whole database ({calls} calls)"
        return matched, False, f"SCAN stopped after {MAX_SCAN_CALLS} calls of COUNT 1000"

    async def _turns(self, client: Redis, keys: Sequence[str], cut: int, owner: str) -> list[Turn]:
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.hmget(key, list(_FIELDS))
        replies: list[Any] = await self._call("hmget", pipe.execute())
        turns = []
        for key, (o, p, t, r, i) in zip(keys, replies, strict=True):
            if o is None or _text(o) != owner:
                continue  # expired since listed, or another owner's
            turns.append(
                Turn(
                    id=key[cut:],
                    parent=_text(p) or None if p is not None else None,
                    created_at=int(t or 0),
                    deleted=not r,
                    response=r or b"",
                    input_items=i or b"",
                )
            )
        return turns

    async def recent(self, owner: str, limit: int) -> list[Turn]:
        store = self._store
        await store.ping()
        key = store.keys.recent(owner)
        reply = await self._call("zrevrange", store.connection.call(key, "ZREVRANGE", key, 0, limit - 1))
        found = await asyncio.gather(*(store.get(_text(rid), owner=owner) for rid in reply))
        return [
            Turn(r.id, r.previous_response_id, r.created_at, False, r.response, r.input_items)
            for r in found
            if r is not None
        ]


def _pairs(text: str) -> dict[str, str]:
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {name.strip(): value.strip() for name, value in pairs}


def _cluster_nodes(raw: object) -> list[object]:
    """`CLUSTER NODES` (text, or redis-py's parsed dict) as one entry per node."""
    if isinstance(raw, dict):
        return [
            {
                "address": _text(address).split("@")[0],
                "flags": _text(node.get("flags", "")),
                "link_state": _text(node.get("connected", "")) and "connected",
                "slots": len(node.get("slots", [])),
            }
            for address, node in raw.items()
        ]
    nodes: list[object] = []
    for line in _text(raw).splitlines():
        parts = line.split()
        if len(parts) >= 8:
            nodes.append(
                {
                    "address": parts[1].split("@")[0],
                    "flags": parts[2],
                    "link_state": parts[7],
                    "slots": " ".join(parts[8:]),
                }
            )
    return nodes
