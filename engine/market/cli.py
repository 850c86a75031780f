"""``infercast forecast``: Monte Carlo market forecast from a scenario file.

Exit status 0 on success, 2 on bad input (one-line error on stderr, no traceback).
Outputs are written to a temporary file in the target directory and moved into
place with ``os.replace``, so a failed run never leaves a partial file.
"""
from __future__ import annotations

import argparse
import decimal
import json
import os
import sys
from pathlib import Path

from ..files import atomic_write

__all__ = ["add_parser", "run", "main"]


def _count(text: str) -> int:
    """A whole number of draws, also in integer-valued scientific notation ("1e6", "2.5e6").

    Parsed with ``decimal`` (exact), so "1e20" is 10**20 and "1.5" or "1e-3" are refused."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        v = decimal.Decimal(text.strip())
    except decimal.InvalidOperation:
        v = None
    if v is None or not v.is_finite() or v != v.to_integral_value():
        raise argparse.ArgumentTypeError(f"must be a whole number such as 1000000 or 1e6, got {text!r}")
    if v.adjusted() > 20:   # refuse before int() builds a huge integer (1e2000000 would hang)
        raise argparse.ArgumentTypeError(f"must be at most 1e20, got {text!r}")
    return int(v)


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", default="default", help="scenario TOML file or bundled name (default: default)")
    p.add_argument("--draws", type=_count, default=1_000_000, help="Monte Carlo draws, e.g. 1000000 or 1e6 (default 1e6)")
    p.add_argument("--seed", type=int, default=0, help="seed (same seed -> identical results)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="worker threads")
    p.add_argument("--backend", choices=("numba", "cython", "numpy"), default=None,
                   help="kernel backend (default: the fastest built, cython, else numba; those two give the same bits)")
    p.add_argument("--out", help="write the summary table to .csv or .parquet")
    p.add_argument("--plot", help="fan chart (.png or .svg)")
    p.add_argument("--plot-outputs", default="spend_total_usd,inference_share_spend,inference_share_compute",
                   help="comma-separated outputs for the fan chart")
    p.add_argument("--tornado", help="tornado chart (.png or .svg) of --tornado-output in --tornado-year")
    p.add_argument("--tornado-output", default="inference_share_spend")
    p.add_argument("--tornado-year", type=int, default=2026)
    p.add_argument("--tornado-draws", type=_count, default=20_000)
    p.add_argument("--event", action="append", default=[], metavar="EXPR",
                   help="event probability, e.g. 'inference_share_spend[2026] > 0.6' (repeatable)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON instead of a table")
    p.add_argument("--years", help="years shown in the terminal table, e.g. 2023,2026,2030")
    p.add_argument("--converge", type=float, metavar="REL_TOL",
                   help="add draws until the relative SE of the median of spend_total_usd and "
                        "inference_share_spend in --tornado-year is below REL_TOL (--draws is the budget)")
    p.add_argument("--no-progress", action="store_true")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``forecast`` sub-command to an ``argparse`` sub-parsers object."""
    p = subparsers.add_parser("forecast", help="Monte Carlo forecast of the AI accelerator market",
                              description=__doc__.splitlines()[0])
    _configure(p)
    p.set_defaults(func=run)
    return p


def _check_suffix(path, allowed, what):
    if path and Path(path).suffix.lower() not in allowed:
        raise ValueError(f"{what} {path!r} must end in {' or '.join(allowed)}")


def run(args) -> int:
    """Execute a parsed ``forecast`` command; 0 on success, 2 on bad input."""
    from .model import OUTPUTS
    try:
        _check_suffix(args.out, (".csv", ".parquet"), "--out")
        _check_suffix(args.plot, (".png", ".svg"), "--plot")
        _check_suffix(args.tornado, (".png", ".svg"), "--tornado")
        if args.draws < 1:
            raise ValueError(f"--draws must be >= 1, got {args.draws}")
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        if args.seed < 0:
            raise ValueError(f"--seed must be >= 0, got {args.seed}")
        plot_outputs = [s.strip() for s in args.plot_outputs.split(",") if s.strip()]
        for o in plot_outputs + [args.tornado_output]:
            if o not in OUTPUTS:
                raise ValueError(f"unknown output {o!r}; outputs are {', '.join(OUTPUTS)}")
        from .model import parse_event
        from .scenario import load_scenario
        from .simulate import Simulation
        sc = load_scenario(args.scenario)
        events = list(sc.events) + [parse_event(e) for e in args.event]
        for e in events:
            if e.year not in sc.years:
                raise ValueError(f"event {e.label()!r} is outside the horizon {sc.years[0]}-{sc.years[-1]}")
        model = sc.build()
        progress = not args.no_progress and args.draws >= 2_000_000 and sys.stderr.isatty()
        if args.converge is not None:
            from .convergence import run_until_converged
            targets = [("spend_total_usd", args.tornado_year, 0.5), ("inference_share_spend", args.tornado_year, 0.5)]
            cr = run_until_converged(model, targets, rel_tol=args.converge, max_draws=args.draws, seed=args.seed,
                                     events=events, backend=args.backend, threads=args.threads, progress=progress)
            fc = cr.forecast
            print(f"convergence: {'reached' if cr.converged else 'NOT reached'} after {fc.n_draws:,} draws; "
                  + "; ".join(f"{o}[{y}] P{round(p * 100)} = {q:.4g} +- {se:.2g} (rel {rel:.2%})"
                              for o, y, p, q, se, rel in cr.targets), file=sys.stderr)
        else:
            fc = Simulation(model, args.seed, events, args.backend, args.threads, progress=progress).run(
                args.draws).result()
        table = fc.table()
        if args.out:
            if args.out.lower().endswith(".csv"):
                atomic_write(args.out, lambda p: table.to_csv(p, index=False))
            else:
                atomic_write(args.out, lambda p: table.to_parquet(p, index=False))
        if args.plot:
            from .plotting import fan_chart
            atomic_write(args.plot, lambda p: fan_chart(fc, plot_outputs, p))
        if args.tornado:
            from .plotting import tornado_chart
            from .sensitivity import tornado
            pairs = tornado(model, args.tornado_output, args.tornado_year, args.tornado_draws, args.seed,
                            args.backend)
            atomic_write(args.tornado, lambda p: tornado_chart(
                pairs, f"{args.tornado_output} {args.tornado_year}", p))
        if args.json:
            print(json.dumps(fc.to_dict(), indent=1))
        else:
            _print_summary(fc, table, args.years)
        return 0
    except (ValueError, OSError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"infercast forecast: error: {msg}", file=sys.stderr)
        return 2


def _print_summary(fc, table, years_arg):
    if years_arg:
        try:
            years = [int(y) for y in years_arg.split(",")]
        except ValueError:
            raise ValueError(f"--years must be comma-separated years, got {years_arg!r}") from None
    else:
        ys = list(fc.years)
        years = sorted({ys[0], ys[min(3, len(ys) - 1)], ys[min(7, len(ys) - 1)], ys[-1]})
    t = table[table.year.isin(years)]
    print(f"{fc.n_draws:,} draws, seed {fc.seed}, backend {fc.backend}, {fc.threads} thread(s), "
          f"{fc.elapsed_s:.2f} s ({fc.n_draws / max(fc.elapsed_s, 1e-9) / 1e6:.2f}M draws/s); "
          f"quantiles within {fc.quantile_relative_error_bound:.2%} (relative) of the exact order statistic")
    print(f"{'output':<32}{'year':>6}{'mean':>12}{'P5':>11}{'P10':>11}{'P50':>11}{'P90':>11}{'P95':>11}")
    for _, r in t.iterrows():
        print(f"{r.output:<32}{r.year:>6}{r['mean']:>12.4g}{r.p05:>11.4g}{r.p10:>11.4g}{r.p50:>11.4g}"
              f"{r.p90:>11.4g}{r.p95:>11.4g}")
    if fc.bad_draws:
        print(f"WARNING: {fc.bad_draws:,} draws produced a non-finite output (excluded and counted per series "
              f"in nonfinite_draws)")
    for label, p in fc.events.items():
        print(f"{label} = {p:.4f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="infercast-forecast", description=__doc__.splitlines()[0])
    _configure(parser)
    args = parser.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
