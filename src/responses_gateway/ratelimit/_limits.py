"""What both limiters share: a tenant's limits, the 429 errors, the stream slot."""

from __future__ import annotations

import math
import re
from typing import Protocol

from responses_gateway.config import LimitSettings
from responses_gateway.errors import TenantRateLimited

MINUTE_MS = 60_000
_TENANT = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,63})?$")  # config's rule, and "" (no auth)


class Slot(Protocol):
    """One concurrent-stream slot of a tenant."""

    def release(self) -> None:
        """Give the slot back; idempotent, never awaits (it runs in `finally` of cancelled tasks)."""


class TenantLimit:
    """A tenant's limits and the names of the settings they come from (for error messages)."""

    __slots__ = ("rpm", "rpm_setting", "streams", "streams_setting", "tenant")

    def __init__(self, limits: LimitSettings, tenant: str) -> None:
        if not _TENANT.match(tenant):
            raise ValueError(f"invalid tenant name {tenant!r}")  # tenants come from the config
        self.tenant = tenant
        self.rpm, self.streams = limits.for_tenant(tenant)
        own = limits.tenants.get(tenant)
        own_rpm = own is not None and own.requests_per_minute is not None
        own_streams = own is not None and own.concurrent_streams is not None
        self.rpm_setting = f"limits.tenants.{tenant}." if own_rpm else "limits."
        self.rpm_setting += "requests_per_minute"
        self.streams_setting = f"limits.tenants.{tenant}." if own_streams else "limits."
        self.streams_setting += "concurrent_streams"


def _who(tenant: str) -> str:
    return f" of tenant '{tenant}'" if tenant else ""


def _wait(ms: int) -> str:
    return f"{ms / 1000:.3f}".rstrip("0").rstrip(".") + "s"


def rpm_exceeded(limit: TenantLimit, used: int, retry_ms: int) -> TenantRateLimited:
    return TenantRateLimited(
        f"Rate limit reached for requests per min (RPM){_who(limit.tenant)}: Limit {limit.rpm}, "
        f"Used {used}, Requested 1. Please try again in {_wait(retry_ms)}. ({limit.rpm_setting})",
        retry_after_ms=retry_ms,
    )


def streams_exceeded(limit: TenantLimit, used: int, retry_ms: int) -> TenantRateLimited:
    return TenantRateLimited(
        f"Rate limit reached for concurrent streams{_who(limit.tenant)}: Limit {limit.streams}, "
        f"Used {used}, Requested 1. Please try again in {_wait(retry_ms)}. ({limit.streams_setting})",
        retry_after_ms=retry_ms,
    )


def gcra(tat: float, now: float, rpm: int) -> tuple[float, int, float]:
    """One request against a GCRA of `rpm` requests per minute (times in seconds).

    `tat` is the theoretical arrival time so far (0 for a new tenant). Returns (the new TAT, the
    requests counted in the window before this one, seconds to wait): a wait above 0 means denied
    (the TAT is then unchanged)."""
    interval = 60.0 / rpm
    tat = max(tat, now)
    used = math.ceil(round((tat - now) / interval, 9))
    allowed_at = tat + interval - 60.0
    if allowed_at > now:
        return tat, used, allowed_at - now
    return tat + interval, used, 0.0
