"""Gateway CPU per create: chained at depth 1, 10, 100, 1,000, and non-streaming fold vs direct.

Two measurements, one run:
- end to end: the echo backend and a gateway process (memory store); chains built turn by turn to
  depth 1,000, then N creates branching from the turn at each depth (so the depth stays put);
  gateway CPU per create from /proc, and the bytes of the `messages` sent upstream.
- in process: `ResponsesService` over the memory store with an in-memory backend (the chunks of a
  ten-word answer, decoded as the real client does), `time.process_time()` per create: the
  non-streaming reply built directly (`respond`, no events) vs folded from the event stream.

Run: .venv/bin/python benchmarks/depth_cpu.py [--n 300]
"""

from __future__ import annotations

import _common  # noqa: F401  first: puts the repo root on sys.path

# isort: split
import argparse
import asyncio
import tempfile
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import msgspec
import orjson

from _common import CpuMeter, md_table, post_json, services, session, start_echo, start_gateway
from responses_gateway.config import BackendSettings, settings_from_dict
from responses_gateway.protocol import parse_create
from responses_gateway.protocol.chat import ChatChunk, ChatRequest
from responses_gateway.protocol.events import TERMINAL
from responses_gateway.service import RequestContext, ResponsesService
from responses_gateway.stores.memory import MemoryStore

DEPTHS = (1, 10, 100, 1000)
WORDS = "the quick brown fox jumps over the lazy dog again".split()
_CHUNKS = [
    orjson.dumps(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"content": w + " "}}],
        }
    )
    for w in WORDS
] + [
    orjson.dumps({"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
    orjson.dumps(
        {"id": "c", "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 10, "total_tokens": 19}}
    ),
]
_decode_chunk = msgspec.json.Decoder(ChatChunk).decode
_encode = msgspec.json.Encoder().encode


class _Backend:
    """An in-memory Chat backend: encodes the body as the HTTP client does, answers ten words."""

    def __init__(self) -> None:
        self.backend = BackendSettings.model_validate({"name": "mem", "base_url": "http://127.0.0.1:1/v1"})
        self.sent = 0

    def backend_for(self, model: str) -> BackendSettings:
        return self.backend

    async def stream_chat(
        self, backend: BackendSettings, body: ChatRequest, *, authorization: str | None
    ) -> AsyncGenerator[ChatChunk, None]:
        self.sent = len(_encode(body))
        for raw in _CHUNKS:
            yield _decode_chunk(raw)


async def _in_process(n: int) -> list[list[Any]]:
    api = settings_from_dict({"backends": [], "response_api": {"store_backend": "memory"}}).response_api
    backend = _Backend()
    service = ResponsesService(MemoryStore(1_000_000, 86400), backend, api)
    ctx = RequestContext()

    async def create(prev: str | None, mode: str) -> str:
        body: dict[str, Any] = {"model": "m", "input": "hello benchmark", "store": True}
        if prev:
            body["previous_response_id"] = prev
        p = await service.prepare(parse_create(orjson.dumps(body)), ctx)
        if mode == "direct":
            await service.respond(p, ctx)
            return p.response_id
        last = None
        async for batch in service.stream(p, ctx):  # the old way: build every event, keep the last
            last = batch[-1]
        assert isinstance(last, TERMINAL)
        _encode(last.response)
        return p.response_id

    rows: list[list[Any]] = []
    tip: str | None = None
    built = 0
    for depth in DEPTHS:
        while built < depth:
            tip = await create(tip, "direct")
            built += 1
        row: list[Any] = [depth]
        best = {"direct": float("inf"), "fold": float("inf")}
        for _ in range(5):  # alternate the modes, keep the best of 5 rounds (a shared box is noisy)
            for mode in best:
                start = time.process_time()
                for _ in range(n // 5):
                    await create(tip, mode)
                best[mode] = min(best[mode], (time.process_time() - start) / (n // 5) * 1000)
        row += [f"{best['direct']:.3f}", f"{best['fold']:.3f}"]
        row.append(f"{backend.sent:,}")
        rows.append(row)
    return rows


async def _end_to_end(n: int, concurrency: int) -> list[list[Any]]:
    rows: list[list[Any]] = []
    with services() as reg, tempfile.TemporaryDirectory() as tmp:
        echo = start_echo(reg, Path(tmp))
        gw = start_gateway(
            reg, Path(tmp), echo.url, {"store_backend": "memory", "max_responses": 1_000_000}, "depth"
        )
        url = f"{gw.url}/v1/responses"
        async with session(concurrency) as http:
            tip: str | None = None
            built = 0
            for depth in DEPTHS:
                while built < depth:
                    body: dict[str, Any] = {"model": "echo", "input": f"turn {built}", "store": True}
                    if tip:
                        body["previous_response_id"] = tip
                    tip = (await post_json(http, url, body))["id"]
                    built += 1
                branch = {"model": "echo", "input": "hello benchmark", "previous_response_id": tip}
                meter = CpuMeter({"gateway": [gw.pid]})
                meter.start()
                for _ in range(n // concurrency):
                    await asyncio.gather(*(post_json(http, url, branch) for _ in range(concurrency)))
                used = meter.stop()
                done = n // concurrency * concurrency
                rows.append([depth, f"{used['gateway'] / done * 1000:.3f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    print("## in process (service + memory store, in-memory backend), ms of CPU per create\n")
    rows = asyncio.run(_in_process(args.n))
    print(md_table(["depth", "non-streaming direct", "non-streaming fold", "bytes sent upstream"], rows))
    print(f"\n## end to end (gateway process, echo backend, c={args.concurrency}), gateway CPU per create\n")
    e2e = asyncio.run(_end_to_end(args.n, args.concurrency))
    print(md_table(["depth", "gateway ms CPU / create"], e2e))


if __name__ == "__main__":
    main()
