"""The Cython market kernel's instruction-set copies and vector math (ext/market_simd.h).

The per-draw model is evaluated eight (AVX-512) or four (AVX2, baseline) draws at a
time; the best copy this CPU has runs and ``INFERCAST_SIMD`` selects a lower one. Every
copy must give bit-identical outputs (IEEE arithmetic lane by lane, -ffp-contract=off),
a draw's outputs must not depend on the draws sharing its vector, and the kernel's
exp / log / pow / 1/sqrt (and their numba twins, which must match them bit for bit)
must stay within 2 ulp of NumPy (pow: within the bound of exp(y log q)).
"""
from __future__ import annotations

import numpy as np
import pytest

from engine._ext import _market
from engine.market.kernels import get_backend
from engine.market.kernels import layout as L
from engine.market.kernels import numba_kernel as NK

from .test_market_kernels import _inputs, _yp
from .simd_copies import run_copy

ULP = np.finfo(np.float64).eps
TINY = np.finfo(np.float64).tiny
_WHICH = {"exp": 0, "rsqrt": 1, "log": 2, "pow": 3}


def _cython(fn, x, p=0.0):
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty_like(x)
    _market._math(fn, x, out, p)
    return out


def _numba(fn, x, p=0.0):
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty_like(x)
    NK.math_array(_WHICH[fn], x, out, p)
    return out


def _ulps(got, ref):
    return np.abs(got - ref) / np.maximum(np.abs(ref), TINY) / ULP


def _both(fn, x, p=0.0):
    """The Cython copy's values, after checking that the numba twin gives the same bits."""
    got = _cython(fn, x, p)
    np.testing.assert_array_equal(_numba(fn, x, p), got)
    return got


def test_exp_within_two_ulp_of_numpy():
    rng = np.random.default_rng(20261122)
    # arguments of the kernel: -rs_k (y0 - mid) up to |20 * 300|, eps * Lam, -Lam
    x = np.concatenate([rng.uniform(-745.2, 709.8, 400_000), rng.uniform(-1.0, 1.0, 200_000),
                        -(10.0 ** rng.uniform(-300, 0, 50_000)), rng.uniform(-6000, 6000, 10_000),
                        [0.0, -0.0, 709.78, 709.79, -708.39, -745.13, -745.14, 1e300, -1e300]])
    with np.errstate(over="ignore", under="ignore"):
        ref = np.exp(x)
    got = _both("exp", x)
    normal = np.isfinite(ref) & (ref >= TINY)
    assert _ulps(got[normal], ref[normal]).max() <= 2.0
    # subnormal results: rounded once, within one subnormal step; overflow and underflow exact
    sub = (ref < TINY) & (ref > 0)
    assert np.abs(got[sub] - ref[sub]).max() <= 5e-324
    np.testing.assert_array_equal(got[~normal & ~sub], ref[~normal & ~sub])
    np.testing.assert_array_equal(_both("exp", np.array([0.0, np.inf, -np.inf, np.nan])),
                                  [1.0, np.inf, 0.0, np.nan])


def test_log_within_two_ulp_of_numpy():
    rng = np.random.default_rng(7)
    x = np.concatenate([10.0 ** rng.uniform(-323, 308, 400_000), rng.uniform(0.5, 2.0, 200_000),
                        [5e-324, TINY, 1.0, np.nextafter(1.0, 2.0), np.nextafter(1.0, 0.0), np.sqrt(2.0),
                         1.7976931348623157e308]])
    got, ref = _both("log", x), np.log(x)
    assert _ulps(got, ref).max() <= 2.0
    np.testing.assert_array_equal(got[x == 1.0], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        special = np.array([0.0, np.inf, -1.0, np.nan])
        np.testing.assert_array_equal(_both("log", special), np.log(special))


def test_rsqrt_within_its_bound_of_exact():
    """Error in units of the last place of the exact value (long-double reference)."""
    rng = np.random.default_rng(3)
    u = np.concatenate([1.0 + 3.0 * rng.random(400_000), 10.0 ** rng.uniform(0, 308, 400_000),
                        [1.0, np.nextafter(1.0, 2.0), 4.0, 1.7976931348623157e308]])
    got = _both("rsqrt", u)
    ref = 1 / np.sqrt(u.astype(np.longdouble))
    err = np.abs(got.astype(np.longdouble) - ref) / np.spacing(ref.astype(np.float64))
    assert err.max() <= 2.5
    np.testing.assert_array_equal(_both("rsqrt", np.array([np.inf, np.nan])), [0.0, np.nan])


@pytest.mark.parametrize("p", [0.0, 1.0 / 14, 1.0 / 12, 0.5, 1.0])
def test_pow_within_its_bound_of_numpy(p):
    """exp(p log q): 2 ulp for each function plus |p log q| ulp from rounding the product."""
    rng = np.random.default_rng(5)
    q = 10.0 ** rng.uniform(-6, 6, 300_000)      # ratios of vendor shares in (0, 1]
    got, ref = _both("pow", q, p), np.power(q, p)
    bound = 2.0 + 2.0 * np.abs(p * np.log(q)) + 2.0
    assert np.all(_ulps(got, ref) <= bound)
    if p == 0.0:
        np.testing.assert_array_equal(got, 1.0)


def test_values_numba_and_cython_identical_bits():
    rng = np.random.default_rng(9)
    x = _inputs(rng, 1003, 0.8)
    x[::17, 29] = 0.0                              # no spend: NaN shares
    yp = _yp(13)
    a, b = (np.empty((x.shape[0], L.N_OUTPUTS, 13)) for _ in range(2))
    get_backend("cython").values(x, yp, a, 1)
    get_backend("numba").values(x, yp, b, 1)
    assert np.array_equal(a, b, equal_nan=True)
    assert np.isnan(a).any()


@pytest.mark.parametrize("years", [1, 2, 13])
def test_values_same_bits_at_one_and_two_threads_and_both_backends(years):
    """More draws than one thread's chunk, odd tails, draws with NaN and inf outputs."""
    rng = np.random.default_rng(23)
    x = _inputs(rng, 1031, 1.0)
    x[::13, 29] = 0.0                              # no spend: NaN shares
    x[7::97, 0] = 1e308                            # overflowing demand
    yp = _yp(years)
    runs = []
    for backend, threads in (("cython", 1), ("cython", 2), ("numba", 2)):
        out = np.empty((x.shape[0], L.N_OUTPUTS, years))
        get_backend(backend).values(x, yp, out, threads)
        runs.append(out)
    assert np.array_equal(runs[0], runs[1], equal_nan=True)
    assert np.array_equal(runs[0], runs[2], equal_nan=True)
    assert np.isnan(runs[0]).any() and np.isinf(runs[0]).any()


def test_draw_result_does_not_depend_on_its_vector():
    """Each draw alone (a vector padded with copies of it) equals the same draw inside
    full vectors of other draws, including draws whose outputs are NaN or inf, at every
    offset of a sub-batch."""
    rng = np.random.default_rng(11)
    x = _inputs(rng, 37, 1.5)
    x[3, 29] = 0.0
    x[5, 0] = 1e308                                # overflowing demand
    yp = _yp(17)                                   # more years than one chunk of the kernel
    together = np.empty((x.shape[0], L.N_OUTPUTS, 17))
    _market.market_values(x, yp, together, 1)
    for i in range(x.shape[0]):
        alone = np.empty((1, L.N_OUTPUTS, 17))
        _market.market_values(x[i:i + 1], yp, alone, 1)
        assert np.array_equal(alone[0], together[i], equal_nan=True), i
    assert np.isnan(together).any() and np.isinf(together).any()


_CHILD = r"""
import json, sys
import numpy as np
sys.path.insert(0, {root!r})
from engine._ext import _market
from engine.market.kernels import layout as L
from tests.test_market_kernels import _inputs, _yp, _summaries
rng = np.random.default_rng(5)
x = _inputs(rng, 1001, 1.2)                   # not a multiple of the lane count
x[::13, 29] = 0.0
res = {{"isa": _market.simd_isa()}}
for T in (1, 2, 13, 19):
    yp = _yp(T)
    out = np.empty((x.shape[0], L.N_OUTPUTS, T))
    _market.market_values(x, yp, out, 2)
    acc, ev, bad = _summaries("cython", x, yp, dtype=np.uint16)
    res[f"v{{T}}"] = out.tobytes().hex()
    res[f"s{{T}}"] = (acc["hist"].tobytes() + acc["sums"].tobytes() + acc["nonfinite"].tobytes()
                      + ev.tobytes()).hex()
a = np.concatenate([np.linspace(-800, 800, 4001), [np.inf, -np.inf, np.nan]])
for fn, arg, p in (("exp", a, 0.0), ("log", np.abs(a) + 1e-300, 0.0), ("rsqrt", np.abs(a) + 1.0, 0.0),
                   ("pow", np.abs(a) + 1e-3, 1.0 / 12)):
    o = np.empty_like(arg)
    _market._math(fn, arg, o, p)
    res[fn] = o.tobytes().hex()
print(json.dumps(res))
"""


def _run_copy(isa):
    return run_copy(_CHILD, isa)


def test_every_instruction_set_copy_gives_identical_bits():
    best = _run_copy(None)
    assert best["isa"] == _market.simd_isa()
    seen = {best["isa"]}
    for isa in ("avx2", "baseline"):
        got = _run_copy(isa)
        seen.add(got["isa"])
        for key in best:
            if key != "isa":
                assert got[key] == best[key], (isa, got["isa"], key)
    # the override picks the baseline copy on every CPU; on a CPU without AVX-512
    # only the 4-lane copies are compared
    assert "baseline" in seen


def test_math_helper_rejects_bad_input():
    with pytest.raises(ValueError, match="rsqrt needs x >= 1"):
        _market._math("rsqrt", np.array([2.0, 0.5]), np.empty(2))
    with pytest.raises(ValueError, match="pow needs x > 0"):
        _market._math("pow", np.array([0.0]), np.empty(1), 0.5)
    with pytest.raises(ValueError, match="out has 3"):
        _market._math("exp", np.array([1.0, 2.0]), np.empty(3))
    with pytest.raises(ValueError, match="fn must be one of"):
        _market._math("sin", np.array([1.0]), np.empty(1))
