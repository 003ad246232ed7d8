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

    def seal(self, payload: bytes) -> str:
        """The `encrypted_content` of a reasoning item: its content and summary (as JSON), sealed."""
        nonce = os.urandom(_NONCE)
        sealed = nonce + self._aead.encrypt(nonce, payload, _AAD)
        return _PREFIX + base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    def open(self, token: str) -> bytes | None:
        """The sealed payload, or None for a token we did not make or that was altered."""
        if not isinstance(token, str) or not token.startswith(_PREFIX):
            return None
        raw = token[len(_PREFIX) :]
        try:
            sealed = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
            if len(sealed) <= _NONCE:
                return None
            return self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], _AAD)
        except (InvalidTag, binascii.Error, ValueError):
            return None
