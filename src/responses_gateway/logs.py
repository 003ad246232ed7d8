"""Logging set-up, shared by `serve` and its worker processes.

Every line written while a request runs carries its request id (`telemetry.CURRENT`): in text, as
`[req_…]` before the message; in JSON, as `request_id`. Lines outside a request (start-up, shutdown)
are exactly as before in text. `log_format: json` writes one JSON object per line.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Literal

import orjson

from responses_gateway.telemetry import CURRENT

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REQUEST_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: [%(request_id)s] %(message)s"
LogFormat = Literal["text", "json"]


class RequestIdFilter(logging.Filter):
    """Adds `request_id` (None outside a request) to every record the handler writes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            current = CURRENT.get()
            record.request_id = current.request_id if current is not None else None
        return True


class TextFormatter(logging.Formatter):
    """The plain format; a request's lines get its id after the logger's name."""

    def __init__(self) -> None:
        super().__init__(LOG_FORMAT)
        self._in_request = logging.Formatter(REQUEST_LOG_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "request_id", None) is not None:
            return self._in_request.format(record)
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, request_id, the
    fields of an access line (`extra={"access": {...}}`), and an exception's traceback as `exc_info`."""

    def format(self, record: logging.LogRecord) -> str:
        seconds = record.created
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        line: dict[str, Any] = {
            "time": f"{stamp}.{int(seconds % 1 * 1000):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            line["request_id"] = request_id
        access = getattr(record, "access", None)
        if isinstance(access, dict):
            line.update(access)
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure_logging(level: str, fmt: LogFormat = "text") -> None:
    """The root handler on stderr at `level` (uvicorn's loggers use it too: `log_config=None`)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    logging.basicConfig(handlers=[handler], level=level.upper(), force=True)
    # pypdf warns about each flaw of a PDF it reads: clients' files, one line each (input_file)
    logging.getLogger("pypdf").setLevel(logging.DEBUG if level.lower() == "debug" else logging.ERROR)
