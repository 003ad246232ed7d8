"""The `responses-gateway` command: `serve` runs the gateway, `check-config` validates a config file."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import yaml

from responses_gateway import __version__
from responses_gateway.config import Settings, load_settings, redacted
from responses_gateway.errors import ConfigError

if TYPE_CHECKING:
    from starlette.types import ASGIApp

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
    update: dict[str, Any] = {"server": settings.server.model_copy(update=server)}
    if args.log_level is not None:
        update["log_level"] = args.log_level
    return settings.model_copy(update=update)


def _configure_logging(level: str) -> None:
    logging.basicConfig(stream=sys.stderr, format=LOG_FORMAT, level=level.upper(), force=True)


def _build_app(settings: Settings) -> ASGIApp:
    from responses_gateway.app import create_app  # imported late: `check-config` needs none of it

    return create_app(settings)


def _run_uvicorn(app: ASGIApp, settings: Settings) -> int:
    """Serve until SIGTERM/SIGINT (uvicorn shuts down gracefully on both); return the exit code."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host=settings.server.host,
        port=settings.server.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_config=None,  # keep our root handler and format for uvicorn's loggers too
        log_level=settings.log_level,
    )
    server = uvicorn.Server(config)
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits this way when the lifespan or the bind fails
        return exc.code if isinstance(exc.code, int) else EXIT_STARTUP_FAILURE
    except KeyboardInterrupt:
        pass
    return 0 if server.started else EXIT_STARTUP_FAILURE


def _serve(args: argparse.Namespace) -> int:
    try:
        settings = _with_overrides(load_settings(args.config), args)
    except ConfigError as exc:
        return _fail(str(exc))
    _configure_logging(settings.log_level)
    host, port = settings.server.host, settings.server.port
    logger.info("responses-gateway %s starting on http://%s:%d", __version__, host, port)
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
