"""Roofline kernel throughput: each backend, the NumPy reference and the streaming limit.

Run with timing:
    INFERCAST_BENCH_SIZES=1e6,1e7 pytest benchmarks --benchmark-enable -p no:randomly
The streaming pass reads every kernel input and writes every output once with
no arithmetic (``engine._ext._roofline.stream_pass``): the memory-bandwidth
limit for this kernel on this machine. The summary prints each measurement as
a fraction of that limit and as a multiple of the NumPy reference. The kernels
run on random points (every SIMD group mixes deployments, the worst case) and,
as "<backend> ordered", on the same points sorted by deployment.
"""
from __future__ import annotations

import numpy as np
import pytest

import engine
from engine.core import dispatch
from engine.dtypes import DTYPES, bytes_table
from engine.tables import build_tables

from .conftest import bench_sizes, bench_threads, record

MODELS = ["llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b", "llama-2-70b", "mixtral-8x7b",
          "deepseek-v3"]
CHIPS = ["h100-sxm", "h200", "b200", "a100-80gb", "l40s"]
_CACHE: dict = {}


def make_points(n: int, seed: int = 0):
    """Random valid scenario points over the starter catalog (struct of arrays)."""
    if n in _CACHE:
        return _CACHE[n]
    rng = np.random.default_rng(seed)
    ms = [engine.get_model(m) for m in MODELS]
    cs = [engine.get_chip(c) for c in CHIPS]
    mt, ct = build_tables(ms, cs)
    arrays = dict(
        model_idx=rng.integers(0, len(ms), n, dtype=np.int32),
        chip_idx=rng.integers(0, len(cs), n, dtype=np.int32),
        tp=(2 ** rng.integers(0, 4, n)).astype(np.int32),
        pp=np.ones(n, np.int32),
        batch=rng.integers(1, 257, n, dtype=np.int32),
        prompt=rng.integers(1, 32769, n, dtype=np.int32),
        output=rng.integers(1, 4097, n, dtype=np.int32),
        w_dt=rng.choice(np.array([DTYPES["bf16"][0], DTYPES["fp8"][0]], np.int8), n),
        kv_dt=rng.choice(np.array([DTYPES["bf16"][0], DTYPES["fp8"][0]], np.int8), n),
        act_dt=np.full(n, DTYPES["bf16"][0], np.int8),
    )
    _CACHE.clear()
    _CACHE[n] = (mt, ct, bytes_table(), arrays)
    return _CACHE[n]


@pytest.mark.parametrize("n", bench_sizes())
def test_stream_limit(benchmark, n):
    mt, ct, db, arrays = make_points(n)
    out = dispatch.KernelOutput.empty(n)
    benchmark(dispatch.stream_pass, arrays, out, bench_threads())
    record(benchmark, "stream", n)
    assert out.max_batch[0] == arrays["batch"][0]


#: the deployment fields of a point (everything but batch and lengths), slowest first
DEPLOYMENT_KEY = ("model_idx", "chip_idx", "tp", "pp", "w_dt", "kv_dt", "act_dt")
_ORDERED: dict = {}


def make_points_ordered(n: int, seed: int = 0):
    """The points of ``make_points`` sorted by deployment, the order a sweep or a
    Monte Carlo over lengths and batches produces: consecutive SIMD groups share
    their deployment, whose constants the kernels then reuse."""
    if n not in _ORDERED:
        mt, ct, db, arrays = make_points(n, seed)
        order = np.lexsort([arrays[k] for k in reversed(DEPLOYMENT_KEY)])
        _ORDERED.clear()
        _ORDERED[n] = (mt, ct, db, {k: np.ascontiguousarray(v[order]) for k, v in arrays.items()})
    return _ORDERED[n]


@pytest.mark.parametrize("order", ["random", "ordered"])
@pytest.mark.parametrize("backend", ["cython", "numba"])
@pytest.mark.parametrize("n", bench_sizes())
def test_kernel(benchmark, backend, n, order):
    mt, ct, db, arrays = (make_points if order == "random" else make_points_ordered)(n)
    out = dispatch.KernelOutput.empty(n)
    dispatch.roofline(mt, ct, db, **arrays, backend=backend, n_threads=bench_threads(), out=out,
                      check_ranges=False)  # JIT warm-up outside the timing
    benchmark(dispatch.roofline, mt, ct, db, **arrays, backend=backend,
              n_threads=bench_threads(), out=out, check_ranges=False)
    record(benchmark, backend if order == "random" else f"{backend} ordered", n)
    assert out.fits.any() and np.isfinite(out.out_f[0][out.fits]).all()
    if order == "ordered":      # the first points share one deployment
        first = [arrays[k][0] for k in DEPLOYMENT_KEY]
        same = np.all([arrays[k] == v for k, v in zip(DEPLOYMENT_KEY, first)], axis=0)
        assert same[: max(1, n // 1000)].all()


@pytest.mark.parametrize("n", bench_sizes())
def test_numpy_reference(benchmark, n):
    mt, ct, db, arrays = make_points(n)
    out = dispatch.KernelOutput.empty(n)
    benchmark.pedantic(dispatch.roofline, args=(mt, ct, db), kwargs=dict(
        **arrays, backend="numpy", out=out, check_ranges=False), rounds=1, iterations=1)
    record(benchmark, "numpy", n)
    assert out.fits.any()


def _sweep_axes(n: int) -> dict:
    per_output = len(MODELS) * len(CHIPS) * 4 * 64 * 41
    n_out = max(1, round(n / per_output))
    return dict(models=MODELS, chips=CHIPS, tp=[1, 2, 4, 8], batch=list(range(1, 65)),
                prompt_tokens=list(range(64, 64 * 42, 64)),
                output_tokens=list(range(16, 16 * (n_out + 1), 16)))


@pytest.mark.parametrize("n", bench_sizes())
def test_sweep_end_to_end(benchmark, n):
    axes = _sweep_axes(n)
    res = engine.sweep(**axes, n_threads=bench_threads())   # warm-up
    npts = len(res)
    del res
    result = benchmark.pedantic(engine.sweep, kwargs=dict(**axes, n_threads=bench_threads()),
                                rounds=3 if n <= 2e6 else 2, iterations=1)
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        # normalise to points/s at this N so the summary compares like with like
        from .conftest import RESULTS
        RESULTS[("sweep e2e", n)] = stats.stats.min * n / npts
    assert len(result) == npts and result["fits"].any()


#: kernel cases of the interleaved measurement, in the order each round runs them
INTERLEAVED_CASES = (("stream", None, None), ("cython", "cython", "random"),
                     ("numba", "numba", "random"), ("cython ordered", "cython", "ordered"),
                     ("numba ordered", "numba", "ordered"))


@pytest.mark.parametrize("n", bench_sizes())
def test_interleaved_ratios(benchmark, n):
    """The same ratios measured round-robin, so the stream and the kernels share host conditions.

    The tests above time each case in its own block of rounds: on a shared
    host whose memory bandwidth and CPU share drift over minutes, the stream
    minimum and a kernel minimum can come from different conditions. Here each
    round runs the streaming pass and every kernel once, back to back; the
    summary gives each case's minimum over the rounds and, per case, the median
    over rounds of (stream time / kernel time) within the same round.
    """
    import time

    _, _, _, rnd = make_points(n)
    mt, ct, db, ordered = make_points_ordered(n)
    out = dispatch.KernelOutput.empty(n)
    threads = bench_threads()

    def case(backend, order):
        arrays = rnd if order == "random" else ordered
        if backend is None:
            return lambda: dispatch.stream_pass(arrays, out, threads)
        return lambda: dispatch.roofline(mt, ct, db, **arrays, backend=backend, n_threads=threads,
                                         out=out, check_ranges=False)

    calls = [(name, case(backend, order)) for name, backend, order in INTERLEAVED_CASES]
    times: dict = {name: [] for name, _ in calls}
    for _, fn in calls:     # JIT warm-up and first touch outside the timing
        fn()

    def one_round():
        for name, fn in calls:
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)

    benchmark.pedantic(one_round, rounds=10 if n <= 2e6 else 6, iterations=1)
    rounds = len(times["stream"])
    assert rounds >= 1 and all(len(v) == rounds and min(v) > 0 for v in times.values())
    assert out.fits.any() and np.isfinite(out.out_f[0][out.fits]).all()
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        from .conftest import INTERLEAVED
        stream = np.array(times["stream"])
        for name, t in times.items():
            INTERLEAVED[(name, n)] = (min(t), float(np.median(stream / np.array(t))), rounds)
