"""Sealing for stateless clients: reasoning (`include: ["reasoning.encrypted_content"]`) and
compaction summaries (`POST /v1/responses/compact`).

AES-256-GCM (authenticated) with a key derived by HKDF-SHA256 from `response_api.encryption_key`,
so every replica configured with the same secret opens what any other sealed. Each kind of token
has its own HKDF info (so its own key), associated data and prefix: a reasoning token cannot be
opened as a compaction and vice versa. A compaction token is also bound to its tenant (the owner
is part of the associated data). Without a configured key nothing is sealed: `include` is then
accepted as a best-effort hint and reasoning items carry `encrypted_content: null` (a per-process
random key would break on the next replica or restart); compaction is refused (`compaction.py`).
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["CompactionCipher", "ReasoningCipher"]

_NONCE = 12


class _TokenCipher:
    """Seals bytes into an opaque `<prefix><base64url>` token; opens tokens it (or a peer) made."""

    PREFIX: str
    INFO: bytes
    AAD: bytes

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("an encryption key must not be empty")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=self.INFO).derive(secret.encode())
        self._aead = AESGCM(key)

    def _seal(self, payload: bytes, aad: bytes) -> str:
        nonce = os.urandom(_NONCE)
        sealed = nonce + self._aead.encrypt(nonce, payload, aad)
        return self.PREFIX + base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    def _open(self, token: str, aad: bytes) -> bytes | None:
        if not isinstance(token, str) or not token.startswith(self.PREFIX):
            return None
        raw = token[len(self.PREFIX) :]
        try:
            sealed = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
            if len(sealed) <= _NONCE:
                return None
            return self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], aad)
        except (InvalidTag, binascii.Error, ValueError):
            return None


class ReasoningCipher(_TokenCipher):
    """Seals a reasoning item's text into an opaque token and opens tokens it (or a peer) made."""

    PREFIX = "rgw1:"
    INFO = b"responses-gateway reasoning.encrypted_content v1"
    AAD = b"reasoning"

    def seal(self, payload: bytes) -> str:
        """The `encrypted_content` of a reasoning item: its content and summary (as JSON), sealed."""
        return self._seal(payload, self.AAD)

    def open(self, token: str) -> bytes | None:
        """The sealed payload, or None for a token we did not make or that was altered."""
        return self._open(token, self.AAD)


class CompactionCipher(_TokenCipher):
    """Seals a compaction summary for one tenant; only that tenant's requests can open it."""

    PREFIX = "rgwc1:"
    INFO = b"responses-gateway compaction.encrypted_content v1"
    AAD = b"compaction\x00"

    def seal(self, payload: bytes, owner: str) -> str:
        """The `encrypted_content` of a compaction item, bound to `owner` (the tenant)."""
        return self._seal(payload, self.AAD + owner.encode())

    def open(self, token: str, owner: str) -> bytes | None:
        """The sealed payload, or None for a token not ours, altered, or sealed for another tenant."""
        return self._open(token, self.AAD + owner.encode())
