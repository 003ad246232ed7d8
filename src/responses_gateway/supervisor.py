"""`serve --workers N`: N worker processes, each serving the gateway on its own SO_REUSEPORT socket of
the same port, started, replaced and stopped by a supervisor (the `serve` process)."""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import time
from typing import TYPE_CHECKING

from responses_gateway.config import Settings
from responses_gateway.errors import ConfigError
from responses_gateway.logs import configure_logging
from responses_gateway.server import LISTEN_BACKLOG, uvicorn_config

if TYPE_CHECKING:
    from multiprocessing.context import SpawnProcess

logger = logging.getLogger("responses_gateway.cli")

EXIT_STARTUP_FAILURE = 3  # uvicorn's code when the app's lifespan start-up fails
STOP_MARGIN = 10.0  # seconds a worker gets after server.shutdown_grace_seconds before it is killed


def _listen_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` listening sockets on host:port, one per worker, bound with SO_REUSEPORT: the kernel spreads
    new connections over them by a hash of their addresses. (On one shared socket, the worker that wakes
    first accepts a whole burst: measured 100/0 at c=32 with uvloop.) Raises OSError when the port is taken.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:  # without SO_REUSEPORT: fails if anyone holds the port
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
        port = probe.getsockname()[1]
    reuse_port = hasattr(socket, "SO_REUSEPORT")
    sockets: list[socket.socket] = []
    try:
        for _ in range(count if reuse_port else 1):
            sock = socket.socket(family)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            sock.listen(LISTEN_BACKLOG)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets if reuse_port else sockets * count


def _stop_with_parent(parent: int) -> None:
    """Linux: SIGTERM this process when the supervisor dies, even by SIGKILL, so no worker is orphaned."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it died before the line above
        os.kill(os.getpid(), signal.SIGTERM)


def _worker_main(settings: Settings, sock: socket.socket, parent: int) -> None:
    """One worker process (spawned): the gateway on its listening socket until SIGTERM/SIGINT."""
    import uvicorn

    _stop_with_parent(parent)
    configure_logging(
        settings.log_level, settings.log_format
    )  # a spawned process starts with no logging set up
    try:
        from responses_gateway.app import create_app

        app = create_app(settings)
    except ConfigError as exc:
        logger.error("error: %s", exc)
        raise SystemExit(EXIT_STARTUP_FAILURE) from None
    except Exception:  # a broken install: fail once, with the traceback, instead of restarting forever
        logger.exception("the worker could not build the app")
        raise SystemExit(EXIT_STARTUP_FAILURE) from None
    server = uvicorn.Server(uvicorn_config(app, settings))
    try:
        server.run(sockets=[sock])  # exits with EXIT_STARTUP_FAILURE when the lifespan start-up fails
    except KeyboardInterrupt:
        pass
    if not server.started:
        raise SystemExit(EXIT_STARTUP_FAILURE)


class _Supervisor:
    """Starts one worker process per socket and keeps it running until SIGTERM/SIGINT.

    A worker that exits is replaced on the same socket (connections queued on it wait for the new one);
    one that fails to start (exit code 3) stops them all. SIGTERM/SIGINT/SIGHUP stop every worker
    gracefully (uvicorn's shutdown: in-flight requests get server.shutdown_grace_seconds); a second signal,
    or STOP_MARGIN seconds more, kills those still running.
    A worker whose supervisor is killed outright stops too (Linux).
    """

    RESTART_DELAY = 1.0  # seconds before replacing a worker that lived shorter than this

    def __init__(self, settings: Settings, sockets: list[socket.socket], metrics_dir: str) -> None:
        self.settings = settings
        self.sockets = sockets
        self.metrics_dir = metrics_dir
        self.context = multiprocessing.get_context("spawn")  # a fresh interpreter: no state shared
        self.workers: list[SpawnProcess | None] = [None] * len(sockets)
        self.started_at = [0.0] * len(sockets)
        self.signals = 0

    def _on_signal(self, signum: int, frame: object) -> None:
        self.signals += 1

    def _start(self, slot: int) -> None:
        worker = self.context.Process(
            target=_worker_main, args=(self.settings, self.sockets[slot], os.getpid()), name=f"worker-{slot}"
        )
        worker.start()
        self.workers[slot], self.started_at[slot] = worker, time.monotonic()
        logger.info("worker %d started [%s]", slot, worker.pid)

    def _gone(self, worker: SpawnProcess) -> None:
        from responses_gateway.metrics import mark_process_dead

        worker.join()
        if worker.pid is not None:
            mark_process_dead(worker.pid, self.metrics_dir)

    def _watch(self) -> int:
        while not self.signals:
            alive = [w for w in self.workers if w is not None]
            multiprocessing.connection.wait([w.sentinel for w in alive], timeout=0.5)
            for slot, worker in enumerate(self.workers):
                if self.signals:
                    return 0
                if worker is None or worker.exitcode is None:
                    continue
                self._gone(worker)
                self.workers[slot] = None
                if worker.exitcode == EXIT_STARTUP_FAILURE:
                    logger.error("worker %d [%s] failed to start: stopping every worker", slot, worker.pid)
                    return EXIT_STARTUP_FAILURE
                logger.warning(
                    "worker %d [%s] exited (%s): starting another", slot, worker.pid, worker.exitcode
                )
                if time.monotonic() - self.started_at[slot] < self.RESTART_DELAY:
                    time.sleep(self.RESTART_DELAY)  # no busy restart loop
                self._start(slot)
        return 0

    def _stop(self) -> None:
        running = [w for w in self.workers if w is not None and w.exitcode is None]
        if running:
            logger.info("stopping %d workers", len(running))
        for worker in running:
            worker.terminate()  # SIGTERM: uvicorn's graceful shutdown
        for sock in self.sockets:  # once a worker closes its listener, new connections are refused
            sock.close()
        seen = self.signals
        deadline = time.monotonic() + self.settings.server.shutdown_grace_seconds + STOP_MARGIN
        for worker in (w for w in self.workers if w is not None):
            while worker.exitcode is None:
                worker.join(0.2)
                late = time.monotonic() > deadline
                if (self.signals > seen or late) and worker.exitcode is None:
                    logger.warning(
                        "worker [%s] killed%s", worker.pid, " (shutdown grace over)" if late else ""
                    )
                    worker.kill()
            self._gone(worker)

    def run(self) -> int:
        handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)  # SIGHUP: the terminal is gone
        previous = {sig: signal.signal(sig, self._on_signal) for sig in handled}
        try:
            code = 0
            try:
                for slot in range(len(self.sockets)):
                    self._start(slot)
                code = self._watch()
            finally:
                self._stop()
            return code
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def run_workers(settings: Settings, workers: int) -> int:
    """Serve with `workers` processes on the port until SIGTERM/SIGINT; return the exit code."""
    from responses_gateway.metrics import shared_metrics_dir

    host, port = settings.server.host, settings.server.port
    try:
        sockets = _listen_sockets(host, port, workers)
    except OSError as exc:
        logger.error("cannot listen on %s:%d: %s", host, port, exc.strerror or exc)
        return 1  # as uvicorn exits when it cannot bind
    try:
        with shared_metrics_dir() as metrics_dir:  # exported before any worker imports prometheus_client
            return _Supervisor(settings, sockets, metrics_dir).run()
    finally:
        for sock in set(sockets):
            sock.close()
