"""Run every benchmark in one go and print Markdown tables: `make bench`, or
`.venv/bin/python benchmarks/run_all.py [--quick] [--out FILE] [--no-profile]`.

1. load.py: the echo backend directly (baseline) and through the gateway (memory store).
2. stores.py: round trips per operation, chain rebuild by depth vs one GET per hop, and creates
   through the gateway on memory, sqlite, redis and redis cluster.
3. profile_gateway.py: where the gateway's CPU goes under load (needs py-spy on PATH or $PY_SPY; skipped
   otherwise).
Then plots.py draws the figures of step 2 as PNGs into docs/img (`--plots DIR` elsewhere, `--no-plots`
none): history read by chain depth next to one GET per hop, creates per store as a share of direct.
One echo backend serves the whole run; every server binds 127.0.0.1 and is stopped by its PID at
the end, also on Ctrl-C or an error. See docs/BENCHMARKS.md.
"""

from __future__ import annotations

import _common  # noqa: F401  first: puts the repo root on sys.path

# isort: split
import argparse
import sys
import tempfile
import time
from pathlib import Path

from _common import FULL, QUICK, machine, run, services, start_echo
from load import render as render_load
from load import run_load
from plots import OUT as PLOTS_OUT
from plots import save as save_plots
from profile_gateway import profile, py_spy
from stores import render as render_stores
from stores import run_stores


async def _main(args: argparse.Namespace) -> str:
    budget = QUICK if args.quick else FULL
    info = machine()
    started = time.monotonic()
    parts = [
        "### Benchmark run",
        "",
        "`.venv/bin/python benchmarks/run_all.py" + (" --quick" if args.quick else "") + "`  ",
        f"{info['date']}; {info['nproc']} CPUs ({info['cpu']}); Python {info['python']}, "
        f"aiohttp {info['aiohttp']} load generator on uvloop; loopback only.",
        "",
    ]
    with services() as reg, tempfile.TemporaryDirectory(prefix="rg-bench-") as tmp:
        workdir = Path(tmp)
        echo = start_echo(reg, workdir)
        print("load benchmark ...", file=sys.stderr)
        parts += [
            "### 1. Load: direct vs through the gateway",
            "",
            render_load(await run_load(reg, workdir, budget, echo)),
        ]
        print("store benchmark ...", file=sys.stderr)
        stores = await run_stores(reg, workdir, budget, echo)
        parts += ["", "### 2. Stores", "", render_stores(stores)]
        if args.plots is not None:
            pngs = save_plots(stores, args.plots)
            parts += ["", "Figures: " + ", ".join(f"`{p}`" for p in pngs)]
        if args.profile and py_spy():
            print("profile ...", file=sys.stderr)
            seconds = 5.0 if args.quick else 10.0
            parts += ["", "### 3. Where the gateway's CPU goes (py-spy)", ""]
            parts += [await profile(reg, workdir, echo, seconds, 0), ""]
            parts += [await profile(reg, workdir, echo, seconds, 100)]
        elif args.profile:
            parts += ["", "(py-spy not found: set PY_SPY or put it on PATH for the profile section)"]
    parts += ["", f"Total time: {time.monotonic() - started:.0f} s."]
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a short run (about a minute)")
    parser.add_argument("--out", type=Path, help="also write the Markdown report to this file")
    parser.add_argument("--no-profile", dest="profile", action="store_false", help="skip the py-spy profile")
    parser.add_argument(
        "--plots", type=Path, default=PLOTS_OUT, help="where the PNG figures go (default: docs/img)"
    )
    parser.add_argument("--no-plots", dest="plots", action="store_const", const=None, help="draw no figures")
    args = parser.parse_args()
    report = run(_main(args))
    print(report)
    if args.out:
        args.out.write_text(report + "\n")


if __name__ == "__main__":
    main()
