"""The Redis store's connection interface, its standalone implementation, and what both share.

A connection runs a script on the node that owns a key (with an optional WAIT on the same connection
in the same round trip), pings every master and lists the masters' clients. Public redis-py API only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from redis import exceptions as rex
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from responses_gateway.config import RedisSettings
from responses_gateway.stores._redis_scripts import LuaScript
from responses_gateway.stores._redis_support import parse_address

log = logging.getLogger("responses_gateway.stores.redis")

Arg = bytes | str | int
OnSend = Callable[[int], None]  # called once per round trip with the number of commands sent
POOL_HEADROOM = 4  # connections per node beyond pool_size, for discovery, warm-up and script loads


@dataclass(frozen=True, slots=True)
class Wait:
    """`WAIT replicas timeout_ms` after a write, on the same connection."""

    replicas: int
    timeout_ms: int


class RedisConnection(Protocol):
    """What RedisStore needs from Redis; the mode (standalone or cluster) is chosen once, here."""

    cluster: bool

    async def connect(self) -> None:
        """First contact (cluster: topology discovery) and a PING of every master; raises on failure."""

    async def eval(
        self, script: LuaScript, key: str, args: Sequence[Arg], wait: Wait | None = None
    ) -> tuple[Any, Any]:
        """(script reply, WAIT reply or the error WAIT replied with, None without WAIT); a script
        error reply is raised."""

    async def call(self, key: str, *args: Arg) -> Any:
        """One command about `key` on its master; an error reply is raised."""

    async def ping(self) -> None: ...

    def masters(self) -> list[Redis]:
        """One client per master (standalone: the only one)."""

    def client_for(self, key: str) -> Redis:
        """The client of the master that owns `key` (tests and tools)."""

    async def aclose(self) -> None: ...


async def send(client: Redis, commands: Sequence[tuple[Arg, ...]]) -> list[Any]:
    """Commands on one connection of `client`, in one round trip (a non-transactional pipeline);
    error replies are returned as exceptions, connection failures raised."""
    if len(commands) == 1:
        try:
            return [await client.execute_command(*commands[0])]  # type: ignore[no-untyped-call]
        except rex.ResponseError as exc:
            return [exc]
    pipe = client.pipeline(transaction=False)
    for command in commands:
        pipe.execute_command(*command)
    return list(await pipe.execute(raise_on_error=False))


async def run_script(
    client: Redis,
    script: LuaScript,
    key: str,
    args: Sequence[Arg],
    wait: Wait | None,
    on_send: OnSend,
    *,
    asking: bool = False,
) -> tuple[Any, Any]:
    """`[ASKING,] EVALSHA [, WAIT]` in one round trip; EVAL instead when the node answers NOSCRIPT.
    Returns (script reply, WAIT reply), error replies as exception values (not raised)."""
    for call in (("EVALSHA", script.sha), ("EVAL", script.source)):
        commands: list[tuple[Arg, ...]] = [("ASKING",)] if asking else []
        commands.append((*call, 1, key, *args))
        if wait is not None:
            commands.append(("WAIT", wait.replicas, wait.timeout_ms))
        on_send(len(commands))
        replies = await send(client, commands)
        result = replies[1 if asking else 0]
        if not isinstance(result, rex.NoScriptError):
            return result, replies[-1] if wait is not None else None
    raise rex.NoScriptError("script could not be loaded")


async def run_command(client: Redis, args: tuple[Arg, ...], on_send: OnSend, *, asking: bool = False) -> Any:
    """`[ASKING,] command` in one round trip; returns its reply, an error reply as an exception value."""
    commands: list[tuple[Arg, ...]] = [("ASKING",), args] if asking else [args]
    on_send(len(commands))
    return (await send(client, commands))[-1]


class StandaloneConnection:
    """One `redis.asyncio.Redis` client (its own pool)."""

    cluster = False

    def __init__(self, client: Redis, on_send: OnSend) -> None:
        self._client = client
        self._on_send = on_send

    async def connect(self) -> None:
        await self._client.execute_command("PING")  # type: ignore[no-untyped-call]

    async def eval(
        self, script: LuaScript, key: str, args: Sequence[Arg], wait: Wait | None = None
    ) -> tuple[Any, Any]:
        result, waited = await run_script(self._client, script, key, args, wait, self._on_send)
        if isinstance(result, BaseException):
            raise result
        return result, waited

    async def call(self, key: str, *args: Arg) -> Any:
        result = await run_command(self._client, args, self._on_send)
        if isinstance(result, BaseException):
            raise result
        return result

    async def ping(self) -> None:
        self._on_send(1)
        await self._client.execute_command("PING")  # type: ignore[no-untyped-call]

    def masters(self) -> list[Redis]:
        return [self._client]

    def client_for(self, key: str) -> Redis:
        return self._client

    async def aclose(self) -> None:
        await self._client.aclose()


def socket_timeout(settings: RedisSettings) -> float:
    """redis-py has one socket timeout for reads and writes: the larger of the two settings, raised
    to cover WAIT's timeout when a WAIT is configured."""
    timeout = max(settings.read_timeout, settings.write_timeout)
    if settings.wait_replicas > 0 and settings.wait_timeout_ms / 1000 + 0.5 > timeout:
        timeout = settings.wait_timeout_ms / 1000 + 0.5
    return timeout


def effective_wait_ms(settings: RedisSettings) -> int:
    """WAIT's timeout; 0 would block forever in Redis, so it means "half the socket timeout" here."""
    if settings.wait_timeout_ms > 0:
        return settings.wait_timeout_ms
    return max(1, int(max(settings.read_timeout, settings.write_timeout) * 500))


def client_options(settings: RedisSettings) -> dict[str, Any]:
    """Keyword arguments of every `redis.asyncio.Redis` this store creates (no host, port, db)."""
    options: dict[str, Any] = {
        "username": settings.username,
        "password": settings.password,
        # No per-command socket timeout: redis-py wraps every write in asyncio.wait_for then, a task per
        # command on Python 3.11 (a fifth of the gateway's CPU on a cluster create). RedisStore bounds
        # each operation as a whole instead (asyncio.timeout; redis-py drops a connection whose reply
        # was cut off by a cancellation, so no reply is ever read by the next command).
        "socket_timeout": None,
        "socket_connect_timeout": settings.dial_timeout,
        "decode_responses": False,
        "retry": Retry(NoBackoff(), 0),  # one retry layer only: RedisStore's RetryPolicy
        "max_connections": settings.pool_size + POOL_HEADROOM,
    }
    if settings.tls_enabled:
        options.update(
            ssl=True,
            ssl_ca_certs=settings.tls_ca_path,
            ssl_certfile=settings.tls_cert_path,
            ssl_keyfile=settings.tls_key_path,
        )
    return options


def build_connection(settings: RedisSettings, on_send: OnSend) -> RedisConnection:
    """The connection for these settings (no network traffic yet); logs what it creates."""
    if socket_timeout(settings) > max(settings.read_timeout, settings.write_timeout):
        log.warning(
            "RedisStore: socket timeout raised to %.1fs to cover wait_timeout_ms", socket_timeout(settings)
        )
    options = client_options(settings)
    if settings.cluster_mode:
        from responses_gateway.stores._redis_cluster import ClusterConnection

        log.info(
            "RedisStore: creating cluster client (nodes=%d, pool_size=%d)",
            len(settings.cluster_addresses),
            settings.pool_size,
        )
        startup = [parse_address(a) for a in settings.cluster_addresses]
        return ClusterConnection(startup, options, on_send)
    assert settings.address is not None  # checked by RedisSettings
    host, port = parse_address(settings.address)
    log.info(
        "RedisStore: creating standalone client (address=%s, db=%d, pool_size=%d)",
        settings.address,
        settings.db,
        settings.pool_size,
    )
    return StandaloneConnection(Redis(host=host, port=port, db=settings.db, **options), on_send)
