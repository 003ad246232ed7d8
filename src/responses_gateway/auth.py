"""Client keys -> tenants (`KeyTable`), and the `/metrics` key. Pure logic: no HTTP here.

Only SHA-256 digests are kept: `auth.api_keys[].key` is hashed when the table is built, and
`key_sha256` is taken as given. A presented key is hashed once and compared with every configured
digest by `hmac.compare_digest`, with no early exit, so the time taken does not depend on which key
(if any) matched. Nothing here ever puts a key in a message: only its `fingerprint` (the first 8 hex
digits of its SHA-256) and the tenant name may appear in errors and logs.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from responses_gateway.config import AuthSettings
from responses_gateway.errors import AuthenticationFailed, ConfigError, GatewayError

log = logging.getLogger("responses_gateway.auth")

_BEARER = "bearer "
NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)

NO_METRICS_KEY = (
    "You didn't provide the metrics key: /metrics needs an Authorization header using Bearer auth "
    "(i.e. Authorization: Bearer METRICS_KEY; auth.metrics_key is set)."
)


class MissingKey(GatewayError):
    """No `Authorization: Bearer <key>` at all: 401 with code null, as OpenAI answers."""

    status_code = 401
    error_type = "invalid_request_error"


def digest(key: str) -> bytes:
    """The SHA-256 of a key (UTF-8)."""
    return hashlib.sha256(key.encode()).digest()


def fingerprint(key: str) -> str:
    """A short, safe name for a key in messages and logs: the first 8 hex digits of its SHA-256."""
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def bearer(header: str | None) -> str | None:
    """The key in `Bearer <key>` (scheme case-insensitive), else None."""
    if header is None or header[:7].lower() != _BEARER:
        return None
    key = header[7:].strip()
    return key or None


def _incorrect(key: str) -> AuthenticationFailed:
    return AuthenticationFailed(
        f"Incorrect API key provided (fingerprint {fingerprint(key)}: the first 8 hex digits of its "
        "SHA-256). Ask the gateway's operator for a key (`responses-gateway keys new`)."
    )


def _match(table: tuple[tuple[bytes, str], ...], presented: bytes) -> str | None:
    """The tenant of the digest equal to `presented`; every digest is compared (no early exit)."""
    found: str | None = None
    for known, tenant in table:
        if hmac.compare_digest(known, presented):
            found = tenant
    return found


class KeyTable:
    """The configured client keys as (SHA-256 digest, tenant) pairs, and the `/metrics` key's digest."""

    __slots__ = ("_keys", "_metrics")

    def __init__(self, settings: AuthSettings) -> None:
        keys: list[tuple[bytes, str]] = []
        seen: dict[bytes, int] = {}
        for i, entry in enumerate(settings.api_keys):
            d = digest(entry.key) if entry.key is not None else bytes.fromhex(entry.key_sha256 or "")
            if d in seen:
                raise ConfigError(
                    f"auth.api_keys[{i}]: the same key as auth.api_keys[{seen[d]}] "
                    "(each key must belong to one tenant)"
                )
            seen[d] = i
            keys.append((d, entry.tenant))
        self._keys = tuple(keys)
        metrics: bytes | None = None
        if settings.metrics_key is not None:
            metrics = digest(settings.metrics_key)
        elif settings.metrics_key_sha256 is not None:
            metrics = bytes.fromhex(settings.metrics_key_sha256)
        self._metrics = metrics

    @property
    def enabled(self) -> bool:
        """True when `/v1/...` needs a key (`auth.api_keys` is not empty)."""
        return bool(self._keys)

    @property
    def metrics_protected(self) -> bool:
        return self._metrics is not None

    def authenticate(self, authorization: str | None) -> str:
        """The tenant of the key in an `Authorization` header; `MissingKey` or `AuthenticationFailed`
        (401, `invalid_api_key`) otherwise."""
        key = bearer(authorization)
        if key is None:
            raise MissingKey(NO_KEY)
        tenant = _match(self._keys, digest(key))
        if tenant is None:
            log.info("rejected an API key (fingerprint %s)", fingerprint(key))
            raise _incorrect(key)
        return tenant

    def authenticate_metrics(self, authorization: str | None) -> None:
        """Pass when `/metrics` is open or the header carries the metrics key; raise a 401 otherwise."""
        if self._metrics is None:
            return
        key = bearer(authorization)
        if key is None:
            raise MissingKey(NO_METRICS_KEY)
        if not hmac.compare_digest(self._metrics, digest(key)):
            log.info("rejected a metrics key (fingerprint %s)", fingerprint(key))
            raise _incorrect(key)
