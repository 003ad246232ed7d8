"""The access log's cost per request, in-process: `AccessLog` (request id, response header, access
line, round-trips histogram) around an ASGI app that answers at once, next to the app alone.

Variants: the app alone; with the access log at `warning` (the line is skipped); at `info` in text
and in JSON, written to a file (as to a redirected stderr); and with a client's `X-Request-Id`.
Each figure is the median of `--rounds` runs of `--n` requests, alternating the variants, in CPU
time of this process.

Run: .venv/bin/python benchmarks/access_cost.py [--n 20000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from responses_gateway.api.access import AccessLog
from responses_gateway.logs import JsonFormatter, RequestIdFilter, TextFormatter
from responses_gateway.metrics import Metrics

BODY = b'{"id":"resp_x"}'


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": BODY})


async def _receive() -> dict[str, object]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: object) -> None:
    return None


def _scope(headers: list[tuple[bytes, bytes]]) -> Scope:
    return {
        "type": "http",
        "method": "GET",
        "path": "/v1/responses/resp_0123456789abcdef",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8080"), (b"accept", b"application/json"), *headers],
    }


async def _time(target: ASGIApp, scope: Scope, n: int) -> float:
    """CPU microseconds per request (this process's CPU time: other work on the machine counts less
    than in wall time)."""
    start = time.process_time()
    for _ in range(n):
        await target(dict(scope), _receive, _send)
    return (time.process_time() - start) / n * 1e6


def _logging(level: int, formatter: logging.Formatter | None, path: str) -> Callable[[], None]:
    """Route `responses_gateway.access` to a file at `level`; returns the undo."""
    logger = logging.getLogger("responses_gateway.access")
    handler = logging.FileHandler(path)
    handler.addFilter(RequestIdFilter())
    if formatter is not None:
        handler.setFormatter(formatter)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False

    def undo() -> None:
        logger.removeHandler(handler)
        handler.close()

    return undo


async def _main(n: int, rounds: int) -> None:
    access = AccessLog(app, Metrics())
    plain, with_id = _scope([]), _scope([(b"x-request-id", b"client-id-0123456789")])
    results: dict[str, list[float]] = {}
    with tempfile.NamedTemporaryFile(prefix="access-", suffix=".log") as log:
        variants: list[tuple[str, ASGIApp, Scope, int, logging.Formatter | None]] = [
            ("app alone", app, plain, logging.WARNING, None),
            ("access log, level warning (no line)", access, plain, logging.WARNING, TextFormatter()),
            ("access log, text line", access, plain, logging.INFO, TextFormatter()),
            ("access log, text line, client X-Request-Id", access, with_id, logging.INFO, TextFormatter()),
            ("access log, JSON line", access, plain, logging.INFO, JsonFormatter()),
        ]
        for name, target, scope, _, _ in variants:  # warm-up
            await _time(target, scope, 500)
            results[name] = []
        for _ in range(rounds):
            for name, target, scope, level, formatter in variants:
                undo = _logging(level, formatter, log.name)
                try:
                    results[name].append(await _time(target, scope, n))
                finally:
                    undo()
    base = statistics.median(results["app alone"])
    print("| variant | µs per request | added µs |\n|---|---|---|")
    for name, values in results.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.2f} | {median - base:+.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(_main(args.n, args.rounds))


if __name__ == "__main__":
    main()
