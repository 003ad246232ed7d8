"""Background responses (`background: true`): run in a task of the accepting process, not tied to
any client connection; polled, cancelled and settled from any replica (docs/API.md).

A create stores the response as `queued` (after taking its lease) and returns at once (or streams
its events, with `stream: true`: a client that drops only stops listening). The run stores it as
`in_progress`, then the service's usual stream of the backend's chunks stores the settled response
(`completed` / `incomplete` / `failed`, or `cancelled`).

While it runs, one heartbeat per poll (about every 0.5 s) renews the lease in the store and reads
the cancel flag (`stores/control.py`): `POST /v1/responses/{id}/cancel` on any replica sets it, the
running replica cancels the run (the backend request is closed), and the service stores the
response as `cancelled`. A `GET` that finds a `queued` / `in_progress` background response whose
lease has expired (its replica died) settles it as `failed`, saying so. On shutdown, running work
gets `server.shutdown_grace_seconds`, then is cancelled and stored as `cancelled`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, field

import msgspec

from responses_gateway.config import BackgroundSettings
from responses_gateway.errors import InvalidRequest, NotFound, RateLimited, StoreUnavailable, UpstreamError
from responses_gateway.metrics import Metrics
from responses_gateway.protocol.errors import shown
from responses_gateway.protocol.events import Event, ResponseFailed, event_type
from responses_gateway.protocol.response import Response, ResponseError, Status
from responses_gateway.service import Prepared, RequestContext, ResponsesService
from responses_gateway.stores.base import StoredResponse
from responses_gateway.stores.control import BackgroundControl, control_for
from responses_gateway.stores.events import EventLog, LoggedEvent, event_log_for
from responses_gateway.translate.response import new_response

log = logging.getLogger("responses_gateway.background")

_encode = msgspec.json.Encoder().encode
_decode_response = msgspec.json.Decoder(Response).decode
RUNNING: frozenset[Status] = frozenset({"queued", "in_progress"})
CANCEL_WAIT_SECONDS = 5.0  # how long a cancel waits for the running replica to settle the response
_SETTLE_POLL = 0.1
_SETTLE_WAIT = 5.0  # how long a cancelled run waits for the service's write of it
REPLAY_PAGE = 500  # events per read of a replay
LOG_EVERY = 0.05  # seconds between writes to the event log of a running response (the last: at once)
FOLLOW_POLL = 0.1  # seconds between reads of a replay that has caught up with the run
_QUIET = 0.3  # a settled response's replay ends after this long without a new event
TERMINAL_TYPES = frozenset({"response.completed", "response.incomplete", "response.failed"})


@dataclass(slots=True, eq=False)
class _Job:
    """One running background response, and the streams listening to its events."""

    prepared: Prepared
    ctx: RequestContext
    response: Response  # its `queued` snapshot
    task: asyncio.Task[None] | None = None
    listeners: list[asyncio.Queue[list[Event] | None]] = field(default_factory=list)
    started: bool = False  # the service's stream has produced events (it stores a cancellation)

    def publish(self, batch: list[Event] | None) -> None:
        for queue in self.listeners:
            queue.put_nowait(batch)


class BackgroundRunner:
    def __init__(self, service: ResponsesService, settings: BackgroundSettings) -> None:
        self.service = service
        self.store = service.store
        self.control: BackgroundControl = control_for(service.store)
        self.max_concurrent = settings.max_concurrent
        self.lease_seconds = settings.lease_seconds
        self.poll_seconds = min(0.5, settings.lease_seconds / 4)
        self.events: EventLog = event_log_for(service.store)
        self.events_keep_seconds = settings.events_keep_seconds
        self._log_failed = False
        self._jobs: dict[str, _Job] = {}
        self._heartbeat: asyncio.Task[None] | None = None
        self._closing = False
        self.metrics: Metrics | None = None  # set by the app

    @property
    def running(self) -> int:
        return len(self._jobs)

    # -- create -----------------------------------------------------------------------------------

    async def start(self, p: Prepared, ctx: RequestContext) -> bytes | AsyncGenerator[list[Event], None]:
        """Queue the response and start its run: the `queued` Response JSON, or (stream: true) its
        events as the run makes them."""
        if self._closing:
            raise StoreUnavailable("background: the gateway is shutting down")
        if len(self._jobs) >= self.max_concurrent:
            raise RateLimited(
                f"Too many background responses are running on this gateway process "
                f"(response_api.background.max_concurrent = {self.max_concurrent}). Try again later.",
                headers={"Retry-After": "1"},
            )
        response = new_response(p.req, p.response_id, int(time.time()), p.defaults)
        response.status = "queued"
        job = _Job(p, ctx, response)
        self._jobs[p.response_id] = job  # counted from now: the cap holds while the writes run
        metrics = self.metrics
        if metrics is not None:
            metrics.background_running.inc()
        try:
            await self.control.heartbeat(p.response_id, self.lease_seconds)
            body = _encode(response)
            await self.store.put(self._record(job, response, body))
        except BaseException:
            self._jobs.pop(p.response_id, None)
            if metrics is not None:
                metrics.background_running.dec()
            raise
        if metrics is not None:
            metrics.background_started.inc()
        queue: asyncio.Queue[list[Event] | None] | None = None
        if p.stream:
            queue = asyncio.Queue()
            job.listeners.append(queue)
        job.task = asyncio.get_running_loop().create_task(self._run(job))
        self._ensure_heartbeat()
        if queue is None:
            return body
        return self._listen(job, queue)

    async def _listen(
        self, job: _Job, queue: asyncio.Queue[list[Event] | None]
    ) -> AsyncGenerator[list[Event], None]:
        """The run's events for one client; a client that leaves only stops listening."""
        try:
            while (batch := await queue.get()) is not None:
                yield batch
        finally:
            if queue in job.listeners:
                job.listeners.remove(queue)

    def _record(self, job: _Job, response: Response, body: bytes) -> StoredResponse:
        return self.service._record(job.prepared, job.ctx, response, body)

    async def _put(self, job: _Job, response: Response) -> None:
        await self.store.put(self._record(job, response, _encode(response)))

    async def _run(self, job: _Job) -> None:
        p = job.prepared
        unlogged: list[Event] = []  # events not yet in the event log (written at most every LOG_EVERY s)
        logged_at = 0.0
        outcome = "failed"  # the final status, for gateway_background_finished_total
        try:
            await self._put(job, msgspec.structs.replace(job.response, status="in_progress"))
            async with aclosing(self.service.stream(p, job.ctx)) as events:
                async for batch in events:
                    job.started = True
                    job.publish(batch)
                    unlogged += batch
                    if time.monotonic() - logged_at >= LOG_EVERY:
                        logged_at = time.monotonic()
                        await self._log(p.response_id, unlogged)
                        unlogged = []
                    settled = getattr(batch[-1], "response", None) if batch else None
                    if settled is not None and settled.status not in RUNNING:
                        outcome = settled.status
        except asyncio.CancelledError:
            outcome = "cancelled"
            if not job.started:  # before the backend's first chunk: the service stored nothing
                await asyncio.shield(self._settle(job, "cancelled"))
            else:  # the service stores it as cancelled in a task of its own: let it land first
                await self.service.settled(_SETTLE_WAIT)
            log.info("background response %s cancelled", p.response_id)
        except UpstreamError as exc:  # before the first chunk (later ones are stored as failed)
            if not exc.logged:  # else the upstream client logged the backend's own words
                exc.logged = True
                log.warning("background response %s: the backend failed: %s", p.response_id, exc.message)
            failed = await self._settle(job, "failed", exc.message)
            closing: list[Event] = [ResponseFailed(sequence_number=0, response=failed)]
            job.publish(closing)
            unlogged += closing
        except StoreUnavailable as exc:
            log.warning("background response %s could not be stored: %s", p.response_id, exc.detail)
        except Exception:
            log.exception("background response %s failed", p.response_id)
            await self._settle(job, "failed", "The gateway failed while running this response.")
        finally:
            job.publish(None)
            self._jobs.pop(p.response_id, None)
            if self.metrics is not None:
                self.metrics.background_running.dec()
                self.metrics.background_finished.labels(outcome).inc()
            try:
                if unlogged:
                    await asyncio.shield(self._log(p.response_id, unlogged))
                await asyncio.shield(self.control.release(p.response_id))
            except (StoreUnavailable, asyncio.CancelledError):
                pass  # the lease expires by itself

    async def _log(self, response_id: str, batch: list[Event]) -> None:
        """Keep the events for replays; a store failure only makes a replay miss them (logged once)."""
        logged = [LoggedEvent(e.sequence_number, event_type(e), _encode(e)) for e in batch]
        try:
            await self.events.append(response_id, logged, self.events_keep_seconds)
        except StoreUnavailable as exc:
            if not self._log_failed:
                self._log_failed = True
                log.warning("background: keeping the events of %s failed (logged once): %s", response_id, exc)

    async def _settle(self, job: _Job, status: Status, message: str | None = None) -> Response:
        """Store the response settled without output (it never reached the backend's first chunk)."""
        error = ResponseError("server_error", message) if message is not None else None
        response = msgspec.structs.replace(job.response, status=status, error=error)
        try:
            await self._put(job, response)
        except StoreUnavailable as exc:
            log.warning(
                "background response %s: storing it as %s failed: %s", job.response.id, status, exc.detail
            )
        return response

    # -- heartbeat --------------------------------------------------------------------------------

    def _ensure_heartbeat(self) -> None:
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.get_running_loop().create_task(self._beat())

    async def _beat(self) -> None:
        """Renew every running response's lease and read its cancel flag, every poll, until none runs."""
        while self._jobs:
            await asyncio.sleep(self.poll_seconds)
            jobs = list(self._jobs.items())
            results = await asyncio.gather(
                *(self.control.heartbeat(rid, self.lease_seconds) for rid, _ in jobs), return_exceptions=True
            )
            for (rid, job), cancel in zip(jobs, results, strict=True):
                if isinstance(cancel, BaseException):
                    log.warning("background response %s: lease renewal failed: %s", rid, cancel)
                elif cancel and job.task is not None:
                    job.task.cancel()

    # -- read, cancel -----------------------------------------------------------------------------

    async def checked(self, response_id: str, body: bytes, ctx: RequestContext) -> bytes:
        """`body` (a stored response), or the response settled as `failed` when it is a background
        one still `queued` / `in_progress` whose runner is gone (its lease expired)."""
        if b'"background":true' not in body or response_id in self._jobs:
            return body
        response = _decode_response(body)
        if response.status not in RUNNING:
            return body
        state = await self.control.state(response_id)
        if state.leased is not False:
            return body
        status: Status = "cancelled" if state.cancel else "failed"
        message = (
            None
            if state.cancel
            else "The gateway process running this background response stopped before it finished "
            f"(its lease, response_api.background.lease_seconds = {self.lease_seconds:g} s, expired)."
        )
        return await self._settle_stored(response_id, ctx, status, message) or body

    async def _settle_stored(
        self, response_id: str, ctx: RequestContext, status: Status, message: str | None
    ) -> bytes | None:
        record = await self.store.get(response_id, owner=ctx.owner)
        if record is None:
            return None
        response = _decode_response(record.response)
        if response.status not in RUNNING:
            return record.response  # settled meanwhile
        response.status = status
        response.error = ResponseError("server_error", message) if message is not None else None
        body = _encode(response)
        await self.store.put(
            StoredResponse(
                id=record.id,
                previous_response_id=record.previous_response_id,
                response=body,
                input_items=record.input_items,
                chat=record.chat,
                owner=record.owner,
                created_at=record.created_at,
            )
        )
        log.warning("background response %s settled as %s: %s", response_id, status, message or "cancel")
        return body

    async def cancel(self, response_id: str, ctx: RequestContext) -> bytes:
        """Cancel a running background response (from any replica); the settled Response JSON."""
        body = await self._stored(response_id, ctx)
        response = _decode_response(body)
        if not response.background:
            raise InvalidRequest("Cannot cancel a synchronous response.")
        if response.status == "cancelled":
            return body
        if response.status not in RUNNING:
            raise InvalidRequest(f"Cannot cancel a response that is already {response.status}.")
        job = self._jobs.get(response_id)
        if job is not None and job.task is not None:
            job.task.cancel()
            await asyncio.wait({job.task}, timeout=CANCEL_WAIT_SECONDS)
        else:
            await self.control.request_cancel(response_id, max(60.0, self.lease_seconds * 3))
        deadline = time.monotonic() + CANCEL_WAIT_SECONDS
        while True:
            body = await self.checked(response_id, await self._stored(response_id, ctx), ctx)
            if b'"background":true' in body and _decode_response(body).status not in RUNNING:
                return body
            if time.monotonic() >= deadline:
                return body  # still running: the runner settles it when it sees the flag
            await asyncio.sleep(_SETTLE_POLL)

    async def _stored(self, response_id: str, ctx: RequestContext) -> bytes:
        record = await self.store.get(response_id, owner=ctx.owner)
        if record is None:
            raise NotFound(f"Response with id '{shown(response_id)}' not found.", param="response_id")
        return record.response

    # -- replay -----------------------------------------------------------------------------------

    async def replay(
        self, response_id: str, ctx: RequestContext, after: int
    ) -> AsyncGenerator[LoggedEvent, None]:
        """The events of a background response after sequence number `after`, then the live ones
        until the terminal event (or, for a cancelled one, until it is settled and quiet).
        Errors are raised here, before the first event."""
        body = await self.checked(response_id, await self._stored(response_id, ctx), ctx)
        response = _decode_response(body)
        if not response.background:
            raise InvalidRequest(
                "Only background responses (created with background: true) can be streamed again.",
                param="stream",
            )
        exists, first = await self.events.read(response_id, after, REPLAY_PAGE)
        if not exists and response.status not in RUNNING:
            raise InvalidRequest(
                f"The events of response '{shown(response_id)}' are no longer kept "
                f"(response_api.background.events_keep_seconds = {self.events_keep_seconds:g} s).",
                param="stream",
            )
        return self._follow(response_id, ctx, after, first)

    async def _follow(
        self, response_id: str, ctx: RequestContext, after: int, batch: list[LoggedEvent]
    ) -> AsyncGenerator[LoggedEvent, None]:
        settled_at: float | None = None
        last_check = time.monotonic()
        while True:
            for event in batch:
                yield event
                after = event.sequence_number
                if event.type in TERMINAL_TYPES:
                    return
            now = time.monotonic()
            if batch:
                if settled_at is not None:
                    settled_at = now
            elif settled_at is not None:
                if now - settled_at >= _QUIET:
                    return  # settled (cancelled: no terminal event) and nothing more came
            elif now - last_check >= 0.5:
                last_check = now
                body = await self.checked(response_id, await self._stored(response_id, ctx), ctx)
                if _decode_response(body).status not in RUNNING:
                    settled_at = now
            if len(batch) < REPLAY_PAGE:
                await asyncio.sleep(FOLLOW_POLL)
            _, batch = await self.events.read(response_id, after, REPLAY_PAGE)

    # -- shutdown ---------------------------------------------------------------------------------

    async def shutdown(self, grace: float) -> None:
        """Let running work finish for `grace` seconds, then cancel it (stored as `cancelled`)."""
        self._closing = True
        tasks = {job.task for job in self._jobs.values() if job.task is not None}
        if tasks:
            log.info("shutdown: waiting up to %g s for %d background response(s)", grace, len(tasks))
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("shutdown: %d background response(s) cancelled after %g s", len(pending), grace)
                await asyncio.wait(pending, timeout=5.0)
        if self._heartbeat is not None:
            self._heartbeat.cancel()
