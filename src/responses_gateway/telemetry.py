"""What one HTTP request is known by, for its log lines, access line and trace: a `RequestRecord` in
a context variable, set by `api/access.py` for the request's duration (tasks the request starts see
it too). Request ids: accepted from `X-Request-Id` when safe, otherwise made here.

Imports nothing from the package, so the stores, the service and the upstream client can all fill in
what they know (`current()`), at the cost of one context-variable read.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
from contextvars import ContextVar

REQUEST_ID_HEADER = b"x-request-id"
MAX_REQUEST_ID = 128
# letters, digits and the punctuation of common id formats (uuids, W3C/AWS trace ids, base64):
# nothing that could split a log line or a header
_SAFE_ID = re.compile(r"[A-Za-z0-9._:=+/\-]{1,128}")


class RequestRecord:
    """One request's facts, filled in as they become known; read when its access line is written."""

    __slots__ = ("backend", "model", "request_id", "response_id", "store_round_trips")

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.response_id: str | None = None
        self.model: str | None = None
        self.backend: str | None = None
        self.store_round_trips = 0


CURRENT: ContextVar[RequestRecord | None] = ContextVar("responses_gateway_request", default=None)
current = CURRENT.get


def count_round_trips(n: int = 1) -> None:
    """Add `n` store round trips to the current request's count (no-op outside a request)."""
    record = CURRENT.get()
    if record is not None:
        record.store_round_trips += n


def note_create(response_id: str | None, model: str, backend: str) -> None:
    """The response id (None for a pass-through), model and backend of the current request."""
    record = CURRENT.get()
    if record is not None:
        record.response_id = response_id
        record.model = model
        record.backend = backend


class RequestIds:
    """Makes request ids: `req_` + 12 random hex digits drawn once per process (again in a forked
    child) + a counter: unique across processes and restarts with overwhelming odds, and cheap (no
    randomness per request)."""

    __slots__ = ("_counter",)
    _prefix = ""

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        if not RequestIds._prefix:
            RequestIds._reseed()

    @staticmethod
    def _reseed() -> None:
        RequestIds._prefix = "req_" + secrets.token_hex(6)

    def make(self) -> str:
        return f"{RequestIds._prefix}{next(self._counter):08x}"

    def accept(self, given: bytes | None) -> str:
        """The client's `X-Request-Id` when it is 1-128 safe characters, else a new id."""
        if given is not None and len(given) <= MAX_REQUEST_ID:
            value = given.decode("latin-1")
            if _SAFE_ID.fullmatch(value):
                return value
        return self.make()


os.register_at_fork(after_in_child=RequestIds._reseed)
