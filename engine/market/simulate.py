"""Monte Carlo driver: seeded RNG blocks, threads, fused kernels, streaming summaries.

Design
------
Draws are split into RNG *blocks* of ``BLOCK_DRAWS`` consecutive draws. Block
``b`` has child ``c_b = SeedSequence(seed).spawn(...)[b]`` and two streams (O'Neill 2014;
numpy NEP 19): the "normal" stream ``Generator(PCG64(c_b))`` for the inputs that need a
normal score (``model.normal_names``) and the uniform stream
``Generator(PCG64(c_b.spawn(1)[0]))`` for the uncorrelated uniform, triangular and
truncated normal/lognormal inputs
(``model.uniform_names``), each filled in bulk per batch with ``random(out=)`` and consumed
row by row; the normal stream's uniforms become scores by the backend's AS 241 ``ndtri``
of their cell midpoints (``Backend.scores``; bit-identical on the numba and Cython
backends). A block is processed in batches of ``batch_draws``
rows; the normal stream is consumed sequentially, so the draws do not depend on
the batch size. Blocks are handed to ``threads`` worker threads; each worker has
its own integer accumulators: uint16 histogram counters that it flushes exactly into
the run's int64 ones before any could overflow (``summaries.Accumulator``; the small
counters keep a worker's hot histogram lines inside its core's L2 cache), and the
floating-point sums are kept per block and added in block order. Hence the same seed gives bit-identical
summaries whatever the thread count or batch size (``docs/reproducibility.md``).

The numba and Cython kernels release the GIL, and so do numpy's generators and
ufuncs on large arrays, so blocks run concurrently.
"""
from __future__ import annotations

import math
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .kernels import get_backend
from .kernels import layout as L
from .model import Event, MarketModel, OUTPUTS, parse_event
from .summaries import Accumulator, RELATIVE_ERROR_BOUND, hist_quantiles

__all__ = ["BLOCK_DRAWS", "DEFAULT_PROBS", "Simulation", "Forecast", "forecast", "sample_values", "block_rngs", "block_streams"]

#: Draws per RNG stream; part of the reproducibility contract (changing it changes the draws).
BLOCK_DRAWS = 1 << 16
#: Reported quantile levels.
DEFAULT_PROBS = (0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95)
_MAX_DRAWS = 10 ** 12


def _check_int(name, value, lo, hi=None):
    try:
        v = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if v != value if isinstance(value, float) else False:
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if v < lo or (hi is not None and v > hi):
        raise ValueError(f"{name} must be in [{lo}, {hi if hi is not None else 'inf'}], got {value!r}")
    return v


def block_streams(child: np.random.SeedSequence) -> tuple[np.random.Generator, np.random.Generator]:
    """The two streams of one RNG block: normal scores from ``PCG64(child)`` and uniform
    variates from ``PCG64(child.spawn(1)[0])`` (NEP 19: spawned sequences are independent).

    Two streams, each consumed row-major, keep the draws independent of the batch size."""
    return (np.random.Generator(np.random.PCG64(child)),
            np.random.Generator(np.random.PCG64(child.spawn(1)[0])))


def block_rngs(seed: int, first: int, count: int) -> list[tuple[np.random.Generator, np.random.Generator]]:
    """(normal, uniform) generators of RNG blocks ``first .. first+count-1`` of ``seed``."""
    ss = np.random.SeedSequence(seed)
    children = ss.spawn(first + count)[first:]
    return [block_streams(c) for c in children]


class _Progress:
    def __init__(self, total: int, enabled: bool):
        self.total = total
        self.enabled = enabled and total > 0
        self.done = 0
        self.t0 = time.perf_counter()
        self.lock = threading.Lock()
        self.last = 0.0

    def update(self, n: int):
        if not self.enabled:
            return
        with self.lock:
            self.done += n
            now = time.perf_counter()
            if now - self.last < 0.2 and self.done < self.total:
                return
            self.last = now
            frac = self.done / self.total
            rate = self.done / max(now - self.t0, 1e-9)
            bar = "#" * int(30 * frac)
            sys.stderr.write(f"\r[{bar:<30}] {frac:6.1%} {self.done:,}/{self.total:,} draws "
                             f"{rate / 1e6:6.2f}M draws/s")
            if self.done >= self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


class Simulation:
    """An incremental Monte Carlo run of ``model`` with seed ``seed``.

    Parameters
    ----------
    model : MarketModel
    seed : int
        Non-negative integer seed of the ``SeedSequence``.
    events : sequence of Event or str
    backend : {"numba", "cython", "numpy"} or None
        ``None``: the fastest built (``kernels.fastest_backend``). numba and Cython give
        the same bits; numpy's values differ in the last bits (docs/reproducibility.md).
    threads : int
        Worker threads (each processes whole RNG blocks).
    batch_draws : int
        Rows per kernel call inside a block (memory/cache knob; does not change results).
    """

    def __init__(self, model: MarketModel, seed: int = 0, events: Sequence[Event | str] = (),
                 backend: str | None = None, threads: int = 1, batch_draws: int = 8192, progress: bool = False):
        self.model = model
        self.seed = _check_int("seed", seed, 0, 2 ** 128 - 1)
        self.threads = _check_int("threads", threads, 1, 1024)
        self.batch_draws = _check_int("batch_draws", batch_draws, 1, BLOCK_DRAWS)
        self.backend = get_backend(backend)
        self.events = [parse_event(e) if isinstance(e, str) else e for e in events]
        self.ev_series, self.ev_op, self.ev_thr = model.event_arrays(self.events)
        self.progress = progress
        self.acc = Accumulator(model.n_series, len(self.events))
        self._hist_lock = threading.Lock()
        self.block_sums: list[np.ndarray] = []
        self.n_draws = 0
        self.elapsed_s = 0.0

    def _run_block(self, rngs, n: int, acc: Accumulator, prog: _Progress) -> np.ndarray:
        m = self.model
        rng, rng_u = rngs
        sums = np.zeros(m.n_series)
        step = min(self.batch_draws, acc.capacity)
        bd = min(step, n)
        xbuf = np.empty((bd, L.N_INPUTS))
        zbuf = np.empty((bd, len(m.normal_names)))
        ubuf = np.empty((bd, len(m.uniform_names)))
        for start in range(0, n, step):
            nb = min(step, n - start)
            if acc.pending + nb > acc.capacity:
                self._flush(acc)
            x = m.sample_inputs(rng, nb, rng_uniform=rng_u, out=xbuf, z=zbuf, u=ubuf, scores=self.backend.scores,
                                transform=self.backend.transform, correlate_fn=self.backend.correlate)
            acc.bad_draws += self.backend.summaries(x, m.year_params, acc.hist, acc.span, sums, acc.nonfinite,
                                                    acc.clamped, self.ev_series, self.ev_op, self.ev_thr,
                                                    acc.ev_count)
            acc.pending += nb
            acc.n_draws += nb
            prog.update(nb)
        return sums

    def _flush(self, acc: Accumulator) -> None:
        with self._hist_lock:  # integer adds: the order of the flushes does not matter
            acc.flush_into(self.acc)

    def run(self, draws: int) -> "Simulation":
        """Add ``draws`` draws (continuing the block sequence)."""
        draws = _check_int("draws", draws, 1, _MAX_DRAWS)
        if self.n_draws % BLOCK_DRAWS:
            raise ValueError(f"cannot continue a run whose {self.n_draws} draws are not a multiple of "
                             f"{BLOCK_DRAWS}")
        first = self.n_draws // BLOCK_DRAWS
        nblocks = -(-draws // BLOCK_DRAWS)
        sizes = [BLOCK_DRAWS] * nblocks
        sizes[-1] = draws - BLOCK_DRAWS * (nblocks - 1)
        ss = np.random.SeedSequence(self.seed)
        children = ss.spawn(first + nblocks)[first:]
        prog = _Progress(draws, self.progress)
        t0 = time.perf_counter()
        results: list = [None] * nblocks
        nworkers = min(self.threads, nblocks)
        # each worker counts into its own uint16 staging histogram (flushed into the run's
        # int64 one before a counter could overflow) and its own tallies
        accs = [Accumulator(self.model.n_series, len(self.events), dtype=np.uint16) for _ in range(nworkers)]
        if nworkers == 1:
            for b in range(nblocks):
                results[b] = self._run_block(block_streams(children[b]), sizes[b], accs[0], prog)
        else:
            nxt = iter(range(nblocks))
            lock = threading.Lock()

            def worker(w):
                while True:
                    with lock:
                        b = next(nxt, None)
                    if b is None:
                        return
                    results[b] = self._run_block(block_streams(children[b]), sizes[b], accs[w], prog)

            with ThreadPoolExecutor(nworkers) as ex:
                for f in [ex.submit(worker, w) for w in range(nworkers)]:
                    f.result()
        for a in accs:
            self.acc.merge(a)
        self.block_sums.extend(results)
        self.n_draws += draws
        self.elapsed_s += time.perf_counter() - t0
        return self

    # -- results ----------------------------------------------------------------------------
    def sums(self) -> np.ndarray:
        total = np.zeros(self.model.n_series)
        for s in self.block_sums:  # block order: independent of threads
            total += s
        return total

    def result(self, probs: Sequence[float] = DEFAULT_PROBS) -> "Forecast":
        m = self.model
        finite = self.n_draws - self.acc.nonfinite
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(finite > 0, self.sums() / np.maximum(finite, 1), np.nan)
        q = hist_quantiles(self.acc.hist, probs, span=self.acc.span)
        evp = {}
        for e, cnt, s in zip(self.events, self.acc.ev_count, self.ev_series):
            denom = finite[s]
            evp[e.label()] = float(cnt / denom) if denom else math.nan
        return Forecast(years=m.years.copy(), outputs=list(L.OUTPUT_NAMES), probs=tuple(probs),
                        mean=mean.reshape(L.N_OUTPUTS, m.n_years),
                        quantiles=q.reshape(L.N_OUTPUTS, m.n_years, len(probs)),
                        nonfinite=self.acc.nonfinite.reshape(L.N_OUTPUTS, m.n_years).copy(),
                        clamped=self.acc.clamped.reshape(L.N_OUTPUTS, m.n_years).copy(),
                        n_draws=self.n_draws, bad_draws=self.acc.bad_draws, events=evp,
                        seed=self.seed, backend=self.backend.name, threads=self.threads,
                        elapsed_s=self.elapsed_s, hist=self.acc.hist)


@dataclass
class Forecast:
    """Per-year summaries of every output.

    Attributes
    ----------
    mean : ndarray (n_outputs, n_years)
        Mean over draws with a finite value [unit of the output].
    quantiles : ndarray (n_outputs, n_years, n_probs)
        Streaming quantiles, relative error <= ``RELATIVE_ERROR_BOUND`` (see ``summaries``).
    nonfinite : ndarray (n_outputs, n_years) of int
        Draws whose value was NaN or infinite (excluded from mean and quantiles).
    events : dict label -> probability
        Share of finite draws satisfying each event.
    """

    years: np.ndarray
    outputs: list
    probs: tuple
    mean: np.ndarray
    quantiles: np.ndarray
    nonfinite: np.ndarray
    clamped: np.ndarray
    n_draws: int
    bad_draws: int
    events: dict
    seed: int
    backend: str
    threads: int
    elapsed_s: float
    hist: np.ndarray = field(repr=False, default=None)

    quantile_relative_error_bound = RELATIVE_ERROR_BOUND

    def quantile(self, output: str, year: int, prob: float) -> float:
        o = self.outputs.index(output)
        t = int(np.searchsorted(self.years, year))
        if t >= self.years.size or self.years[t] != year:
            raise ValueError(f"year {year} is outside the horizon")
        p = [i for i, pp in enumerate(self.probs) if abs(pp - prob) < 1e-12]
        if not p:
            return float(hist_quantiles(self.hist[o * self.years.size + t][None, :], [prob])[0, 0])
        return float(self.quantiles[o, t, p[0]])

    def table(self):
        """Long table: one row per (output, year) with unit, mean, quantiles, non-finite count."""
        import pandas as pd
        rows = []
        for o, name in enumerate(self.outputs):
            unit = OUTPUTS[name][0]
            for t, y in enumerate(self.years):
                row = {"output": name, "unit": unit, "year": int(y), "mean": self.mean[o, t]}
                for i, p in enumerate(self.probs):
                    row[f"p{round(p * 100):02d}"] = self.quantiles[o, t, i]
                row["nonfinite_draws"] = int(self.nonfinite[o, t])
                row["draws"] = self.n_draws
                rows.append(row)
        return pd.DataFrame(rows)

    def to_dict(self) -> dict:
        return {
            "draws": self.n_draws, "seed": self.seed, "backend": self.backend, "threads": self.threads,
            "elapsed_s": self.elapsed_s, "draws_with_nonfinite_output": self.bad_draws,
            "quantile_relative_error_bound": RELATIVE_ERROR_BOUND,
            "events": self.events,
            "summary": [
                {"output": name, "year": int(y), "mean": _j(self.mean[o, t]),
                 **{f"p{round(p * 100):02d}": _j(self.quantiles[o, t, i]) for i, p in enumerate(self.probs)},
                 "nonfinite_draws": int(self.nonfinite[o, t])}
                for o, name in enumerate(self.outputs) for t, y in enumerate(self.years)],
        }


def _j(v):
    v = float(v)
    return v if math.isfinite(v) else None


def forecast(model: MarketModel, draws: int = 100_000, seed: int = 0, events: Sequence = (),
             backend: str | None = None, threads: int = 1, batch_draws: int = 8192, progress: bool = False,
             probs: Sequence[float] = DEFAULT_PROBS) -> Forecast:
    """Run ``draws`` draws and summarise every output per year.

    Parameters
    ----------
    model : MarketModel
    draws : int
        Number of Monte Carlo draws [1].
    seed : int
        Seed of the ``SeedSequence`` (same seed -> bit-identical summaries).
    events : sequence of str or Event
        e.g. ``"inference_share_spend[2026] > 0.6"``.
    backend, threads, batch_draws, progress
        See :class:`Simulation`.
    """
    return Simulation(model, seed, events, backend, threads, batch_draws, progress).run(draws).result(probs)


def sample_values(model: MarketModel, draws: int, seed: int = 0, backend: str | None = None, threads: int = 1,
                  correlate: bool = True):
    """The first ``draws`` draws of ``seed`` (same stream as :func:`forecast`) with inputs and outputs.

    Returns
    -------
    x : ndarray (draws, N_INPUTS)
    values : ndarray (draws, N_OUTPUTS, n_years)
    """
    draws = _check_int("draws", draws, 1, 10 ** 8)
    be = get_backend(backend)
    nblocks = -(-draws // BLOCK_DRAWS)
    xs = []
    for b, (rng, rng_u) in enumerate(block_rngs(seed, 0, nblocks)):
        n = min(BLOCK_DRAWS, draws - b * BLOCK_DRAWS)
        xs.append(model.sample_inputs(rng, n, correlate=correlate, rng_uniform=rng_u, scores=be.scores,
                                      transform=be.transform, correlate_fn=be.correlate))
    x = np.ascontiguousarray(np.concatenate(xs))
    out = np.empty((draws, L.N_OUTPUTS, model.n_years))
    be.values(x, model.year_params, out, threads)
    return x, out
