"""The Redis / Redis Cluster store: one HASH per response in its thread's hash slot, Lua for chains.

Every operation is one round trip (put with `wait_replicas` too: script + WAIT pipelined on one
connection). See docs/STORE-LAYOUT.md for the layout, the durability policy and measured numbers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from redis import exceptions as rex
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from responses_gateway import ids
from responses_gateway.config import RedisSettings
from responses_gateway.stores._redis_cluster import eval_with_wait
from responses_gateway.stores._redis_keys import FIELD_DATA, FIELD_HISTORY, FIELD_OWNER, KeySchema, tag_of
from responses_gateway.stores._redis_scripts import DELETE_SCRIPT, GET_CHAIN_SCRIPT, PUT_SCRIPT, LuaScript
from responses_gateway.stores._redis_support import (
    RetryPolicy,
    WaitNotConfirmed,
    connection_races,
    format_go_duration,
    map_errors,
    parse_address,
)
from responses_gateway.stores.base import (
    ChainIncomplete,
    Item,
    StoredResponse,
    StoreUnavailable,
    decode_history,
    decode_parts,
    decode_record,
    encode_parts,
    find_item,
)

__all__ = ["MAX_CHAIN_DEPTH", "RedisStore", "RedisStoreStats", "format_go_duration"]

log = logging.getLogger("responses_gateway.stores.redis")
T = TypeVar("T")

MAX_CHAIN_DEPTH = 100_000  # a guard for the Lua walks (a cycle would otherwise block Redis)
ANCESTOR_SLACK_MAX_MS = 3_600_000  # ancestors may outlive the newest turn by up to min(ttl/10, 1 h)
_POOL_HEADROOM = 4  # cluster: connections per node beyond pool_size, for the driver's own commands
_CONNECT_BACKOFF_MAX = 2.0  # seconds between reconnection attempts while Redis is unreachable


@dataclass(slots=True)
class RedisStoreStats:
    """Network round trips and commands this store sent (the test hook for constant round trips)."""

    round_trips: int = 0
    commands: int = 0

    def add(self, commands: int = 1) -> None:
        self.round_trips += 1
        self.commands += commands


class RedisStore:
    """ResponseStore on Redis (standalone) or Redis Cluster; one code path for both modes."""

    backend_name = "redis"

    def __init__(self, settings: RedisSettings, *, ttl_seconds: int, client: Redis | RedisCluster) -> None:
        self.settings = settings
        self.ttl_seconds = ttl_seconds
        self.cluster_mode = isinstance(client, RedisCluster)
        self.keys = KeySchema(settings.key_prefix)
        self.stats = RedisStoreStats()
        self._client = client
        self._ttl_ms = ttl_seconds * 1000
        # Ancestors are extended to ttl + slack so that the next turns' walks stop after one hop.
        self._slack_ms = min(self._ttl_ms // 10, ANCESTOR_SLACK_MAX_MS)
        self._wait_replicas = settings.wait_replicas
        self._wait_timeout_ms = _effective_wait_ms(settings)
        self._retry = RetryPolicy(retries=settings.max_retries, budget=max(settings.read_timeout, 1.0))
        self._slots = asyncio.Semaphore(settings.pool_size)
        self._pool_timeout = settings.read_timeout + 1.0  # as go-redis' PoolTimeout
        self._ready = False
        self._connect_lock = asyncio.Lock()
        self._connect_failures = 0
        self._next_connect_at = 0.0

    # --- construction -------------------------------------------------------------------------

    @classmethod
    async def open(cls, settings: RedisSettings, *, ttl_seconds: int) -> RedisStore:
        """Build the client and try to connect; a Redis that is down is logged, not raised."""
        client = build_client(settings)
        store = cls(settings, ttl_seconds=ttl_seconds, client=client)
        try:
            await store._ensure_ready()
        except StoreUnavailable as exc:
            log.warning(
                "RedisStore: Redis is not reachable at start-up (%s); the store answers 503 "
                "(store_unavailable) until it is, and reconnects by itself",
                exc.__cause__ or exc,
            )
        return store

    @property
    def client(self) -> Redis | RedisCluster:
        return self._client

    @property
    def ready(self) -> bool:
        return self._ready

    # --- the ResponseStore protocol ------------------------------------------------------------

    async def put(self, record: StoredResponse) -> None:
        parent = record.previous_response_id or ""
        if parent and self.cluster_mode and tag_of(parent) != tag_of(record.id):
            raise ValueError(
                f"{record.id} and its parent {parent} are in different threads (hash tags); "
                "mint child ids with ids.new_response_id(parent_id)"
            )
        meta, history = (b"", b"") if record.deleted else encode_parts(record)
        args = [
            meta,
            parent,
            record.owner,
            self._ttl_ms,
            self.keys.prefix,
            MAX_CHAIN_DEPTH,
            self._slack_ms,
            history,
        ]
        await self._write("put", PUT_SCRIPT, self.keys.key(record.id), args)

    async def get(self, response_id: str, *, owner: str = "") -> StoredResponse | None:
        key = self.keys.key(response_id)
        data, history, stored_owner = await self._run(
            "get", lambda: self._command("HMGET", key, FIELD_DATA, FIELD_HISTORY, FIELD_OWNER)
        )
        if not data or stored_owner != owner.encode():
            return None
        return decode_parts(data, history) if history else decode_record(data)

    async def get_chain(self, response_id: str, *, owner: str = "") -> list[StoredResponse] | None:
        key = self.keys.key(response_id)
        args = [owner, self.keys.prefix, MAX_CHAIN_DEPTH]
        reply = await self._run("get_chain", lambda: self._eval(GET_CHAIN_SCRIPT, key, args))
        status = int(reply[0])
        if status == 0:
            return None
        if status == 2:
            missing = reply[1].decode() if isinstance(reply[1], bytes) else str(reply[1])
            raise ChainIncomplete(response_id, missing)
        return [_decode_link(blob, owner) for blob in reversed(reply[2:])]

    async def delete(self, response_id: str, *, owner: str = "") -> bool:
        key = self.keys.key(response_id)
        attempts = 0

        def attempt() -> Awaitable[Any]:
            nonlocal attempts
            attempts += 1
            return self._write_once(DELETE_SCRIPT, key, [owner])

        result = int(await self._run("delete", attempt))
        # 2 = already a tombstone of this owner: after a retry, most likely made by our own first
        # attempt, applied but not acknowledged; the script wrote it again so that WAIT covers it
        return result == 1 or (result == 2 and attempts > 1)

    async def get_item(self, item_id: str, *, owner: str = "") -> Item | None:
        response_id = ids.response_id_of_item(item_id)
        if response_id is None:
            return None
        record = await self.get(response_id, owner=owner)
        return None if record is None else find_item(record, item_id)

    async def ping(self) -> None:
        if self.cluster_mode:
            await self._run("ping", lambda: self._command("PING", target_nodes=RedisCluster.PRIMARIES))
        else:
            await self._run("ping", lambda: self._command("PING"))

    async def aclose(self) -> None:
        try:
            await self._client.aclose()
        except (rex.RedisError, OSError) as exc:  # closing a half-dead client must not raise
            log.debug("RedisStore: error while closing: %s", exc)

    # --- plumbing ------------------------------------------------------------------------------

    async def _run(self, operation: str, fn: Callable[[], Awaitable[T]]) -> T:
        """Connect if needed, then run `fn` under the pool limit with retries; map every failure."""
        with map_errors(operation):
            await self._ensure_ready()
            return await self._retry.run(operation, lambda: self._limited(fn))

    async def _limited(self, fn: Callable[[], Awaitable[T]]) -> T:
        try:
            async with asyncio.timeout(self._pool_timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise StoreUnavailable("redis store: connection pool exhausted", retry_after=1) from None
        try:
            with connection_races():
                return await fn()
        finally:
            self._slots.release()

    async def _command(self, *args: Any, **kwargs: Any) -> Any:
        self.stats.add()
        return await self._client.execute_command(*args, **kwargs)

    async def _eval(self, script: LuaScript, key: str, args: list[Any]) -> Any:
        """EVALSHA, and EVAL (which also caches the script) when the node answers NOSCRIPT."""
        if isinstance(self._client, RedisCluster):  # one connection per call, ASK included
            result, _ = await eval_with_wait(self._client, script, key, args, 0, 0, self.stats.add)
            return result
        try:
            return await self._command("EVALSHA", script.sha, 1, key, *args)
        except rex.NoScriptError:
            return await self._command("EVAL", script.source, 1, key, *args)

    async def _write(self, operation: str, script: LuaScript, key: str, args: list[Any]) -> Any:
        return await self._run(operation, lambda: self._write_once(script, key, args))

    def _write_once(self, script: LuaScript, key: str, args: list[Any]) -> Awaitable[Any]:
        if self._wait_replicas <= 0:
            return self._eval(script, key, args)
        return self._eval_and_wait(script, key, args)

    async def _eval_and_wait(self, script: LuaScript, key: str, args: list[Any]) -> Any:
        """The script and `WAIT n timeout` in one round trip on one connection; a short WAIT is
        "not confirmed" (WaitNotConfirmed, retried, then 503), never an acknowledged write."""
        if isinstance(self._client, RedisCluster):
            result, waited = await eval_with_wait(
                self._client, script, key, args, self._wait_replicas, self._wait_timeout_ms, self.stats.add
            )
        else:
            result, waited = await self._standalone_eval_and_wait(self._client, script, key, args)
        if isinstance(waited, BaseException):
            raise WaitNotConfirmed(f"WAIT failed: {waited}")
        if int(waited) < self._wait_replicas:
            raise WaitNotConfirmed(
                f"write reached {int(waited)} of {self._wait_replicas} replica(s) "
                f"within {self._wait_timeout_ms} ms"
            )
        return result

    async def _standalone_eval_and_wait(
        self, client: Redis, script: LuaScript, key: str, args: list[Any]
    ) -> tuple[Any, Any]:
        for call in (("EVALSHA", script.sha), ("EVAL", script.source)):
            pipe = client.pipeline(transaction=False)
            pipe.execute_command(*call, 1, key, *args)
            pipe.execute_command("WAIT", self._wait_replicas, self._wait_timeout_ms)
            self.stats.add(2)
            result, waited = await pipe.execute(raise_on_error=False)
            if isinstance(result, rex.NoScriptError):
                continue
            if isinstance(result, BaseException):
                raise result
            return result, waited
        raise rex.NoScriptError("script could not be loaded")

    async def _ensure_ready(self) -> None:
        """First contact (cluster: topology discovery), rate-limited while Redis is unreachable."""
        if self._ready:
            return
        if time.monotonic() < self._next_connect_at:
            raise StoreUnavailable("redis store: Redis is not reachable yet", retry_after=1)
        async with self._connect_lock:
            if self._ready:
                return
            # waiters queued behind a failed attempt share its back-off instead of each trying again
            if time.monotonic() < self._next_connect_at:
                raise StoreUnavailable("redis store: Redis is not reachable yet", retry_after=1)
            with map_errors("connect"), connection_races():
                try:
                    if isinstance(self._client, RedisCluster):
                        await self._client.initialize()
                        await self._client.execute_command("PING", target_nodes=RedisCluster.PRIMARIES)
                    else:
                        # redis-py leaves Redis.execute_command unannotated
                        await self._client.execute_command("PING")  # type: ignore[no-untyped-call]
                except asyncio.CancelledError:
                    raise  # the caller went away: not a verdict on Redis
                except BaseException:
                    self._connect_failures += 1
                    delay = min(_CONNECT_BACKOFF_MAX, 0.25 * 2 ** (self._connect_failures - 1))
                    self._next_connect_at = time.monotonic() + delay
                    raise
            self._ready = True
            self._connect_failures = 0
            await self._warm_up()
            await self._load_scripts()
            log.info(
                "RedisStore: initialized successfully (cluster_mode=%s, key_prefix=%s, ttl=%s)",
                "true" if self.cluster_mode else "false",
                self.settings.key_prefix,
                format_go_duration(self.ttl_seconds),
            )

    async def _load_scripts(self) -> None:
        """SCRIPT LOAD on every master up front, so that even the first call of each script is one
        round trip. Best effort: a node that lost its cache (restart, failover) gets EVAL once."""
        for script in (PUT_SCRIPT, GET_CHAIN_SCRIPT, DELETE_SCRIPT):
            try:
                if isinstance(self._client, RedisCluster):
                    nodes = self._client.get_primaries()
                    await self._client.execute_command("SCRIPT LOAD", script.source, target_nodes=nodes)
                else:
                    await self._client.execute_command("SCRIPT LOAD", script.source)  # type: ignore[no-untyped-call]
            except (rex.RedisError, OSError) as exc:
                log.debug("RedisStore: SCRIPT LOAD %s failed: %s", script.name, exc)

    async def _warm_up(self) -> None:
        """Best effort for `min_idle_conns`: open that many connections (per master) once, up front.
        redis-py has no minimum-idle setting, so idle connections closed later are not replaced."""
        count = min(self.settings.min_idle_conns, self.settings.pool_size)
        if count <= 0:
            return
        targets: list[ClusterNode | None]
        targets = list(self._client.get_primaries()) if isinstance(self._client, RedisCluster) else [None]
        calls = [
            self._client.execute_command("PING", **({"target_nodes": node} if node is not None else {}))
            for node in targets
            for _ in range(count)
        ]
        results = await asyncio.gather(*calls, return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            log.debug("RedisStore: warm-up: %d of %d connections failed", len(failed), len(results))


def _effective_wait_ms(settings: RedisSettings) -> int:
    """WAIT's timeout; 0 would block forever in Redis, so it means "half the socket timeout" here."""
    if settings.wait_timeout_ms > 0:
        return settings.wait_timeout_ms
    return max(1, int(_socket_timeout(settings) * 500))


def _socket_timeout(settings: RedisSettings) -> float:
    """redis-py has one socket timeout for reads and writes: the larger of the two settings."""
    return max(settings.read_timeout, settings.write_timeout)


def build_client(settings: RedisSettings) -> Redis | RedisCluster:
    """The driver client for these settings (no network traffic yet); logs what it creates."""
    socket_timeout = _socket_timeout(settings)
    if settings.wait_replicas > 0 and settings.wait_timeout_ms / 1000 + 0.5 > socket_timeout:
        socket_timeout = settings.wait_timeout_ms / 1000 + 0.5
        log.warning("RedisStore: socket timeout raised to %.1fs to cover wait_timeout_ms", socket_timeout)
    common: dict[str, Any] = {
        "username": settings.username,
        "password": settings.password,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": settings.dial_timeout,
        "decode_responses": False,
        "retry": Retry(NoBackoff(), 0),  # one retry layer only: RedisStore's RetryPolicy
    }
    if settings.tls_enabled:
        common.update(
            ssl=True,
            ssl_ca_certs=settings.tls_ca_path,
            ssl_certfile=settings.tls_cert_path,
            ssl_keyfile=settings.tls_key_path,
        )
    if settings.cluster_mode:
        log.info(
            "RedisStore: creating cluster client (nodes=%d, pool_size=%d)",
            len(settings.cluster_addresses),
            settings.pool_size,
        )
        nodes = [ClusterNode(*parse_address(a)) for a in settings.cluster_addresses]
        return RedisCluster(
            startup_nodes=nodes,
            max_connections=settings.pool_size + _POOL_HEADROOM,
            **common,
        )
    assert settings.address is not None  # checked by RedisSettings
    host, port = parse_address(settings.address)
    log.info(
        "RedisStore: creating standalone client (address=%s, db=%d, pool_size=%d)",
        settings.address,
        settings.db,
        settings.pool_size,
    )
    return Redis(host=host, port=port, db=settings.db, max_connections=settings.pool_size, **common)


def _decode_link(blob: bytes, owner: str) -> StoredResponse:
    # a history blob (`{"id":…`), or the whole record of one written before records were split
    return decode_record(blob) if blob.startswith(b'{"v":') else decode_history(blob, owner)
