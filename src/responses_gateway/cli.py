"""The `responses-gateway` command: `serve` runs the gateway, `check-config` validates a config file.

`serve --workers N` runs N processes on one listening socket under uvicorn's supervisor.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import yaml

from responses_gateway import __version__
from responses_gateway.config import Settings, load_settings, redacted
from responses_gateway.errors import ConfigError

if TYPE_CHECKING:
    from socket import socket

    from starlette.types import ASGIApp
    from uvicorn import Config

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_LEVELS = ("debug", "info", "warning", "error")
EXIT_USAGE = 2  # bad config or arguments, as argparse uses
EXIT_STARTUP_FAILURE = 3  # uvicorn's code when the app's lifespan start-up fails

logger = logging.getLogger("responses_gateway")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range 0-65535: {value}")
    return value


def _workers(text: str) -> int | Literal["auto"]:
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of workers or 'auto': {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"at least 1 worker: {value}")
    return value


def cpu_count() -> int:
    """The CPU cores this process may run on (its affinity mask, as os.process_cpu_count in 3.13)."""
    counter = getattr(os, "process_cpu_count", None)
    if counter is not None:
        count: int | None = counter()
    elif hasattr(os, "sched_getaffinity"):
        count = len(os.sched_getaffinity(0))
    else:
        count = os.cpu_count()
    return max(count or 1, 1)


def resolve_workers(value: int | Literal["auto"]) -> int:
    """The number of worker processes: `auto` is one per CPU core."""
    return cpu_count() if value == "auto" else value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="responses-gateway",
        description="The stateful OpenAI Responses API over any Chat Completions backend.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the gateway", description="Run the gateway.")
    serve.add_argument("--config", required=True, metavar="FILE", help="YAML config file")
    serve.add_argument("--host", help="listen address (overrides server.host)")
    serve.add_argument("--port", type=_port, help="listen port (overrides server.port)")
    serve.add_argument(
        "--log-level", type=str.lower, choices=LOG_LEVELS, help="overrides log_level (default: info)"
    )
    serve.add_argument(
        "--workers",
        type=_workers,
        metavar="N",
        help="worker processes sharing the port (overrides server.workers; default 1; 'auto': one per CPU "
        "core); more than 1 needs a shared store (sqlite or redis), not memory",
    )

    check = commands.add_parser(
        "check-config",
        help="validate a config file and print it with secrets redacted",
        description="Validate a config file; print the effective config as YAML with secrets redacted.",
    )
    check.add_argument("config", metavar="FILE", help="YAML config file")
    return parser


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _check_config(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        return _fail(str(exc))
    sys.stdout.write(yaml.safe_dump(redacted(settings), sort_keys=False, default_flow_style=False))
    return 0


def _with_overrides(settings: Settings, args: argparse.Namespace) -> Settings:
    server: dict[str, Any] = {}
    if args.host is not None:
        server["host"] = args.host
    if args.port is not None:
        server["port"] = args.port
    if args.workers is not None:
        server["workers"] = args.workers
    update: dict[str, Any] = {"server": settings.server.model_copy(update=server)}
    if args.log_level is not None:
        update["log_level"] = args.log_level
    return settings.model_copy(update=update)


def _configure_logging(level: str) -> None:
    logging.basicConfig(stream=sys.stderr, format=LOG_FORMAT, level=level.upper(), force=True)


def _build_app(settings: Settings) -> ASGIApp:
    from responses_gateway.app import create_app  # imported late: `check-config` needs none of it

    return create_app(settings)


def _uvicorn_config(app: Any, settings: Settings, workers: int = 1) -> Config:
    import uvicorn

    return uvicorn.Config(
        app,
        host=settings.server.host,
        port=settings.server.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_config=None,  # keep our root handler and format for uvicorn's loggers too
        log_level=settings.log_level,
        workers=workers,
        factory=workers > 1,
    )


def _run_uvicorn(app: ASGIApp, settings: Settings) -> int:
    """Serve until SIGTERM/SIGINT (uvicorn shuts down gracefully on both); return the exit code."""
    import uvicorn

    server = uvicorn.Server(_uvicorn_config(app, settings))
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits this way when the lifespan or the bind fails
        return exc.code if isinstance(exc.code, int) else EXIT_STARTUP_FAILURE
    except KeyboardInterrupt:
        pass
    return 0 if server.started else EXIT_STARTUP_FAILURE


def worker_app(settings: Settings) -> ASGIApp:
    """The app factory each worker process calls (uvicorn runs it in the child after unpickling)."""
    from uvicorn.config import STARTUP_FAILURE

    _configure_logging(settings.log_level)  # a spawned worker starts with no logging set up
    try:
        return _build_app(settings)
    except ConfigError as exc:
        logger.error("error: %s", exc)
    except Exception:  # a broken install: fail once, with the traceback, instead of a restart loop
        logger.exception("the worker could not build the app")
    raise SystemExit(STARTUP_FAILURE)  # the supervisor then stops every worker and exits 3


def _run_workers(settings: Settings, workers: int) -> int:
    """Serve with `workers` processes on one socket until SIGTERM/SIGINT; return the exit code.

    uvicorn's supervisor binds the socket once, starts the workers (spawned: each imports the gateway
    afresh and builds its own app and store connections), restarts one that dies or hangs, stops every
    one gracefully on SIGTERM/SIGINT, and gives up when one fails to start (exit 3, as with 1 worker).
    """
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors.multiprocess import Multiprocess

    from responses_gateway.metrics import mark_process_dead, shared_metrics_dir

    class Supervisor(Multiprocess):
        """uvicorn's supervisor, also dropping the live gauges of every worker that is gone."""

        def __init__(self, config: Config, sockets: list[socket], metrics_dir: str) -> None:
            super().__init__(config, sockets)
            self.metrics_dir = metrics_dir

        def _forget_gone(self, before: set[int | None]) -> None:
            for pid in before - {p.pid for p in self.processes}:
                if pid is not None:
                    mark_process_dead(pid, self.metrics_dir)

        def keep_subprocess_alive(self) -> None:
            before = {p.pid for p in self.processes}
            super().keep_subprocess_alive()
            self._forget_gone(before)

        def handle_signals(self) -> None:  # SIGHUP replaces every worker, SIGTTOU retires one
            before = {p.pid for p in self.processes}
            super().handle_signals()
            self._forget_gone(before)

    with shared_metrics_dir() as metrics_dir:  # exported before any worker imports prometheus_client
        config = _uvicorn_config(functools.partial(worker_app, settings), settings, workers)
        try:
            sock = config.bind_socket()  # exits with STARTUP_FAILURE when the port is taken
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else EXIT_STARTUP_FAILURE
        try:
            supervisor = Supervisor(config, [sock], metrics_dir)
            try:
                supervisor.run()
            except KeyboardInterrupt:
                supervisor.terminate_all()
                supervisor.join_all()
            failed = any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes)
            for process in supervisor.processes:
                if process.pid is not None:
                    mark_process_dead(process.pid, metrics_dir)
        finally:
            sock.close()
    return EXIT_STARTUP_FAILURE if failed else 0


def _memory_store_refusal(settings: Settings, workers: int, where: str) -> str | None:
    api = settings.response_api
    if workers == 1 or not api.enabled or api.store_backend != "memory":
        return None
    return (
        f"{where}: the memory store (response_api.store_backend: memory) lives inside one "
        f"process, so each of the {workers} workers would have its own: a follow-up "
        "(previous_response_id, GET, DELETE) reaching another worker would get 404. "
        "Use store_backend sqlite or redis, or 1 worker"
    )


def _serve(args: argparse.Namespace) -> int:
    try:
        settings = _with_overrides(load_settings(args.config), args)
    except ConfigError as exc:
        return _fail(str(exc))
    given = settings.server.workers
    workers = resolve_workers(given)
    flag = "--workers" if args.workers is not None else "server.workers"
    where = f"{flag} {given}" + (f" ({workers} cores)" if given == "auto" else "")
    refusal = _memory_store_refusal(settings, workers, where)
    if refusal is not None:
        return _fail(refusal)
    _configure_logging(settings.log_level)
    host, port = settings.server.host, settings.server.port
    with_workers = f" with {workers} workers" if workers > 1 else ""
    logger.info("responses-gateway %s starting on http://%s:%d%s", __version__, host, port, with_workers)
    if workers > 1:
        return _run_workers(settings, workers)  # each worker builds its app; this process only supervises
    try:
        app = _build_app(settings)
    except ConfigError as exc:
        return _fail(str(exc))
    return _run_uvicorn(app, settings)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with `argv` (default: the process's arguments); return the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "check-config":
        return _check_config(args)
    parser.print_help(sys.stderr)
    return EXIT_USAGE
