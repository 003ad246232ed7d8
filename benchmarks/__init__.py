"""Benchmarks of responses-gateway: `python benchmarks/run_all.py [--quick]` (see docs/BENCHMARKS.md)."""

from __future__ import annotations
