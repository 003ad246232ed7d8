"""benchmarks/plots.py: the figures `make bench` draws are real PNGs, drawn from the JSON kept beside
them (so `--replot` works), with a store that has no GET-per-hop baseline (null) left out of it."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def plots(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the benchmarks import each other by module name
    return importlib.import_module("plots")


def _data() -> dict[str, object]:
    return {
        "machine": {"date": "2026-11-30 00:00:00 UTC", "nproc": "2"},
        "history": {
            "memory": {"depth": [1, 10], "ours_ms": [0.002, 0.002], "get_per_hop_ms": [None, None]},
            "redis": {"depth": [1, 10], "ours_ms": [0.6, 0.5], "get_per_hop_ms": [0.3, 12.0]},
        },
        "creates_share": {"memory": {"c=1": 0.3, "c=32": 0.3}, "redis": {"c=1": 0.2, "c=32": 0.2}},
        "direct_rps": {"c=1": 236.0, "c=32": 544.0},
    }


def test_draw_writes_two_pngs(plots: ModuleType, tmp_path: Path) -> None:
    paths = plots.draw(_data(), tmp_path / "img")
    assert [p.name for p in paths] == ["history-by-depth.png", "creates-vs-direct.png"]
    for p in paths:
        assert p.read_bytes()[:8] == PNG and p.stat().st_size > 10_000


def test_the_kept_data_replots(plots: ModuleType, tmp_path: Path) -> None:
    kept = BENCHMARKS.parent / "docs" / "img" / plots.DATA
    data = json.loads(kept.read_text(), parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    assert {"history", "creates_share", "direct_rps", "machine"} <= set(data)
    assert len(plots.draw(data, tmp_path)) == 2
    assert "matplotlib" in sys.modules
