"""The per-socket cache of `store: false` responses (`api/socket_cache.py`): chains, bounds, eviction."""

from __future__ import annotations

import pytest

from responses_gateway.api.socket_cache import ENTRY_OVERHEAD, SocketCache
from responses_gateway.stores.base import ChainIncomplete


def test_a_chain_is_its_increments_oldest_first_from_its_stored_root() -> None:
    cache = SocketCache(10, 1 << 20)
    cache.put("r1", "stored", b"[1]")  # continues a stored response
    cache.put("r2", "r1", b"[2]")
    cache.put("r3", "r2", b"[3]")
    cache.put("b2", "r1", b"[b]")  # a branch
    assert cache.chain("r3") == ("stored", [b"[1]", b"[2]", b"[3]"])
    assert cache.chain("b2") == ("stored", [b"[1]", b"[b]"])
    assert cache.chain("unknown") is None
    cache.put("alone", None, b"[a]")
    assert cache.chain("alone") == (None, [b"[a]"])


def test_bounded_by_count_and_bytes_least_recently_used_first() -> None:
    cache = SocketCache(3, 1 << 20)
    for i in range(3):
        cache.put(f"r{i}", None, b"x")
    cache.chain("r0")  # used: now the most recent
    cache.put("r3", None, b"x")
    assert "r1" not in cache and all(i in cache for i in ("r0", "r2", "r3"))

    size = 100 + ENTRY_OVERHEAD
    cache = SocketCache(100, 2 * size)
    cache.put("a", None, b"x" * 100)
    cache.put("b", None, b"x" * 100)
    assert cache.bytes == 2 * size
    cache.put("c", None, b"x" * 100)
    assert "a" not in cache and cache.bytes == 2 * size
    cache.put("huge", None, b"x" * (2 * size))  # larger than the whole budget: not kept, nothing evicted
    assert "huge" not in cache and len(cache) == 2
    off = SocketCache(0, 1 << 20)
    off.put("r", None, b"x")
    assert "r" not in off


def test_a_gone_ancestor_is_an_incomplete_chain_never_a_shorter_history() -> None:
    cache = SocketCache(10, 1 << 20)
    cache.put("r1", None, b"[1]")
    cache.put("r2", "r1", b"[2]")
    cache.put("r3", "r2", b"[3]")
    cache.evict("r2")
    with pytest.raises(ChainIncomplete) as gone:
        cache.chain("r3")
    assert gone.value.missing_id == "r2"
    cache.evict("r3")
    cache.evict("r3")  # evicting twice is harmless
    assert cache.bytes == len(b"[1]") + ENTRY_OVERHEAD
