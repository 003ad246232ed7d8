"""Run the gateway app in-process under uvicorn, in a thread with its own event loop, on a free port.

A thread (not the test's loop) so that both the sync and async `openai` clients can talk to it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from responses_gateway.app import create_app
from responses_gateway.config import Settings, settings_from_dict


@dataclass
class Gateway:
    base_url: str  # includes /v1, ready for openai.OpenAI(base_url=...)
    root_url: str
    settings: Settings
    server: uvicorn.Server


def gateway_settings(backend_url: str, store: dict[str, Any] | None = None, **api: Any) -> Settings:
    """Settings for a test gateway: one catch-all backend, and the given store block."""
    response_api: dict[str, Any] = {"store_backend": "memory", **(store or {}), **api}
    return settings_from_dict(
        {
            "backends": [{"name": "echo", "base_url": backend_url, "models": ["*"], "timeout_seconds": 10}],
            "response_api": response_api,
        }
    )


@contextmanager
def serving(config: uvicorn.Config) -> Iterator[tuple[uvicorn.Server, str]]:
    """Run uvicorn with `config` (port 0: a free one) in a thread until the block ends; yields the
    server and its root URL."""
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the gateway did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def run_gateway(settings: Settings) -> Iterator[Gateway]:
    """Serve `settings` on 127.0.0.1:<free port> until the block ends."""
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        access_log=False,
        lifespan="on",
        loop="asyncio",
    )
    with serving(config) as (server, root):
        yield Gateway(base_url=f"{root}/v1", root_url=root, settings=settings, server=server)


@contextmanager
def run_served_gateway(settings: Settings) -> Iterator[Gateway]:
    """Like `run_gateway`, with the server configured as `serve` configures it (`server.uvicorn_config`:
    the gateway's HTTP and WebSocket protocols and their limits) on 127.0.0.1:<free port>."""
    from responses_gateway.server import uvicorn_config

    server = settings.server.model_copy(update={"host": "127.0.0.1", "port": 0})
    settings = settings.model_copy(update={"server": server, "log_level": "warning"})
    config = uvicorn_config(create_app(settings), settings, loop="asyncio")
    with serving(config) as (srv, root):
        yield Gateway(base_url=f"{root}/v1", root_url=root, settings=settings, server=srv)
