"""Redis Cluster connection: one plain client per master and our own slot map (public redis-py API).

Every script call goes to the master of its key's slot as `[ASKING,] EVALSHA [, WAIT]` on ONE
connection; MOVED patches the map, ASK is followed once, lost nodes and CLUSTERDOWN make the map stale
(rediscovered with CLUSTER SLOTS before the next call). Redirects past a few raise (the store retries).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis import exceptions as rex
from redis.asyncio import Redis
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from responses_gateway.stores._redis_conn import Arg, OnSend, Wait, run_command, run_script
from responses_gateway.stores._redis_scripts import LuaScript

log = logging.getLogger("responses_gateway.stores.redis")

_MAX_REDIRECTS = 5
# Replies after which the slot map is rediscovered before the next call.
_STALE_MAP = (rex.ClusterDownError, rex.ReadOnlyError, rex.TryAgainError)


class ClusterConnection:
    """RedisConnection over a Redis Cluster; `startup` are the configured (host, port) seeds."""

    cluster = True

    def __init__(self, startup: Sequence[tuple[str, int]], options: dict[str, Any], on_send: OnSend) -> None:
        self._startup = [f"{h}:{p}" for h, p in startup]
        self._options = options
        self._on_send = on_send
        self._clients: dict[str, Redis] = {}
        self._slots: list[str | None] = []
        self._masters: list[str] = []
        self._stale = True
        self._generation = 0
        self._lock = asyncio.Lock()
        self._suspects: set[str] = set()  # nodes that failed lately: asked last during discovery

    # --- the RedisConnection interface ------------------------------------------------------------

    async def connect(self) -> None:
        await self._refresh(self._generation)
        await self.ping()

    async def eval(
        self, script: LuaScript, key: str, args: Sequence[Arg], wait: Wait | None = None
    ) -> tuple[Any, Any]:
        async def attempt(client: Redis, asking: bool) -> tuple[Any, Any]:
            return await run_script(client, script, key, args, wait, self._on_send, asking=asking)

        return await self._on_master(key, attempt)

    async def call(self, key: str, *args: Arg) -> Any:
        async def attempt(client: Redis, asking: bool) -> tuple[Any, Any]:
            return await run_command(client, args, self._on_send, asking=asking), None

        result, _ = await self._on_master(key, attempt)
        return result

    async def _on_master(
        self, key: str, attempt: Callable[[Redis, bool], Awaitable[tuple[Any, Any]]]
    ) -> tuple[Any, Any]:
        """`attempt(client, asking)` on the master of the key's slot, following MOVED and ASK."""
        if self._stale:
            await self._refresh(self._generation)
        slot = key_slot(key.encode())
        asking: str | None = None
        for _ in range(_MAX_REDIRECTS):
            address = asking or self._slots[slot]
            if address is None:
                self._stale = True
                raise rex.SlotNotCoveredError(f"slot {slot} is not covered")
            try:
                result, waited = await attempt(self._client(address), asking is not None)
            except (rex.ConnectionError, rex.TimeoutError, OSError):
                self._lost(address)
                raise
            asking = None
            if isinstance(result, rex.MovedError):
                self._slots[result.slot_id] = f"{result.host}:{result.port}"
                self._stale = True  # a moved slot rarely moves alone: rediscover before the next call
                continue
            if isinstance(result, rex.AskError):
                asking = f"{result.host}:{result.port}"
                continue
            if isinstance(result, _STALE_MAP):
                self._stale = True
            if isinstance(result, BaseException):
                raise result
            return result, waited
        raise rex.ClusterError(f"too many redirects for {key}")

    async def ping(self) -> None:
        if self._stale:
            await self._refresh(self._generation)
        addresses = list(self._masters)
        self._on_send(len(addresses))
        results = await asyncio.gather(
            *(self._client(a).execute_command("PING") for a in addresses),  # type: ignore[no-untyped-call]
            return_exceptions=True,
        )
        for address, result in zip(addresses, results, strict=True):
            if isinstance(result, BaseException):
                if isinstance(result, (rex.ConnectionError, rex.TimeoutError, OSError)):
                    self._lost(address)
                raise result

    def masters(self) -> list[Redis]:
        return [self._client(a) for a in self._masters]

    def client_for(self, key: str) -> Redis:
        address = self._slots[key_slot(key.encode())] if self._slots else None
        if address is None:
            raise rex.SlotNotCoveredError(f"no master known for {key}")
        return self._client(address)

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        errors = await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)
        for error in errors:
            if isinstance(error, BaseException):
                log.debug("RedisStore: error while closing a node client: %s", error)

    # --- topology ---------------------------------------------------------------------------------

    def _client(self, address: str) -> Redis:
        client = self._clients.get(address)
        if client is None:
            host, _, port = address.rpartition(":")
            client = Redis(host=host, port=int(port), **self._options)
            self._clients[address] = client
        return client

    def _lost(self, address: str) -> None:
        self._suspects.add(address)
        self._stale = True

    async def _refresh(self, seen: int) -> None:
        """Rediscover the slot map with CLUSTER SLOTS (known masters first, then the configured
        nodes, lately failed ones last), unless another call did since `seen`. All slots must be
        covered; otherwise the old map stays and the error is raised."""
        async with self._lock:
            if self._generation != seen and not self._stale:
                return
            candidates = list(dict.fromkeys([*self._masters, *self._startup]))
            candidates.sort(key=lambda a: a in self._suspects)
            error: BaseException = rex.ConnectionError("no cluster node configured")
            for address in candidates:
                try:
                    self._on_send(1)
                    reply = await self._client(address).execute_command("CLUSTER SLOTS")  # type: ignore[no-untyped-call]
                    slots = _slot_map(reply, address.rpartition(":")[0])
                except (rex.RedisError, OSError) as exc:
                    error = exc
                    continue
                self._slots = slots
                self._masters = sorted({a for a in slots if a is not None})
                self._suspects.clear()
                self._stale = False
                self._generation += 1
                return
            raise error


def _slot_map(reply: Any, asked_host: str) -> list[str | None]:
    """CLUSTER SLOTS as a list slot -> "host:port" of its master; raises unless all are covered.
    The raw reply is `[[start, end, [host, port, id, ...], replicas...], ...]`; some redis-py
    versions parse it into `{(start, end): {"primary": (host, port), ...}}`: both are read."""
    ranges: list[tuple[int, int, Any, Any]] = []
    if isinstance(reply, dict):
        ranges = [(int(s), int(e), *n["primary"][:2]) for (s, e), n in reply.items()]
    else:
        ranges = [(int(r[0]), int(r[1]), r[2][0], r[2][1]) for r in reply]
    slots: list[str | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
    for start, end, raw_host, port in ranges:
        host = raw_host.decode() if isinstance(raw_host, bytes) else str(raw_host)
        address = f"{host or asked_host}:{int(port)}"
        for slot in range(start, end + 1):
            slots[slot] = address
    if any(a is None for a in slots):
        raise rex.ClusterDownError("CLUSTERDOWN not all slots are covered")
    return slots
