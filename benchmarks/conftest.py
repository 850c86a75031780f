"""Collects benchmark minima and prints the ratios measured in this one run.

Sizes: ``INFERCAST_BENCH_SIZES`` (comma-separated, e.g. ``1e6,1e7``); the
default is a small size so the normal test command smoke-runs every benchmark
with timing disabled (``--benchmark-disable`` in pyproject).
"""
from __future__ import annotations

import os

import pytest

RESULTS: dict = {}
#: (case, n) -> (min time, median per-round stream/case ratio, rounds); see
#: ``bench_roofline.test_interleaved_ratios``
INTERLEAVED: dict = {}


def bench_sizes() -> list[int]:
    raw = os.environ.get("INFERCAST_BENCH_SIZES", "2e4")
    return [int(float(x)) for x in raw.split(",") if x.strip()]


def bench_threads() -> int:
    return int(os.environ.get("INFERCAST_BENCH_THREADS", "2"))


def record(benchmark, name: str, n: int):
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        RESULTS[(name, n)] = stats.stats.min


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter):
    if not RESULTS and not INTERLEAVED:
        return
    tr = terminalreporter
    if RESULTS:
        tr.section("infercast throughput (points/s, min time) and ratios")
    for n in sorted({n for _, n in RESULTS}):
        row = {name: t for (name, m), t in RESULTS.items() if m == n}
        limit = row.get("stream")
        ref = row.get("numpy")
        tr.write_line(f"N = {n:.0e}")
        for name, t in sorted(row.items(), key=lambda kv: kv[1]):
            line = f"  {name:14s} {n / t:14.4g} pts/s"
            if limit:
                line += f"   {limit / t:6.3f} of streaming limit"
            if ref and name != "numpy":
                line += f"   {ref / t:8.1f}x NumPy reference"
            tr.write_line(line)
    if INTERLEAVED:
        tr.section("interleaved rounds: stream and kernels back to back in each round")
        for n in sorted({n for _, n in INTERLEAVED}):
            row = {name: v for (name, m), v in INTERLEAVED.items() if m == n}
            limit = row.get("stream", (None,))[0]
            tr.write_line(f"N = {n:.0e}, {next(iter(row.values()))[2]} rounds")
            for name, (t, med, _) in sorted(row.items(), key=lambda kv: kv[1][0]):
                line = f"  {name:14s} {n / t:14.4g} pts/s"
                if limit:
                    line += (f"   {limit / t:6.3f} of streaming limit (min/min)"
                             f"   {med:6.3f} (median of per-round ratios)")
                tr.write_line(line)
