"""SQLite store puts/s at concurrency 1 and 32 (synchronous=FULL, WAL): the group-commit benchmark.

.venv/bin/python benchmarks/sqlite_commit.py [--puts 8000] [--concurrency 1 32] [--dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from responses_gateway.config import SQLiteSettings
from responses_gateway.ids import INPUT_INDEX_BASE, item_id, new_response_id
from responses_gateway.stores.base import StoredResponse
from responses_gateway.stores.sqlite import SQLiteStore


def _record(parent_id: str | None, text: str) -> StoredResponse:
    """A realistic turn (about 1 kB); also builds the dict records of the stores before Core v2."""
    rid = new_response_id(parent_id)
    answer = f"echo: {text} " + "lorem ipsum " * 40
    input_items = [
        {
            "id": item_id("msg", rid, INPUT_INDEX_BASE),
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        }
    ]
    output = [
        {
            "id": item_id("msg", rid, 0),
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": answer, "annotations": []}],
        }
    ]
    response = {"id": rid, "object": "response", "status": "completed", "model": "m", "output": output}
    fields: dict[str, Any] = {"id": rid, "previous_response_id": parent_id, "created_at": 1}
    if "chat" in StoredResponse.__dataclass_fields__:
        chat = [{"role": "user", "content": text}, {"role": "assistant", "content": answer}]
        fields.update(
            response=orjson.dumps(response),
            input_items=orjson.dumps(input_items),
            chat=orjson.dumps(chat),
        )
    else:  # the dict records of the stores before Core v2
        fields.update(response=response, input_items=input_items)
    return StoredResponse(**fields)


async def _measure(directory: Path, puts: int, concurrency: int) -> float:
    path = Path(tempfile.mkdtemp(dir=directory)) / "responses.db"
    store = await SQLiteStore.open(SQLiteSettings(path=str(path)), ttl_seconds=3600)
    per_task = puts // concurrency

    async def conversation(i: int) -> None:
        parent: str | None = None
        for turn in range(per_task):
            if turn % 20 == 0:
                parent = None  # conversations of 20 turns
            record = _record(parent, f"{i}/{turn}")
            await store.put(record)
            parent = record.id

    await conversation(-1)  # warm-up, not timed: a short chain
    start = time.perf_counter()
    await asyncio.gather(*(conversation(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - start
    await store.aclose()
    return per_task * concurrency / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--puts", type=int, default=8000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--dir", default=None, help="where the database files go (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        for c in args.concurrency:
            puts = args.puts if c > 1 else min(args.puts, 2000)
            rate = await _measure(Path(directory), puts, c)
            print(f"c={c:<3} puts={puts:<6} {rate:8.0f} puts/s  (pid {os.getpid()})")


if __name__ == "__main__":
    asyncio.run(main())
