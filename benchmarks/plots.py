"""The benchmark figures as PNGs (matplotlib), from the store benchmark (benchmarks/stores.py):

- docs/img/history-by-depth.png: the history read each chained turn does (`get_history`, p50 ms) by
  chain depth on every store, next to one GET per hop (the Semantic Router's Redis walk) on Redis;
- docs/img/creates-vs-direct.png: creates/s through the gateway per store (c=1 and c=32), as a share
  of calling the backend directly in the same run.

`make bench` (benchmarks/run_all.py) draws them after its store benchmark. Alone:
.venv/bin/python benchmarks/plots.py [--quick] [--out DIR]   runs the store benchmark, then draws;
.venv/bin/python benchmarks/plots.py --replot [--out DIR]    draws again from DIR/bench-data.json.
"""

from __future__ import annotations

import _common  # noqa: F401  first: puts the repo root on sys.path

# isort: split
import argparse
import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

from _common import FULL, QUICK, machine, run, services, start_echo
from stores import StoresReport, run_stores

OUT = Path(__file__).resolve().parent.parent / "docs" / "img"
DATA = "bench-data.json"


def data_of(rep: StoresReport) -> dict[str, Any]:
    """What the figures need, as plain JSON: history p50 by store and depth, and creates ÷ direct."""
    history: dict[str, dict[str, list[float | None]]] = {}
    for name, depth, ours, _p99, ref, _ref_p99, _x in rep.chains:
        h = history.setdefault(name, {"depth": [], "ours_ms": [], "get_per_hop_ms": []})
        h["depth"].append(depth)
        h["ours_ms"].append(ours)
        h["get_per_hop_ms"].append(None if math.isnan(ref) else ref)  # null in JSON: not measured
    creates: dict[str, dict[str, float]] = {}
    for g in rep.gateway:
        for (key, c), r in g.results.items():
            if key == "create":
                creates.setdefault(g.backend, {})[f"c={c}"] = r.rps / rep.direct[c].rps
    direct = {f"c={c}": r.rps for c, r in rep.direct.items()}
    return {"machine": machine(), "history": history, "creates_share": creates, "direct_rps": direct}


def draw(data: dict[str, Any], out: Path) -> list[Path]:
    """Write the two PNGs into `out`; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    when = f"{data['machine']['date']}, {data['machine']['nproc']} shared CPUs"
    paths = [out / "history-by-depth.png", out / "creates-vs-direct.png"]

    fig, ax = plt.subplots(figsize=(8, 5))
    for name, h in data["history"].items():
        ax.plot(h["depth"], h["ours_ms"], marker="o", label=f"{name}: get_history")
        ref = [(d, v) for d, v in zip(h["depth"], h["get_per_hop_ms"], strict=True) if v is not None]
        if ref:
            ax.plot(*zip(*ref, strict=True), marker="x", linestyle="--", label=f"{name}: one GET per hop")
    ax.set(xscale="log", yscale="log", xlabel="chain depth (turns)", ylabel="p50 ms per read")
    ax.set_title(f"History read per chained turn, by depth\n({when})", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(paths[0], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4.5))
    names = list(data["creates_share"])
    levels = sorted({c for v in data["creates_share"].values() for c in v})
    width = 0.8 / max(1, len(levels))
    for i, level in enumerate(levels):
        shares = [100 * data["creates_share"][n].get(level, float("nan")) for n in names]
        xs = [j + (i - (len(levels) - 1) / 2) * width for j in range(len(names))]
        bars = ax.bar(xs, shares, width, label=f"{level} (direct: {data['direct_rps'][level]:,.0f}/s)")
        ax.bar_label(bars, fmt="%.0f%%", fontsize=8)
    ax.set_xticks(range(len(names)), names, fontsize=8)
    ax.set(ylabel="creates/s as % of the backend called directly")
    ax.set_title(f"Creates (store on) through the gateway, per store\n({when})", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(paths[1], dpi=100)
    plt.close(fig)
    return paths


def save(rep: StoresReport, out: Path) -> list[Path]:
    """Keep the figures' data next to them (for --replot) and draw."""
    data = data_of(rep)
    out.mkdir(parents=True, exist_ok=True)
    (out / DATA).write_text(json.dumps(data, indent=1) + "\n")
    return draw(data, out)


async def _main(args: argparse.Namespace) -> None:
    out = Path(args.out)
    if args.replot:
        paths = draw(json.loads((out / DATA).read_text()), out)
    else:
        with services() as reg, tempfile.TemporaryDirectory(prefix="rg-bench-plots-") as tmp:
            workdir = Path(tmp)
            echo = start_echo(reg, workdir)
            rep = await run_stores(reg, workdir, QUICK if args.quick else FULL, echo)
        paths = save(rep, out)
    print("\n".join(str(p) for p in paths), file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a short run (fewer requests)")
    parser.add_argument("--replot", action="store_true", help=f"draw from OUT/{DATA} without measuring")
    parser.add_argument("--out", default=str(OUT), help="where the PNGs go (default: docs/img)")
    run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
