"""Masking secrets in text that leaves the process (logs, `check-config`): one set of patterns.

Imports nothing from the package, so the config and the upstream client can both use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"
_MIN_SECRET = 4  # shorter configured values would mask ordinary words
_BEARER = re.compile(r"(?i)\b(bearer|basic)(\s+)[^\s\"',;]+")
_TOKEN = re.compile(r"\b(?:sk|rk|pk)-[A-Za-z0-9_\-]{8,}")
# scheme://user:password@ or scheme://token@  (the user info of a URL)
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^\s/@?#]+@")


def mask_url(text: str) -> str:
    """`https://user:pw@host/…` -> `https://***@host/…`, wherever a URL occurs in `text`."""
    return _USERINFO.sub(rf"\1{MASK}@", text)


def mask_secrets(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with the given secrets, `Bearer …` tokens, `sk-…`-like keys and URL user info masked."""
    for secret in secrets:
        if secret and len(secret) >= _MIN_SECRET:
            text = text.replace(secret, MASK)
    text = _BEARER.sub(rf"\1\2{MASK}", text)
    text = _TOKEN.sub(MASK, text)
    return mask_url(text)
