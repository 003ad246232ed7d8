"""What the edge (api/edge.py: Host, Origin, the key, Content-Type) costs per request, without and
with client keys: `GET /v1/responses/{id}` on the memory store, driven through the ASGI app in one
process (no sockets, no server), so the figure is the gateway's own CPU per request and nothing else.

Rounds alternate between the configurations; the median of the rounds is shown.

Run: .venv/bin/python benchmarks/edge_cost.py [--n 20000] [--rounds 5]
"""

from __future__ import annotations

import _common

# isort: split
import argparse
import asyncio
import logging
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import Message

from responses_gateway.app import create_app
from responses_gateway.config import settings_from_dict
from responses_gateway.stores.base import StoredResponse

RESPONSE_ID = "resp_" + "ab" * 24
CONFIGS: dict[str, int] = {"no auth": 0, "auth, 2 keys": 2, "auth, 100 keys": 100}

Call = Callable[[], Awaitable[None]]


def _key(i: int) -> str:
    return f"rgw-bench-key-{i:04d}-" + "x" * 24


async def _started(keys: int) -> tuple[Call, Callable[[], Awaitable[None]]]:
    """A ready app (lifespan run, one stored response) and a call of one GET through it."""
    config: dict[str, Any] = {
        "backends": [{"name": "echo", "base_url": "http://127.0.0.1:9/v1"}],
        "response_api": {"store_backend": "memory"},
        "log_level": "error",
    }
    if keys:
        config["auth"] = {"api_keys": [{"tenant": f"t{i}", "key": _key(i)} for i in range(keys)]}
    app = create_app(settings_from_dict(config))
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()
    lifespan = asyncio.get_running_loop().create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, outbox.put)
    )
    await inbox.put({"type": "lifespan.startup"})
    started = await outbox.get()
    assert started["type"] == "lifespan.startup.complete", started
    owner = f"t{keys - 1}" if keys else ""
    record = StoredResponse(RESPONSE_ID, None, b'{"id":"x"}', b"[]", b"[]", owner=owner)
    await app.state.gateway.service.store.put(record)
    key = _key(keys - 1) if keys else "anything"  # the last key: the table is searched in full anyway
    headers = [
        (b"host", b"127.0.0.1:8801"),
        (b"accept", b"application/json"),
        (b"user-agent", b"OpenAI/Python 1.0"),
        (b"authorization", f"Bearer {key}".encode()),
    ]
    path = f"/v1/responses/{RESPONSE_ID}"
    statuses: list[int] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def call() -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8801),
            "state": {},
        }
        await app(scope, receive, send)
        if statuses.pop() != 200:
            raise AssertionError("the GET did not answer 200")

    async def stop() -> None:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await lifespan

    return call, stop


async def _measure(n: int, rounds: int) -> dict[str, list[float]]:
    apps = {name: await _started(keys) for name, keys in CONFIGS.items()}
    results: dict[str, list[float]] = {name: [] for name in CONFIGS}
    for call, _ in apps.values():
        for _ in range(1000):  # warm-up
            await call()
    for _ in range(rounds):
        for name, (call, _) in apps.items():
            start = time.process_time()
            for _ in range(n):
                await call()
            results[name].append((time.process_time() - start) / n * 1e6)
    for _, stop in apps.values():
        await stop()
    return results


def main() -> None:
    logging.getLogger("responses_gateway").setLevel(logging.ERROR)  # not the memory store's warning
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results = asyncio.run(_measure(args.n, args.rounds))
    info = _common.machine()
    base = statistics.median(results["no auth"])
    print(f"`.venv/bin/python benchmarks/edge_cost.py --n {args.n} --rounds {args.rounds}`  ")
    print(f"{info['date']}; {info['nproc']} CPUs ({info['cpu']}); Python {info['python']}.\n")
    rows = [
        [name, statistics.median(times), statistics.median(times) - base, min(times), max(times)]
        for name, times in results.items()
    ]
    print(
        _common.md_table(
            ["GET /v1/responses/{id} (memory store, in process)", "µs CPU", "µs over no auth", "min", "max"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
