"""Logging set-up, shared by `serve` and its worker processes."""

from __future__ import annotations

import logging
import sys

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str) -> None:
    """The root handler on stderr at `level` (uvicorn's loggers use it too: `log_config=None`)."""
    logging.basicConfig(stream=sys.stderr, format=LOG_FORMAT, level=level.upper(), force=True)
    # pypdf warns about each flaw of a PDF it reads: clients' files, one line each (input_file)
    logging.getLogger("pypdf").setLevel(logging.DEBUG if level.lower() == "debug" else logging.ERROR)
