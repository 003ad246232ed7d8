"""Cluster-only plumbing: every script call sent on ONE connection to the slot's master, with its WAIT.

RedisCluster routes WAIT (a keyless command) to every primary, and its pipeline re-sends a redirected
command alone, so neither can pair a write with its WAIT. And redis-py 8.1 follows ASK by sending
`ASKING` and the command on two different pooled connections, which fails while a slot migrates.
So every script call is pinned to the master of the key's slot with ClusterNode.execute_pipeline
(`ASKING` and the call on the same connection), and MOVED / ASK / NOSCRIPT / lost nodes are handled here.
"""

from __future__ import annotations

from typing import Any

from redis import exceptions as rex
from redis.asyncio.cluster import ClusterNode, PipelineCommand, RedisCluster

from responses_gateway.stores._redis_scripts import LuaScript

_MAX_REDIRECTS = 5


async def eval_with_wait(
    client: RedisCluster,
    script: LuaScript,
    key: str,
    args: list[Any],
    replicas: int,
    timeout_ms: int,
    on_round_trip: Any,
) -> tuple[Any, Any]:
    """Run `script` on `key`, then (when `replicas` > 0) `WAIT replicas timeout_ms`, in the same round
    trip on the same connection. Returns (script result, WAIT result or the exception WAIT replied
    with, or None without WAIT). Raises connection errors, and MOVED/ASK after `_MAX_REDIRECTS` (the
    caller's retry refreshes)."""
    await client.initialize()  # no-op when initialised; rediscovers after the driver dropped its map
    use_eval = False
    asking_node: ClusterNode | None = None
    for _ in range(_MAX_REDIRECTS):
        node = asking_node or client.get_node_from_key(key)
        if node is None:  # only for replica=True; keeps mypy honest
            raise rex.SlotNotCoveredError(f"no master for {key}")
        head: list[PipelineCommand] = []
        if asking_node is not None:
            head.append(PipelineCommand(0, "ASKING"))
        call = ("EVAL", script.source) if use_eval else ("EVALSHA", script.sha)
        cmds = [*head, PipelineCommand(len(head), *call, 1, key, *args)]
        if replicas > 0:
            cmds.append(PipelineCommand(len(head) + 1, "WAIT", replicas, timeout_ms))
        on_round_trip(len(cmds))
        try:
            await node.execute_pipeline(cmds)
        except (rex.ConnectionError, rex.TimeoutError):
            # The driver would mark the topology stale; do the same so the next attempt rediscovers.
            node.update_active_connections_for_reconnect()
            await node.disconnect_free_connections()
            await client.nodes_manager.initialize()
            raise
        result = cmds[len(head)].result
        waited = cmds[-1].result if replicas > 0 else None
        asking_node = None
        if isinstance(result, rex.NoScriptError) and not use_eval:
            use_eval = True
            continue
        if isinstance(result, rex.MovedError):
            await client.nodes_manager.move_slot(result)
            continue
        if isinstance(result, rex.AskError):
            asking_node = client.get_node(host=result.host, port=result.port)
            if asking_node is None:  # a node we have never seen: rediscover, let the caller retry
                await client.nodes_manager.initialize()
                raise result
            continue
        if isinstance(result, (rex.ClusterDownError, rex.TryAgainError)):
            await client.nodes_manager.initialize()
            raise result
        if isinstance(result, BaseException):
            raise result
        return result, waited
    raise rex.ClusterError(f"too many redirects for {key}")
