"""`responses-gateway inspect`: open the configured store read-only from outside the gateway and print
its health, an owner's recent responses and a response's thread (text, or JSON with `--json`)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import orjson

from responses_gateway import ids, inspector
from responses_gateway.config import Settings
from responses_gateway.errors import StoreUnavailable
from responses_gateway.stores import IN_PROCESS
from responses_gateway.stores.inspect import StoreInspector

EXIT_NOT_FOUND = 1  # no such response for this owner, or the store is unavailable


@dataclass(frozen=True, slots=True)
class InspectArgs:
    response_id: str | None
    owner: str
    recent: int
    as_json: bool
    full: bool


class CannotInspect(Exception):
    """The configured store cannot be inspected from another process (the message says why)."""


@asynccontextmanager
async def open_inspector(settings: Settings) -> AsyncIterator[StoreInspector]:
    """The configured store's inspector; SQLite is opened read-only (nothing written, no purge)."""
    api = settings.response_api
    if not api.enabled:
        raise CannotInspect("response_api.enabled is false: there is no store to inspect")
    if api.store_backend in IN_PROCESS:
        raise CannotInspect(
            f"the {api.store_backend} store (response_api.store_backend: {api.store_backend}) lives inside "
            "the gateway process: another process cannot read it. Enable the gateway's /ui page "
            "(ui.enabled: true) to look at it there, or use store_backend sqlite or redis"
        )
    if api.store_backend == "sqlite":
        from responses_gateway.stores._inspect_sqlite import ReadOnlyFile, SQLiteInspector

        file = ReadOnlyFile(api.sqlite.path)
        try:
            yield SQLiteInspector(api.sqlite.path, file.read)
        finally:
            file.close()
        return
    from responses_gateway.stores import open_store
    from responses_gateway.stores.inspect import inspector_for

    store = await open_store(api)
    try:
        yield inspector_for(store)
    finally:
        await store.aclose()


async def _inspect(settings: Settings, args: InspectArgs) -> int:
    async with open_inspector(settings) as store:
        report: dict[str, object] = {"owner": args.owner, "health": await inspector.health(store)}
        if args.recent:
            report["recent"] = await inspector.recent(store, args.owner, args.recent)
        if args.response_id is not None:
            report["chain"] = await inspector.chain(store, args.response_id, args.owner)
    if args.as_json:
        sys.stdout.buffer.write(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        out = inspector.render_health(report["health"])  # type: ignore[arg-type]
        if "recent" in report:
            out += inspector.render_recent(report["recent"])  # type: ignore[arg-type]
        if report.get("chain") is not None:
            out += inspector.render_chain(report["chain"], full=args.full)  # type: ignore[arg-type]
        sys.stdout.write(out)
    if args.response_id is not None and report["chain"] is None:
        print(
            f"error: no response {args.response_id} for owner {args.owner!r} (unknown, expired, or "
            "another owner's: --owner names the tenant)",
            file=sys.stderr,
        )
        return EXIT_NOT_FOUND
    return 0


def run_inspect(settings: Settings, args: InspectArgs) -> int:
    """Run the command; the exit code: 0, 1 (not found, store unavailable) or 2 (cannot inspect)."""
    if args.response_id is not None and not ids.is_response_id(args.response_id):
        print(f"error: not a response id of this gateway: {args.response_id!r}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_inspect(settings, args))
    except CannotInspect as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except StoreUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NOT_FOUND
