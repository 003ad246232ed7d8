"""`file_url`: fetched over http(s), bounded in size and time, and only from public addresses unless
configured (`files.fetch_allowed_networks`): the SSRF guard (docs/API.md "File inputs").

The guard sits in the resolver: aiohttp connects only to the addresses it returns, so a name that
resolves to a private address (or re-resolves to one: DNS rebinding) is never connected to. Literal
addresses skip resolvers, so they are checked before each request; redirects are followed by hand
(each hop checked again), at most `_MAX_REDIRECTS`. No proxy from the environment is used.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from responses_gateway.files._source import FileProblem, Source, media_type, too_big

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_MAX_REDIRECTS = 3
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    seconds: float
    max_bytes: int
    networks: Sequence[Network] = ()

    def allows(self, host: str) -> bool:
        """Whether an address may be connected to: a public one, or one in the allowed networks."""
        ip = ipaddress.ip_address(host.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in net for net in self.networks):
            return True
        return ip.is_global and not ip.is_multicast


class _Refused(OSError):
    pass


class _GuardedResolver(AbstractResolver):
    """The default resolver, keeping only the addresses the policy allows."""

    def __init__(self, policy: FetchPolicy) -> None:
        self._inner = DefaultResolver()
        self._policy = policy
        self.refused: str | None = None

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        allowed = [r for r in found if self._policy.allows(r["host"])]
        if not allowed:
            self.refused = host
            raise _Refused(f"{host} has no address this gateway may fetch from")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


async def fetch(url: str, policy: FetchPolicy) -> Source:
    """The body of `url` (an http or https URL), at most `policy.max_bytes`; a FileProblem otherwise."""
    resolver = _GuardedResolver(policy)
    connector = aiohttp.TCPConnector(resolver=resolver, use_dns_cache=False, limit=1)
    try:
        async with (
            asyncio.timeout(policy.seconds),
            aiohttp.ClientSession(connector=connector, trust_env=False) as session,
        ):
            target = URL(url)
            for _ in range(_MAX_REDIRECTS + 1):
                _check_target(target, policy)
                async with session.get(target, allow_redirects=False) as resp:
                    if resp.status in _REDIRECTS and "Location" in resp.headers:
                        target = resp.url.join(URL(resp.headers["Location"]))
                        continue
                    return await _body(resp, policy.max_bytes)
            raise FileProblem(f"has a file_url that redirects more than {_MAX_REDIRECTS} times")
    except TimeoutError:
        raise FileProblem(
            f"has a file_url that did not answer within files.fetch_timeout_seconds ({policy.seconds:g} s)"
        ) from None
    except aiohttp.ClientError as exc:
        if resolver.refused is not None:
            raise _not_public(resolver.refused) from None
        raise FileProblem(f"has a file_url that could not be fetched ({type(exc).__name__})") from None
    except ValueError:  # yarl: not a URL
        raise FileProblem("has a file_url that is not a valid http(s) URL") from None


def _check_target(target: URL, policy: FetchPolicy) -> None:
    if target.scheme not in ("http", "https") or not target.host:
        raise FileProblem("has a file_url that is not an http(s) URL")
    try:
        ipaddress.ip_address(target.host.split("%", 1)[0])
    except ValueError:
        return  # a name: the resolver checks its addresses
    if not policy.allows(target.host):
        raise _not_public(target.host)


def _not_public(host: str) -> FileProblem:
    return FileProblem(
        f"has a file_url whose host ({host[:100]}) is not a public address; it is refused unless "
        "files.fetch_allowed_networks allows it",
        code="file_url_refused",
    )


async def _body(resp: aiohttp.ClientResponse, max_bytes: int) -> Source:
    if resp.status != 200:
        raise FileProblem(f"has a file_url that answered HTTP {resp.status}")
    if (resp.content_length or 0) > max_bytes:
        raise FileProblem(too_big(max_bytes), code="file_too_large")
    data = bytearray()
    async for chunk in resp.content.iter_chunked(_CHUNK):
        data += chunk
        if len(data) > max_bytes:
            raise FileProblem(too_big(max_bytes), code="file_too_large")
    return Source(bytes(data), media_type(resp.headers.get("Content-Type", "")))
