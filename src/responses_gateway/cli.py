"""The `responses-gateway` command: `serve` runs the gateway, `check-config` validates a config file,
`keys new --tenant NAME` makes a client key, `inspect` shows the store's health and a response's
thread (`inspect_cli.py`).

`serve --workers N` runs N worker processes (`supervisor.py`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import yaml

from responses_gateway import __version__
from responses_gateway.config import Settings, load_settings, redacted
from responses_gateway.errors import ConfigError
from responses_gateway.logs import configure_logging
from responses_gateway.stores import IN_PROCESS

if TYPE_CHECKING:
    from starlette.types import ASGIApp
    from uvicorn import Config

LOG_LEVELS = ("debug", "info", "warning", "error")
EXIT_USAGE = 2  # bad config or arguments, as argparse uses
EXIT_STARTUP_FAILURE = 3  # uvicorn's code when the app's lifespan start-up fails
KEY_PREFIX = "rgw-"  # `keys new`: rgw- and 43 URL-safe characters (32 random bytes)

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
        "--log-level",
        type=str.lower,
        choices=LOG_LEVELS,
        help="overrides the config's log_level (which is info when the config has none)",
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

    keys = commands.add_parser("keys", help="client API keys", description="Client API keys (auth.api_keys).")
    keys_commands = keys.add_subparsers(dest="keys_command", metavar="COMMAND", required=True)
    new = keys_commands.add_parser(
        "new",
        help="print a fresh random key and its config lines",
        description="Print a fresh random key (first line) and the auth.api_keys entry holding only its "
        "SHA-256. The key is shown once and stored nowhere.",
    )
    new.add_argument("--tenant", required=True, metavar="NAME", help="the tenant the key belongs to")

    inspect = commands.add_parser(
        "inspect",
        help="the store's health and size, a response's thread as a tree",
        description="Print the configured store's health and size; with a response id, its thread as a "
        "tree (ancestors, the response, its descendants and branches) with each turn's items. Reads "
        "only; the memory store lives inside the gateway and cannot be inspected from here (see /ui).",
    )
    inspect.add_argument("response_id", nargs="?", metavar="RESPONSE_ID", help="a response id (resp_...)")
    inspect.add_argument("--config", required=True, metavar="FILE", help="YAML config file")
    inspect.add_argument(
        "--owner",
        "--tenant",
        dest="owner",
        default="",
        metavar="NAME",
        help='the tenant whose responses to look at (default: the anonymous owner "", as without keys)',
    )
    inspect.add_argument(
        "--recent", type=int, default=0, metavar="N", help="also list the N newest responses"
    )
    inspect.add_argument("--json", action="store_true", help="one JSON document, for scripts")
    inspect.add_argument("--full", action="store_true", help="items' whole text (default: one line each)")
    return parser


def _fail(message: str) -> int:
    """Print each line of `message` as one `error:` line (a config may have several errors)."""
    for line in message.splitlines() or [""]:
        print(f"error: {line}", file=sys.stderr)
    return EXIT_USAGE


def _check_config(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        return _fail(str(exc))
    sys.stdout.write(yaml.safe_dump(redacted(settings), sort_keys=False, default_flow_style=False))
    return 0


def _keys_new(args: argparse.Namespace) -> int:
    import hashlib
    import secrets

    from pydantic import ValidationError

    from responses_gateway.config import APIKey

    key = KEY_PREFIX + secrets.token_urlsafe(32)
    sha = hashlib.sha256(key.encode()).hexdigest()
    try:
        entry = APIKey(tenant=args.tenant, key_sha256=sha)
    except ValidationError as exc:
        return _fail(
            f"--tenant: {exc.errors()[0]['msg'].removeprefix('Value error, ')} (got {args.tenant!r})"
        )
    config = {"auth": {"api_keys": [{"tenant": entry.tenant, "key_sha256": sha}]}}
    sys.stdout.write(
        f"{key}\n"
        f"# the key above, for tenant {entry.tenant!r} (fingerprint {sha[:8]}), is shown once: give it "
        "to the tenant.\n# The config keeps only its SHA-256 (add the entry to auth.api_keys):\n"
        + yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
    )
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from responses_gateway.inspect_cli import InspectArgs, run_inspect

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        return _fail(str(exc))
    if not 0 <= args.recent <= 1000:
        return _fail(f"--recent: between 0 and 1000 (got {args.recent})")
    return run_inspect(settings, InspectArgs(args.response_id, args.owner, args.recent, args.json, args.full))


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


def _configure_logging(settings: Settings) -> None:
    configure_logging(settings.log_level, settings.log_format)


def _build_app(settings: Settings) -> ASGIApp:
    from responses_gateway.app import create_app  # imported late: `check-config` needs none of it

    return create_app(settings)


def _uvicorn_config(app: ASGIApp, settings: Settings) -> Config:
    from responses_gateway.server import uvicorn_config

    return uvicorn_config(app, settings)


def _raise_open_files_limit(settings: Settings) -> None:
    from responses_gateway.server import raise_open_files_limit

    raise_open_files_limit(settings.server.max_connections)


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


def _run_workers(settings: Settings, workers: int) -> int:
    """Serve with `workers` processes on the port until SIGTERM/SIGINT; return the exit code."""
    from responses_gateway.supervisor import run_workers

    return run_workers(settings, workers)


def _memory_store_refusal(settings: Settings, workers: int, where: str) -> str | None:
    api = settings.response_api
    if workers == 1 or not api.enabled or api.store_backend not in IN_PROCESS:
        return None
    name = api.store_backend
    return (
        f"{where}: the {name} store (response_api.store_backend: {name}) lives inside one "
        f"process, so each of the {workers} workers would have its own: a follow-up "
        "(previous_response_id, GET, DELETE) reaching another worker would get 404. "
        "Use store_backend sqlite or redis, or 1 worker"
    )


def _bind_refusal(settings: Settings, where: str) -> str | None:
    """Why listening on `server.host` is refused: a non-loopback address with no client keys, unless
    `server.allow_unauthenticated` says so (then a warning is logged)."""
    from responses_gateway.api.edge import is_loopback_host

    host = settings.server.host
    if is_loopback_host(host) or settings.auth.enabled:
        return None
    if settings.server.allow_unauthenticated:
        logger.warning(
            "listening on %s without API keys (server.allow_unauthenticated: true): anyone who can reach "
            "it can read, chain on and delete every stored response and use the backends",
            host,
        )
        return None
    return (
        f"{where} {host}: refusing to listen on a non-loopback address without client keys: anyone who "
        "can reach it could read and delete every stored response and use the backends. Set "
        "auth.api_keys (`responses-gateway keys new --tenant NAME` makes a key), or "
        "server.allow_unauthenticated: true to accept that, or listen on 127.0.0.1"
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
    _configure_logging(settings)
    refusal = _bind_refusal(settings, "--host" if args.host is not None else "server.host")
    if refusal is not None:
        return _fail(refusal)
    _raise_open_files_limit(settings)  # inherited by the workers
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
    if args.command == "keys":
        return _keys_new(args)
    if args.command == "inspect":
        return _inspect(args)
    parser.print_help(sys.stderr)
    return EXIT_USAGE
