"""Draws per second of the default market model, end to end (sampling + kernel +
summaries), for this engine (numba and Cython, 1 and 2 threads), an equivalent
vectorised NumPy implementation, and squigglepy sampling the same inputs.

Run with timings:  pytest benchmarks/bench_market.py --benchmark-enable
One-shot table:    python benchmarks/bench_market.py [draws]
Stage breakdown:   python benchmarks/bench_market.py --stages [threads] [backend]
Split of the Cython kernel + summaries stage (C replica, x86-64, needs gcc):
                   python benchmarks/bench_market.py --split [draws] [batches]
Under plain ``pytest`` timing is disabled and each benchmark runs once on a small
draw count (smoke test).
"""
from __future__ import annotations

import sys
import time

import numpy as np
import pytest

from engine.market import distributions as D
from engine.market.kernels import available_backends
from engine.market.kernels import layout as L
from engine.market.kernels.reference import market_values_numpy
from engine.market.scenario import load_scenario
from engine.market.simulate import DEFAULT_PROBS, forecast

SMOKE_DRAWS = 20_000


def _model():
    return load_scenario("default").build()


def numpy_forecast(model, draws, seed=0):
    """The vectorised NumPy equivalent: sample every input, evaluate the reference
    model on all draws at once, then exact quantiles and means with NumPy."""
    rng = np.random.default_rng(seed)
    x = model.sample_inputs(rng, draws)
    vals = market_values_numpy(x, model.year_params).reshape(draws, -1)
    with np.errstate(invalid="ignore"):
        q = np.nanquantile(vals, DEFAULT_PROBS, axis=0)
        mean = np.nanmean(vals, axis=0)
    return q, mean


def _squiggle_dist(sq, d):
    """The same marginal in squigglepy (its ``lognorm(lo, hi)`` is a 90 % CI, like ``lognormal_ci``)."""
    if isinstance(d, D.Fixed):
        return d.value
    if isinstance(d, D.LogNormal):
        return sq.lognorm(*np.exp([d.mu - D.Z95 * d.sigma, d.mu + D.Z95 * d.sigma]))
    if isinstance(d, D.Uniform):
        return sq.uniform(d.lo, d.hi)
    if isinstance(d, D.Triangular):
        return sq.triangular(d.lo, d.mode, d.hi)
    if isinstance(d, D.Truncated) and isinstance(d.base, D.LogNormal):
        b = d.base
        return sq.lognorm(*np.exp([b.mu - D.Z95 * b.sigma, b.mu + D.Z95 * b.sigma]), lclip=d.lo, rclip=d.hi)
    raise NotImplementedError(type(d))


def squigglepy_forecast(model, draws, seed=0):
    """squigglepy's vectorised path: ``sq.sample(dist, n)`` per input (independent
    inputs; squigglepy has no rank-correlation of arbitrary marginals here), the same
    vectorised model, NumPy quantiles."""
    import squigglepy as sq
    sq.set_seed(seed)
    cols = []
    for d in model.inputs.values():
        sd = _squiggle_dist(sq, d)
        cols.append(np.full(draws, float(sd)) if isinstance(sd, float) else
                    np.asarray(sq.sample(sd, n=draws, verbose=False), dtype=float))
    x = np.ascontiguousarray(np.column_stack(cols))
    vals = market_values_numpy(x, model.year_params).reshape(draws, -1)
    with np.errstate(invalid="ignore"):
        return np.nanquantile(vals, DEFAULT_PROBS, axis=0)


@pytest.fixture(scope="module")
def model():
    return _model()


def _draws(benchmark):
    return SMOKE_DRAWS if benchmark.disabled else 1_000_000


@pytest.mark.parametrize("backend", [b for b in ("numba", "cython") if b in available_backends()])
@pytest.mark.parametrize("threads", [1, 2])
def test_engine_end_to_end(benchmark, model, backend, threads):
    forecast(model, 1000, backend=backend)  # JIT warm-up outside the timing
    n = _draws(benchmark)
    fc = benchmark(forecast, model, n, 0, (), backend, threads)
    assert fc.n_draws == n
    benchmark.extra_info["draws_per_s"] = n / benchmark.stats.stats.mean if not benchmark.disabled else None


def test_numpy_vectorised(benchmark, model):
    n = _draws(benchmark) // 4
    q, mean = benchmark(numpy_forecast, model, n)
    assert q.shape == (len(DEFAULT_PROBS), L.N_OUTPUTS * model.n_years)


def test_squigglepy_vectorised(benchmark, model):
    n = _draws(benchmark) // 4
    q = benchmark(squigglepy_forecast, model, n)
    assert q.shape[0] == len(DEFAULT_PROBS)


def stage_breakdown(model, backend="numba", batch=8192, reps=40, threads=1):
    """Time per draw [ns] of each stage of the driver's batch loop, on ``threads`` threads
    running the same loop concurrently (each with its own streams and accumulator).

    Returns one dict per thread: stage -> (minimum, median) over ``reps`` batches. The
    stages are those of ``MarketModel.sample_inputs`` and the fused kernel, called as
    ``Simulation._run_block`` calls them; ``end to end`` is the whole batch step."""
    import threading
    from engine.market.kernels import get_backend
    from engine.market.simulate import block_streams
    from engine.market.summaries import Accumulator
    cap = Accumulator(1, 0, dtype=np.uint16).capacity
    if not 1 <= batch <= cap // 2:     # two batches are counted between flushes
        raise ValueError(f"batch must be in [1, {cap // 2}] (uint16 staging counters), got {batch}")
    be = get_backend(backend)
    m = model
    names = ("normals (random + ndtri)", "uniforms", "copula", "inverse transforms (compiled)", "other inputs (NumPy/SciPy from_normal)",
             "kernel + summaries", "end to end")

    def loop(w, out):
        rng, rng_u = block_streams(np.random.SeedSequence(1000 + w))
        z = np.empty((batch, len(m.normal_names)))
        u = np.empty((batch, len(m.uniform_names)))
        x = np.empty((batch, L.N_INPUTS))
        acc = Accumulator(m.n_series, 0, dtype=np.uint16)
        sums = np.zeros(m.n_series)
        e0, ef = np.zeros(0, np.int64), np.zeros(0)
        cols, oc, codes, params = m._streams
        corr = m.correlation.factor if m.correlation is not None else np.zeros((0, 0))
        t = {k: [] for k in names}
        for r in range(reps + 1):
            if acc.pending + 2 * batch > acc.capacity:
                acc.flush_into(Accumulator(m.n_series, 0))
            c0 = time.perf_counter()
            rng.random(out=z)
            be.scores(z, z)
            c1 = time.perf_counter()
            rng_u.random(out=u)
            c2 = time.perf_counter()
            if m._corr_cols_normal.size:
                be.correlate(z, m._corr_cols_normal, corr)
            c3 = time.perf_counter()
            be.transform(z, u, cols, x, oc, codes, params)
            c4 = time.perf_counter()
            for col, j, d in m._slow_streams:
                x[:, col] = d.from_normal(z[:, j])
            c5 = time.perf_counter()
            be.summaries(x, m.year_params, acc.hist, acc.span, sums, acc.nonfinite, acc.clamped, e0, e0, ef, e0)
            c6 = time.perf_counter()
            xx = m.sample_inputs(rng, batch, rng_uniform=rng_u, out=x, z=z, u=u, scores=be.scores,
                                transform=be.transform, correlate_fn=be.correlate)
            be.summaries(xx, m.year_params, acc.hist, acc.span, sums, acc.nonfinite, acc.clamped, e0, e0, ef, e0)
            c7 = time.perf_counter()
            acc.pending += 2 * batch
            if r:  # the first round warms caches and page mappings
                for k, a, b in zip(names, (c0, c1, c2, c3, c4, c5, c6), (c1, c2, c3, c4, c5, c6, c7)):
                    t[k].append((b - a) / batch * 1e9)
        out[w] = {k: (float(np.min(v)), float(np.median(v))) for k, v in t.items()}

    loop(99, {})  # JIT and warm-up
    res: dict = {}
    ths = [threading.Thread(target=loop, args=(w, res)) for w in range(threads)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    return [res[w] for w in range(threads)]


def test_stage_breakdown_refuses_batches_that_could_overflow_its_counters(model):
    with pytest.raises(ValueError, match="batch must be in"):
        stage_breakdown(model, batch=40_000, reps=1)


def test_stage_breakdown_smoke(model):
    (res,) = stage_breakdown(model, batch=512, reps=2)
    assert set(res) >= {"normals (random + ndtri)", "kernel + summaries", "end to end"}
    assert all(lo > 0 and lo <= med for lo, med in res.values())


def split_compiler() -> str | None:
    """The C compiler that builds the split harness, resolved as setup.py resolves it
    (``$CC``, else sysconfig's ``CC``, else ``cc``; its first word), as a path; None
    where it is not installed."""
    import os
    import shutil
    import sysconfig
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc)


def stage_split(model, draws=8192, reps=40, seed=0, x=None):
    """Time per draw [ns] of the model kernel, bin indices, running sums and histogram
    counts of the Cython fused kernel, from ``market_stage_split.c`` (a C replica of
    ``market_summaries``' common path with a timestamp between stages), compiled with
    setup.py's flags on the model's own inputs (or ``x``, (draws, N_INPUTS)). Returns
    the program's report; RuntimeError where it cannot run or stops (an output with a
    clamped or non-finite value, whose exact path it does not replicate)."""
    import os
    import platform
    import subprocess
    import tempfile
    if platform.machine() not in ("x86_64", "AMD64"):
        raise RuntimeError("the split harness reads the x86 time-stamp counter")
    cc = split_compiler()
    if cc is None:
        raise RuntimeError("no C compiler ($CC, sysconfig's CC or cc) to build the split harness")
    here = os.path.dirname(os.path.abspath(__file__))
    ext = os.path.join(os.path.dirname(here), "ext")
    if x is None:
        x = model.sample_inputs(np.random.default_rng(seed), draws)
    draws = x.shape[0]
    with tempfile.TemporaryDirectory() as tmp:
        xp, yp, exe = (os.path.join(tmp, f) for f in ("x.bin", "yp.bin", "split"))
        np.ascontiguousarray(x, dtype=np.float64).tofile(xp)
        np.ascontiguousarray(model.year_params, dtype=np.float64).tofile(yp)
        subprocess.run([cc, "-O3", "-ffp-contract=off", "-Wno-psabi", "-march=x86-64-v2", "-I", ext,
                        os.path.join(here, "market_stage_split.c"), "-o", exe], check=True)
        res = subprocess.run([exe, xp, yp, str(draws), str(model.n_years), str(reps)],
                             capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"the split harness stopped (exit status {res.returncode}): {res.stderr.strip()}")
    return res.stdout


def _needs_split_harness():
    import platform
    if platform.machine() not in ("x86_64", "AMD64") or split_compiler() is None:
        pytest.skip("x86-64 and the C compiler setup.py uses ($CC, sysconfig's CC or cc) needed")


def test_stage_split_smoke(model):
    _needs_split_harness()
    out = stage_split(model, draws=300, reps=1)
    assert "histogram counts" in out and "running sums" in out


def test_stage_split_stops_on_a_clamped_or_non_finite_value(model):
    """A NaN output has a bin index outside its histogram row: the harness stops with a
    message instead of counting it (out of bounds)."""
    _needs_split_harness()
    x = model.sample_inputs(np.random.default_rng(0), 300)
    x[17, 0] = np.nan                           # tokens_per_day_base: NaN outputs
    with pytest.raises(RuntimeError, match=r"exit status 4.*clamped or non-finite value"):
        stage_split(model, reps=1, x=x)


def test_split_compiler_is_resolved_as_setup_py_does(monkeypatch):
    """The smoke test's skip condition and the harness use the same compiler: ``$CC``
    first (its first word), not a fixed ``gcc``."""
    import platform
    import shutil
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("x86-64 needed")
    monkeypatch.setenv("CC", "/nonexistent/infercast-cc -O2")
    assert split_compiler() is None
    with pytest.raises(RuntimeError, match="no C compiler"):
        stage_split(None)
    if shutil.which("cc"):
        monkeypatch.setenv("CC", "cc -pthread")
        assert split_compiler() == shutil.which("cc")


def test_sdist_manifest_keeps_every_benchmark_source():
    """MANIFEST.in's ``recursive-include benchmarks`` patterns cover every file here
    (``market_stage_split.c`` included), so an sdist can run ``--split``."""
    import fnmatch
    from pathlib import Path
    here = Path(__file__).resolve().parent
    patterns = [w for line in (here.parent / "MANIFEST.in").read_text().splitlines()
                if line.startswith("recursive-include benchmarks ") for w in line.split()[2:]]
    files = [f.name for f in here.iterdir() if f.is_file() and f.suffix in (".py", ".c")]
    assert "market_stage_split.c" in files
    for name in files:
        assert any(fnmatch.fnmatch(name, p) for p in patterns), name


def main(draws: int = 10_000_000):
    model = _model()
    forecast(model, 1000)
    rows = []
    for backend in [b for b in ("numba", "cython") if b in available_backends()]:
        for threads in (1, 2):
            t = time.perf_counter()
            forecast(model, draws, 0, (), backend, threads)
            rows.append((f"engine {backend}, {threads} thread(s)", draws, time.perf_counter() - t))
    small = min(draws, 1_000_000)
    t = time.perf_counter()
    numpy_forecast(model, small)
    rows.append(("vectorised NumPy", small, time.perf_counter() - t))
    try:
        t = time.perf_counter()
        squigglepy_forecast(model, small)
        rows.append(("squigglepy (vectorised sampling)", small, time.perf_counter() - t))
    except ImportError:
        rows.append(("squigglepy (not installed)", 0, float("nan")))
    print(f"{'implementation':<36}{'draws':>12}{'seconds':>10}{'draws/s':>14}")
    for name, n, dt in rows:
        print(f"{name:<36}{n:>12,}{dt:>10.2f}{n / dt:>14,.0f}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--split":
        print(stage_split(_model(), *(int(float(a)) for a in sys.argv[2:4])), end="")
    elif len(sys.argv) > 1 and sys.argv[1] == "--stages":
        th = int(sys.argv[2]) if len(sys.argv) > 2 else 1
        be = sys.argv[3] if len(sys.argv) > 3 else "numba"
        res = stage_breakdown(_model(), be, threads=th)
        print(f"{be}, {th} thread(s), batches of 8192 draws: ns per draw per thread, min / median of 40")
        for k in res[0]:
            print(f"  {k:<32}" + "  ".join(f"{r[k][0]:7.0f} /{r[k][1]:7.0f}" for r in res))
    else:
        main(int(float(sys.argv[1])) if len(sys.argv) > 1 else 10_000_000)

