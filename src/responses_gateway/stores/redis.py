"""The Redis / Redis Cluster store: branch segments (a LIST of turns per branch) in the thread's slot.

Every operation is one round trip and a constant number of Redis commands at any depth of a linear
chain. See docs/STORE-LAYOUT.md for the layout, the durability policy and measured numbers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from redis import exceptions as rex

from responses_gateway import ids
from responses_gateway.config import RedisSettings
from responses_gateway.stores._redis_conn import (
    Arg,
    RedisConnection,
    Wait,
    build_connection,
    effective_wait_ms,
    socket_timeout,
)
from responses_gateway.stores._redis_conv import CONVERSATION_SCRIPTS, RedisConversations
from responses_gateway.stores._redis_keys import KeySchema, tag_of
from responses_gateway.stores._redis_scripts import (
    DELETE_SCRIPT,
    GET_SCRIPT,
    HISTORY_SCRIPT,
    PUT_SCRIPT,
    SCRIPTS,
    LuaScript,
)
from responses_gateway.stores._redis_support import (
    RetryPolicy,
    WaitNotConfirmed,
    connection_races,
    format_go_duration,
    map_errors,
)
from responses_gateway.stores.base import ChainIncomplete, StoredResponse, StoreUnavailable, find_item
from responses_gateway.telemetry import count_round_trips

__all__ = ["MAX_CHAIN_DEPTH", "RedisStore", "RedisStoreStats", "format_go_duration"]

log = logging.getLogger("responses_gateway.stores.redis")
T = TypeVar("T")

MAX_CHAIN_DEPTH = 100_000  # a guard for the Lua walks (a cycle would otherwise block Redis)
ANCESTOR_SLACK_MAX_MS = 3_600_000  # ancestors may outlive the newest turn by up to min(ttl/10, 1 h)
_CONNECT_BACKOFF_MAX = 2.0  # seconds between reconnection attempts while Redis is unreachable
# what `get` reads: owner, response, input items, chat, parent, created_at


@dataclass(slots=True)
class RedisStoreStats:
    """Network round trips and commands this store sent (the test hook for constant round trips)."""

    round_trips: int = 0
    commands: int = 0
    retries: int = 0
    on_retry: Callable[[str], None] | None = None  # told the operation of every retry (metrics)

    def add(self, commands: int = 1) -> None:
        self.round_trips += 1
        self.commands += commands
        count_round_trips()

    async def retried(self, operation: str) -> None:
        self.retries += 1
        if self.on_retry is not None:
            self.on_retry(operation)


class RedisStore:
    """ResponseStore on Redis (standalone) or Redis Cluster, over a RedisConnection."""

    counts_round_trips = True  # `stats.add` counts each one into the request's record (telemetry)

    backend_name = "redis"

    def __init__(
        self,
        settings: RedisSettings,
        *,
        ttl_seconds: int,
        connection: RedisConnection | None = None,
        conversation_ttl_seconds: int | None = None,
    ) -> None:
        self.settings = settings
        self.ttl_seconds = ttl_seconds
        self.keys = KeySchema(settings.key_prefix)
        self.stats = RedisStoreStats()
        self.connection = connection or build_connection(settings, self.stats.add)
        self._ttl_ms = ttl_seconds * 1000
        # Ancestors are extended to ttl + slack so that the next turns' walks stop after one hop.
        self._slack_ms = min(self._ttl_ms // 10, ANCESTOR_SLACK_MAX_MS)
        wait_ms = effective_wait_ms(settings)
        self._wait = Wait(settings.wait_replicas, wait_ms) if settings.wait_replicas > 0 else None
        self._retry = RetryPolicy(retries=settings.max_retries, budget=max(settings.read_timeout, 1.0))
        self._slots = asyncio.Semaphore(settings.pool_size)
        self._pool_timeout = settings.read_timeout + 1.0  # as go-redis' PoolTimeout
        self._op_timeout = socket_timeout(settings)  # one attempt: its writes and reads, as a whole
        self._ready = False
        self._connect_lock = asyncio.Lock()
        self._connect_failures = 0
        self._next_connect_at = 0.0
        self.conversations = RedisConversations(self, conversation_ttl_seconds)

    @classmethod
    async def open(
        cls, settings: RedisSettings, *, ttl_seconds: int, conversation_ttl_seconds: int | None = None
    ) -> RedisStore:
        """Build the connection and try to connect; a Redis that is down is logged, not raised."""
        store = cls(settings, ttl_seconds=ttl_seconds, conversation_ttl_seconds=conversation_ttl_seconds)
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
    def ready(self) -> bool:
        return self._ready

    @property
    def cluster_mode(self) -> bool:
        return self.connection.cluster

    # --- the ResponseStore protocol ------------------------------------------------------------

    async def put(self, record: StoredResponse) -> None:
        parent = record.previous_response_id or ""
        if parent and self.connection.cluster and tag_of(parent) != tag_of(record.id):
            raise ValueError(
                f"{record.id} and its parent {parent} are in different threads (hash tags); "
                "mint child ids with ids.new_response_id(parent_id)"
            )
        args: list[Arg] = [
            record.response,
            record.input_items,
            record.chat,
            record.owner,
            record.created_at,
            parent,
            self._ttl_ms,
            self._slack_ms,
            self.keys.prefix,
            MAX_CHAIN_DEPTH,
            record.id,
        ]
        # routed by the parent's key: while a slot migrates, the call goes where the parent is
        key = self.keys.key(parent or record.id)
        await self._run("put", lambda: self._write(PUT_SCRIPT, key, args))

    async def get(self, response_id: str, *, owner: str = "") -> StoredResponse | None:
        key = self.keys.key(response_id)
        reply = await self._run("get", lambda: self._read(GET_SCRIPT, key, [owner]))
        if not reply:
            return None  # unknown, expired or another owner's: the script answers alike
        _, response, input_items, chat, parent, created_at = reply
        if not response:
            return None  # deleted (a tombstone)
        return StoredResponse(
            id=response_id,
            previous_response_id=parent.decode() or None,
            response=response,
            input_items=input_items,
            chat=chat,
            owner=owner,
            created_at=int(created_at),
        )

    async def get_history(self, response_id: str, *, owner: str = "") -> list[bytes] | None:
        key = self.keys.key(response_id)
        args: list[Arg] = [owner, self.keys.prefix, MAX_CHAIN_DEPTH]
        reply = await self._run("get_history", lambda: self._read(HISTORY_SCRIPT, key, args))
        status = int(reply[0])
        if status == 0:
            return None
        if status == 2:
            raise ChainIncomplete(response_id, reply[1].decode())
        # each segment on the path: its header, then chat blobs ("" for a deleted turn)
        return [turn for segment in reply[1:] for turn in segment[1:] if turn]

    async def delete(self, response_id: str, *, owner: str = "") -> bool:
        key = self.keys.key(response_id)
        attempts = 0

        def attempt() -> Awaitable[Any]:
            nonlocal attempts
            attempts += 1
            return self._write(DELETE_SCRIPT, key, [owner, self.keys.prefix])

        result = int(await self._run("delete", attempt))
        # 2 = already a tombstone of this owner: after a retry, most likely made by our own first
        # attempt, applied but not acknowledged; the script wrote it again so that WAIT covers it
        return result == 1 or (result == 2 and attempts > 1)

    async def get_item(self, item_id: str, *, owner: str = "") -> bytes | None:
        response_id = ids.response_id_of_item(item_id)
        if response_id is None:
            return None
        record = await self.get(response_id, owner=owner)
        return None if record is None else find_item(record, item_id)

    async def ping(self) -> None:
        await self._run("ping", self.connection.ping)

    async def eval_script(self, operation: str, script: LuaScript, key: str, args: Sequence[Arg]) -> Any:
        """A script outside the response layout (the rate limiter's) on the master of `key`, with this
        store's connection, pool limit, retries and timeouts; any failure is StoreUnavailable."""
        return await self._run(operation, lambda: self._read(script, key, args))

    async def run_script(
        self, operation: str, script: LuaScript, key: str, args: Sequence[Arg], *, write: bool
    ) -> Any:
        """A script of this store's (the conversations') on the master of `key`, with retries, timeouts
        and, for a write, the configured WAIT; any failure is StoreUnavailable."""
        if write:
            return await self._run(operation, lambda: self._write(script, key, args))
        return await self._run(operation, lambda: self._read(script, key, args))

    async def aclose(self) -> None:
        try:
            await self.connection.aclose()
        except Exception as exc:  # closing a half-dead client must not raise
            log.debug("RedisStore: error while closing: %s", exc)

    # --- plumbing ------------------------------------------------------------------------------

    async def _run(self, operation: str, fn: Callable[[], Awaitable[T]]) -> T:
        """Connect if needed, then run `fn` under the pool limit with retries; map every failure."""
        with map_errors(operation):
            await self._ensure_ready()
            return await self._retry.run(
                operation, lambda: self._limited(fn), lambda _: self.stats.retried(operation)
            )

    async def _limited(self, fn: Callable[[], Awaitable[T]]) -> T:
        try:
            async with asyncio.timeout(self._pool_timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise StoreUnavailable("redis store: connection pool exhausted", retry_after=1) from None
        try:
            with connection_races():
                return await self._bounded(fn(), self._op_timeout)
        finally:
            self._slots.release()

    @staticmethod
    async def _bounded(call: Awaitable[T], seconds: float) -> T:
        """`call`, or a redis TimeoutError (retryable) when it takes longer than `seconds`."""
        try:
            async with asyncio.timeout(seconds):
                return await call
        except TimeoutError:
            raise rex.TimeoutError(f"no reply from Redis within {seconds:g}s") from None

    async def _read(self, script: LuaScript, key: str, args: Sequence[Arg]) -> Any:
        result, _ = await self.connection.eval(script, key, args)
        return result

    async def _write(self, script: LuaScript, key: str, args: Sequence[Arg]) -> Any:
        """The script, and `WAIT n timeout` in the same round trip when configured; a short WAIT is
        "not confirmed" (WaitNotConfirmed, retried, then 503), never an acknowledged write."""
        result, waited = await self.connection.eval(script, key, args, self._wait)
        if self._wait is None:
            return result
        if isinstance(waited, BaseException):
            raise WaitNotConfirmed(f"WAIT failed: {waited}")
        if int(waited) < self._wait.replicas:
            raise WaitNotConfirmed(
                f"write reached {int(waited)} of {self._wait.replicas} replica(s) "
                f"within {self._wait.timeout_ms} ms"
            )
        return result

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
                    connect_timeout = self._op_timeout + self.settings.dial_timeout
                    await self._bounded(self.connection.connect(), connect_timeout)
                except asyncio.CancelledError:
                    raise  # the caller went away: not a verdict on Redis
                except BaseException:
                    self._connect_failures += 1
                    delay = min(_CONNECT_BACKOFF_MAX, 0.25 * 2 ** (self._connect_failures - 1))
                    self._next_connect_at = time.monotonic() + delay
                    raise
            self._ready = True
            self._connect_failures = 0
            await self._prepare()
            log.info(
                "RedisStore: initialized successfully (cluster_mode=%s, key_prefix=%s, ttl=%s)",
                "true" if self.connection.cluster else "false",
                self.settings.key_prefix,
                format_go_duration(self.ttl_seconds),
            )

    async def _prepare(self) -> None:
        """Best effort, on every master: open `min_idle_conns` connections (redis-py has no
        minimum-idle setting, so idle connections closed later are not replaced), and SCRIPT LOAD
        every script so that even its first call is one round trip (a node that lost its cache
        later, after a restart or failover, gets EVAL once)."""
        count = min(self.settings.min_idle_conns, self.settings.pool_size)
        calls: list[Awaitable[Any]] = []
        for client in self.connection.masters():
            calls += [client.execute_command("PING") for _ in range(count)]  # type: ignore[no-untyped-call]
            scripts = (*SCRIPTS, *CONVERSATION_SCRIPTS)
            calls += [client.execute_command("SCRIPT", "LOAD", s.source) for s in scripts]  # type: ignore[no-untyped-call]
        try:
            with connection_races():
                gathered = asyncio.gather(*calls, return_exceptions=True)
                results = await self._bounded(gathered, self._op_timeout)
        except rex.TimeoutError as exc:
            log.debug("RedisStore: warm-up: %s", exc)
            return
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            log.debug("RedisStore: warm-up: %d of %d calls failed: %s", len(failed), len(results), failed[0])
