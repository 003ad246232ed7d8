"""A bounded load of creates against a gateway, recording what it acknowledged.

Each worker keeps its own conversation: it chains every create off its last acknowledged response
(starting a new one now and then), so both root and chained writes are exercised.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx


@dataclass
class LoadResult:
    acked: list[str] = field(default_factory=list)  # ids the gateway answered 200 for
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0
    missing_retry_after: int = 0  # 503s without a Retry-After header


async def run_load(
    base_url: str, *, seconds: float, concurrency: int = 8, chain_every: int = 5
) -> LoadResult:
    """Send creates for `seconds` from `concurrency` workers; never more than 20,000 in all."""
    result = LoadResult()
    deadline = time.monotonic() + seconds
    budget = [20_000]

    async def worker(n: int, client: httpx.AsyncClient) -> None:
        last: str | None = None
        i = 0
        while time.monotonic() < deadline and budget[0] > 0:
            budget[0] -= 1
            i += 1
            body: dict[str, object] = {"model": "qwen3", "input": f"worker {n} turn {i}"}
            if last is not None and i % chain_every:
                body["previous_response_id"] = last
            try:
                resp = await client.post(f"{base_url}/responses", json=body)
            except httpx.HTTPError:
                result.transport_errors += 1
                await asyncio.sleep(0.05)
                continue
            result.statuses[resp.status_code] += 1
            if resp.status_code == 200:
                last = resp.json()["id"]
                result.acked.append(last)
            elif resp.status_code == 503:
                if "retry-after" not in resp.headers:
                    result.missing_retry_after += 1
                await asyncio.sleep(0.05)
            else:
                await asyncio.sleep(0.05)

    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(worker(n, client) for n in range(concurrency)))
    return result


async def lost(base_url: str, ids: list[str], *, settle_seconds: float = 20.0) -> list[str]:
    """The acknowledged ids that cannot be retrieved (503s are retried until `settle_seconds`)."""
    deadline = time.monotonic() + settle_seconds
    missing: list[str] = []
    async with httpx.AsyncClient(timeout=10) as client:
        sem = asyncio.Semaphore(16)

        async def check(rid: str) -> None:
            async with sem:
                while True:
                    try:
                        resp = await client.get(f"{base_url}/responses/{rid}")
                    except httpx.HTTPError:
                        resp = None
                    if resp is not None and resp.status_code in (200, 404):
                        if resp.status_code == 404:
                            missing.append(rid)
                        return
                    if time.monotonic() > deadline:
                        missing.append(rid)
                        return
                    await asyncio.sleep(0.2)

        await asyncio.gather(*(check(r) for r in ids))
    return missing
