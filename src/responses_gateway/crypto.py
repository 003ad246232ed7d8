"""Sealing reasoning for stateless clients: `include: ["reasoning.encrypted_content"]`.

AES-256-GCM (authenticated) with a key derived by HKDF-SHA256 from `response_api.encryption_key`,
so every replica configured with the same secret opens what any other sealed. Without a configured
key nothing is sealed: `include` is then accepted as a best-effort hint and reasoning items carry
`encrypted_content: null` (a per-process random key would break on the next replica or restart).
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["ReasoningCipher"]

_PREFIX = "rgw1:"
_INFO = b"responses-gateway reasoning.encrypted_content v1"
_AAD = b"reasoning"
_NONCE = 12


class ReasoningCipher:
    """Seals a reasoning item's text into an opaque token and opens tokens it (or a peer) made."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("an encryption key must not be empty")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret.encode())
        self._aead = AESGCM(key)

    def seal(self, item: dict[str, Any]) -> str:
        """The `encrypted_content` of a reasoning item: its content and summary, sealed."""
        payload = orjson.dumps({"content": item.get("content") or [], "summary": item.get("summary") or []})
        nonce = os.urandom(_NONCE)
        sealed = nonce + self._aead.encrypt(nonce, payload, _AAD)
        return _PREFIX + base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    def open(self, token: str) -> dict[str, Any] | None:
        """The sealed `{"content", "summary"}`, or None for a token we did not make or that was altered."""
        if not isinstance(token, str) or not token.startswith(_PREFIX):
            return None
        raw = token[len(_PREFIX) :]
        try:
            sealed = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
            if len(sealed) <= _NONCE:
                return None
            payload = self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], _AAD)
            value = orjson.loads(payload)
        except (InvalidTag, binascii.Error, ValueError):
            return None
        return value if isinstance(value, dict) else None
