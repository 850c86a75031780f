"""The sampling stage: standard normal scores of the normal stream's uniforms, and the
closed-form inverse transforms of the input columns.

``ext/market_sample_simd.h`` (Cython backend, every instruction-set copy) and its numba
twin ``engine.market.kernels.sample_kernel`` must give the same bits; both against
scipy.special.ndtri (the reference ``scores_from_uniforms_numpy`` and ``ndtri`` itself)
within ``NDTRI_RTOL``; scores are finite and exactly antisymmetric on the whole
``Generator.random`` grid ``k 2^-53``; the model's sampler gives the same input matrix on
both backends and its marginals pass KS tests.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import special, stats

from engine._ext import _market
from engine.market import distributions as D
from engine.market.kernels import available_backends, get_backend
from engine.market.kernels import layout as L
from engine.market.kernels import sample_kernel as S

from .simd_copies import run_copy
from .test_market_ndtri import NDTRI_RTOL, _probabilities

N53 = 2 ** 53
HALF_CELL = 2.0 ** -54
#: largest |score|: the cells next to 0 and 1 (Phi^-1(2^-54) = -8.29)
MAX_SCORE = 8.3


def _bits(a):
    """The int64 bits of ``a`` with every NaN mapped to one canonical NaN: equal bits
    means the same values, -0.0 and 0.0 told apart, whatever NaN payload or sign each
    compiler produced (GCC and LLVM may fold ``-z * c`` with a NaN ``z`` differently)."""
    a = np.array(a, dtype=np.float64, copy=True)
    a[np.isnan(a)] = np.nan
    return a.view(np.int64)


def assert_same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    ba, bb = _bits(a), _bits(b)
    bad = np.flatnonzero(ba.ravel() != bb.ravel())
    assert bad.size == 0, f"{bad.size} values differ, first at flat index {bad[0]}: " \
                          f"{a.ravel()[bad[0]]!r} vs {b.ravel()[bad[0]]!r}"


def _grid_edges():
    """Uniforms on the 2^-53 grid where the formulas change: 0, the top, 1/2, both
    sides of the central region's edges (p = 0.075, 0.925) and of the far tail."""
    k = np.array([0, 1, 2, 3, N53 - 1, N53 - 2, N53 // 2 - 1, N53 // 2, N53 // 2 + 1,
                  int(0.075 * N53) - 1, int(0.075 * N53), int(0.075 * N53) + 1,
                  int(0.925 * N53) - 1, int(0.925 * N53), int(0.925 * N53) + 1,
                  int(1.4e-11 * N53), N53 - 1 - int(1.4e-11 * N53), 1 << 20, N53 - (1 << 20)], dtype=np.int64)
    return k.astype(np.float64) / N53


def _uniforms(seed=3, n=200_003):
    """``Generator.random`` values and the grid's edge cases (an odd count: a short last vector)."""
    return np.concatenate([np.random.default_rng(seed).random(n), _grid_edges()])


def _cython_scores(u):
    return _market.sample_scores(np.ascontiguousarray(u), np.empty(u.shape))


def _numba_scores(u):
    return S.scores_from_uniforms_numba(np.ascontiguousarray(u), np.empty(u.shape))


def test_scores_cython_and_numba_identical_bits():
    u = _uniforms()
    got = _cython_scores(u)
    assert_same_bits(got, _numba_scores(u))


def test_scores_match_scipy_reference():
    u = _uniforms()
    got = _cython_scores(u)
    ref = S.scores_from_uniforms_numpy(u)
    np.testing.assert_allclose(got, ref, rtol=NDTRI_RTOL, atol=0.0)


def test_scores_finite_bounded_and_antisymmetric():
    """The cell midpoints (k + 1/2) 2^-53 are never 0 or 1, and k and 2^53 - 1 - k are
    mirror images: their scores are exact negatives (q and r = 1/2 - |q| are exact)."""
    u = _uniforms()
    z = _cython_scores(u)
    assert np.all(np.isfinite(z)) and np.abs(z).max() < MAX_SCORE
    mirror = (1.0 - u) - 2.0 ** -53            # exact: (2^53 - 1 - k) 2^-53
    assert_same_bits(_cython_scores(mirror), -z)
    assert _cython_scores(np.array([0.0]))[0] == pytest.approx(special.ndtri(HALF_CELL), rel=NDTRI_RTOL)


def test_scores_in_place_and_any_shape():
    u = np.random.default_rng(5).random((37, 17))
    want = _cython_scores(u.ravel()).reshape(u.shape)
    for f in (_market.sample_scores, S.scores_from_uniforms_numba):
        v = u.copy()
        assert f(v, v) is v
        assert_same_bits(v, want)


@settings(max_examples=200, deadline=None)
@given(k=st.integers(0, N53 - 1))
def test_scores_property_on_the_grid(k):
    u = np.array([k / N53])                   # exact: every k < 2^53 is a double
    z = _cython_scores(u)[0]
    assert z == _numba_scores(u)[0]
    ref = special.ndtri(u[0] + HALF_CELL) if u[0] < 0.5 else -special.ndtri((1.0 - u[0]) - HALF_CELL)
    assert z == pytest.approx(ref, rel=NDTRI_RTOL, abs=0.0)


def test_vector_ndtri_matches_scipy_and_numba_twin():
    """The vector AS 241 on probabilities (tails to 5e-324 and 1 - 1e-16, edge cases):
    the same bits as the numba loop and the scalar ``_ndtri``, within NDTRI_RTOL of SciPy."""
    p = np.concatenate([_probabilities(), [0.0, 1.0, -0.5, 2.0, np.inf, -np.inf, np.nan]])
    got = _market._ndtri(p, np.empty_like(p))
    assert_same_bits(got, S.ndtri_numba(p, np.empty_like(p)))
    assert_same_bits(got[::97], np.array([S._ndtri(float(v)) for v in p[::97]]))
    np.testing.assert_allclose(got, special.ndtri(p), rtol=NDTRI_RTOL, atol=0.0)


def test_ndtri_nan_sign_bits_agree_on_every_path():
    """p outside [0, 1]: the scalar ``_ndtri``, the numba loop and the C copy give the
    same NaN, sign bit included (C's tail negates its NaN below 1/2; the scalar used to
    return a positive one from a branch), and -inf/+inf at 0 and 1; raw bits, no
    canonicalisation."""
    p = np.array([-0.5, -1e-300, -np.inf, 2.0, 1.0 + 1e-15, np.inf, 0.0, 1.0, 0.5])
    c = _market._ndtri(p, np.empty_like(p))
    scalar = np.array([S._ndtri(float(v)) for v in p])
    assert np.array_equal(c.view(np.int64), S.ndtri_numba(p, np.empty_like(p)).view(np.int64))
    assert np.array_equal(c.view(np.int64), scalar.view(np.int64))
    assert np.signbit(scalar[0]) and np.isnan(scalar[0])


def test_same_bits_helper_tells_zeros_apart_and_identifies_nans():
    assert_same_bits(np.array([np.nan, 1.0]), np.array([-np.nan, 1.0]))
    with pytest.raises(AssertionError):
        assert_same_bits(np.array([0.0]), np.array([-0.0]))
    with pytest.raises(AssertionError):
        assert_same_bits(np.array([np.nan]), np.array([np.inf]))


_CHILD = r"""
import json, sys
import numpy as np
sys.path.insert(0, {root!r})
from engine._ext import _market
from tests.test_market_sample import _uniforms, _bits
from tests.test_market_ndtri import _probabilities
u = _uniforms(seed=9, n=20_011)
p = np.concatenate([_probabilities(), [0.0, 1.0, -0.5, 2.0, np.inf]])
z = _market.sample_scores(u, np.empty_like(u))
q = _market._ndtri(p, np.empty_like(p))
from tests.test_market_sample import _transform_case
zz, uu, args = _transform_case(1999)
x = _market.sample_transform(zz, uu, args[0], np.full((zz.shape[0], 45), -1.0), *args[1:])
from tests.test_market_sample import _copula_case
zc, cc, fc = _copula_case(1001)
_market.sample_correlate(zc, cc, fc)
print(json.dumps({{"isa": _market.simd_isa(), "scores": z.view(np.int64).tolist(),
                  "ndtri": _bits(q).tolist(), "transform": _bits(x).tolist(),
                  "copula": zc.view(np.int64).tolist()}}))
"""


def test_every_instruction_set_copy_gives_identical_scores():
    best = run_copy(_CHILD, None)
    assert best["isa"] == _market.simd_isa()
    u = _uniforms(seed=9, n=20_011)
    assert best["scores"] == _numba_scores(u).view(np.int64).tolist()
    zz, uu, args = _transform_case(1999)
    x = _numba_transform(zz, uu, args)
    assert best["transform"] == _bits(x).tolist()
    p = np.concatenate([_probabilities(), [0.0, 1.0, -0.5, 2.0, np.inf]])
    assert best["ndtri"] == _bits(S.ndtri_numba(p, np.empty_like(p))).tolist()
    zc, cc, fc = _copula_case(1001)
    S.correlate_numba(zc, cc, fc)
    assert best["copula"] == zc.view(np.int64).tolist()
    seen = {best["isa"]}
    for isa in ("avx2", "baseline"):
        got = run_copy(_CHILD, isa)
        seen.add(got["isa"])
        assert got["scores"] == best["scores"], got["isa"]
        assert got["ndtri"] == best["ndtri"], got["isa"]
        assert got["transform"] == best["transform"], got["isa"]
        assert got["copula"] == best["copula"], got["isa"]
    assert "baseline" in seen


ALL_BACKENDS = available_backends()


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_sample_scores_rejects_bad_input(backend):
    """Every backend's ``scores`` checks its arguments (``sample_checks.check_pair``)
    before compiled code runs."""
    scores = get_backend(backend).scores
    with pytest.raises(ValueError, match="u must be a C-contiguous float64"):
        scores(np.zeros(4, np.float32), np.empty(4))
    with pytest.raises(ValueError, match="u must be a C-contiguous float64"):
        scores(np.zeros((4, 4))[:, 1], np.empty(4))
    with pytest.raises(ValueError, match="z must be a C-contiguous float64"):
        scores(np.zeros(4), [0.0] * 4)
    with pytest.raises(ValueError, match="equal sizes, got 4 and 3"):
        scores(np.zeros(4), np.empty(3))
    ro = np.empty(4)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="z must be writeable"):
        scores(np.zeros(4), ro)
    assert scores(np.zeros(0), np.empty(0)).size == 0


@pytest.mark.parametrize("f", [_market.sample_scores, _market._ndtri, S.scores_from_uniforms_numba, S.ndtri_numba]
                         + [get_backend(b).scores for b in ALL_BACKENDS])
def test_partly_overlapping_input_and_output_are_rejected(f):
    """``z`` shifted by one element over ``u`` would read values already written, in an
    order that differs between backends: rejected; the same array (in place) is fine."""
    b = np.random.default_rng(0).random(1001)
    with pytest.raises(ValueError, match="overlap partly"):
        f(b[:-1], b[1:])
    with pytest.raises(ValueError, match="overlap partly"):
        f(b[1:], b[:-1])
    f(b[:500].reshape(20, 25), b[:500])         # the same memory, another shape: in place
    c = b.copy()
    f(c[:500], c[500:1000])                     # disjoint halves of one buffer


@pytest.mark.parametrize("seed", [0, 1])
def test_scores_are_standard_normal_ks(seed):
    """KS against N(0, 1) at fixed seeds (2e5 scores from one stream)."""
    rng = np.random.default_rng(seed)
    z = _cython_scores(rng.random(200_000))
    assert stats.kstest(z, "norm").pvalue > 0.01


def test_model_sampler_identical_on_both_backends():
    """``MarketModel.sample_inputs`` with each backend's sampling kernels: same bits."""
    from engine.market.scenario import load_scenario
    m = load_scenario("default").build()
    xs = []
    for be in ("numba", "cython"):
        rng, rng_u = np.random.default_rng(4), np.random.default_rng(5)
        b = get_backend(be)
        xs.append(m.sample_inputs(rng, 3001, rng_uniform=rng_u, scores=b.scores, transform=b.transform,
                                  correlate_fn=b.correlate))
    assert_same_bits(xs[0], xs[1])


# -- inverse transforms ---------------------------------------------------------------------

#: one column per case: (code, distribution); the parameter rows are the model's
TRANSFORM_CASES = [
    (S._FAST_FIXED, D.fixed(7.5)),
    (S._FAST_NORMAL, D.normal(2.0, 0.5)),
    (S._FAST_LOGNORMAL, D.lognormal(0.3, 0.7)),
    (S._FAST_LOGNORMAL, D.lognormal_ci(1e9, 1e13)),
    (S._FAST_UNIFORM, D.uniform(1.0, 4.0)),
    (S._FAST_TRIANGULAR, D.triangular(0.0, 1.0, 5.0)),
    (S._FAST_TRIANGULAR, D.triangular(0.0, 0.0, 5.0)),      # mode at lo
    (S._FAST_U_UNIFORM, D.uniform(-1.0, 4.0)),
    (S._FAST_U_TRIANGULAR, D.triangular(0.1, 0.6, 0.7)),
    (S._FAST_U_TRIANGULAR, D.triangular(0.1, 0.7, 0.7)),    # mode at hi
    (S._FAST_TRUNC_LOGNORMAL, D.truncated(D.lognormal_ci(5.0, 40.0), 1.0, 1.0e4)),
    (S._FAST_TRUNC_LOGNORMAL, D.truncated(D.lognormal_ci(3.0, 30.0), 0.0, 20.0)),
    (S._FAST_TRUNC_NORMAL, D.truncated(D.normal(3.0, 2.0), -np.inf, 1.0)),
    (S._FAST_TRUNC_NORMAL, D.truncated(D.normal(0.0, 1.0), -0.5, 2.0)),
    (S._FAST_U_TRUNC_LOGNORMAL, D.truncated(D.lognormal_ci(5.0, 40.0), 1.0, 1.0e4)),
    (S._FAST_U_TRUNC_LOGNORMAL, D.truncated(D.lognormal_ci(3.0, 30.0), 0.0, 20.0)),       # Phi(a) = 0
    (S._FAST_U_TRUNC_NORMAL, D.truncated(D.normal(3.0, 2.0), 2.5, np.inf)),
    (S._FAST_U_TRUNC_NORMAL, D.truncated(D.normal(0.0, 1.0), -0.5, 2.0)),
]
_U_CODES = S._U_CODES


def _row(d):
    if isinstance(d, D.Fixed):
        return (d.value,)
    if isinstance(d, D.Normal):
        return (d.mean, d.sd)
    if isinstance(d, D.LogNormal):
        return (d.mu, d.sigma)
    if isinstance(d, D.Uniform):
        return (d.lo, d.hi)
    if isinstance(d, D.Triangular):
        return (d.lo, d.mode, d.hi)
    b = d.base
    loc, scale = (b.mean, b.sd) if isinstance(b, D.Normal) else (b.mu, b.sigma)
    return (loc, scale, d._flo, d._fhi - d._flo, d.lo, d.hi)


def _transform_args(cases):
    """(cols, ocols, codes, params) for ``cases``: score and uniform columns numbered in
    order, output columns spread over the 45 inputs."""
    cols, nz, nu = [], 0, 0
    for code, _ in cases:
        if code in _U_CODES:
            cols.append(nu)
            nu += 1
        else:
            cols.append(nz)
            nz += 1
    ocols = (np.arange(len(cases), dtype=np.int64) * 2) % L.N_INPUTS
    assert np.unique(ocols).size == len(cases)
    from engine.market.model import _params_array
    return (np.array(cols, np.int64), ocols, np.array([c for c, _ in cases], np.int64),
            _params_array([_row(d) for _, d in cases])), nz, nu


#: edge rows of every score column and of every uniform column of ``_transform_case``
EDGE_SCORES = [0.0, -40.0, 40.0, -np.inf, np.inf, np.nan]
EDGE_UNIFORMS = [0.0, 1.0 - 2.0 ** -53, 2.0 ** -53, 0.5, 0.5 - 2.0 ** -53, np.nan]
N_EDGE = len(EDGE_SCORES)


def _transform_case(n, seed=8):
    """Scores (normal, with a few huge, infinite and NaN ones) and uniforms (with 0, the
    top of the grid, both sides of 1/2 and NaN) for TRANSFORM_CASES, the edge values in
    the first N_EDGE rows of every column of both streams (column 0 of ``z`` alone would
    reach only the first score code); ``n`` rows (odd: a short last vector)."""
    args, nz, nu = _transform_args(TRANSFORM_CASES)
    rng = np.random.default_rng(seed)
    z = 1.5 * rng.standard_normal((n, nz))
    u = rng.random((n, nu))
    if n >= N_EDGE:
        z[:N_EDGE, :] = np.array(EDGE_SCORES)[:, None]
        u[:N_EDGE, :] = np.array(EDGE_UNIFORMS)[:, None]
    return np.ascontiguousarray(z), np.ascontiguousarray(u), args


def _numba_transform(z, u, args):
    out = np.full((z.shape[0], L.N_INPUTS), -1.0)
    return S.transform_numba(z, u, args[0], out, *args[1:])


def _cython_transform(z, u, args):
    out = np.full((z.shape[0], L.N_INPUTS), -1.0)
    return _market.sample_transform(z, u, args[0], out, *args[1:])


@pytest.mark.parametrize("n", [1, 7, 8, 13, 4099])
def test_transform_cython_and_numba_identical_bits(n):
    z, u, args = _transform_case(n)
    got = _cython_transform(z, u, args)
    assert_same_bits(got, _numba_transform(z, u, args))
    untouched = np.setdiff1d(np.arange(L.N_INPUTS), args[1])
    assert np.all(got[:, untouched] == -1.0)
    if n >= N_EDGE:     # the edge rows reach every transformed column: the NaN row gives NaN
        codes = args[2]
        assert np.all(np.isnan(got[N_EDGE - 1, args[1][codes != S._FAST_FIXED]]))


def test_transform_matches_distributions():
    """Both compiled transforms equal each distribution's own ``from_normal`` (score
    codes) or ``ppf`` (uniform codes) to rounding: 1e-13 relatively, or absolutely 1e-13
    times the sd of a normal base or the width of a bounded support (values near a bound
    of a triangular cancel: hi - sqrt(.) near lo)."""
    z, u, args = _transform_case(5001)
    z, u = np.ascontiguousarray(z[N_EDGE:]), np.ascontiguousarray(u[N_EDGE:])
    got = _cython_transform(z, u, args)
    cols, ocols = args[0], args[1]
    for c, (code, d) in enumerate(TRANSFORM_CASES):
        if code in (S._FAST_U_TRUNC_NORMAL, S._FAST_U_TRUNC_LOGNORMAL):
            want = _truncated_at_midpoint(d, u[:, cols[c]])
        else:
            want = d.ppf(u[:, cols[c]]) if code in _U_CODES else d.from_normal(z[:, cols[c]])
        base = getattr(d, "base", d)
        lo, hi = d.support
        atol = 1e-13 * (base.sd if isinstance(base, D.Normal) else hi - lo if np.isfinite(hi - lo) else 1e-287)
        np.testing.assert_allclose(got[:, ocols[c]], want, rtol=1e-13, atol=atol, err_msg=d.describe())


def _truncated_at_midpoint(d, u):
    """Readable reference of codes 9 and 10: ``Truncated.ppf`` at the midpoint ``u + 2^-54``
    of ``u``'s cell, by SciPy's ``ndtri``; above 1/2 through the complement ``1 - p =
    (1 - F(b)) + w ((1 - u) - 2^-54)``, exact there, where the midpoint is not a double."""
    flo, w = d._flo, d._fhi - d._flo
    p = flo + w * (u + HALF_CELL)
    r = max(0.0, (1.0 - flo) - w) + w * ((1.0 - u) - HALF_CELL)
    with np.errstate(invalid="ignore", divide="ignore"):
        x = np.where(p < 0.5, special.ndtri(p), -special.ndtri(r))
    b = d.base
    v = b.mean + b.sd * x if isinstance(b, D.Normal) else np.exp(b.mu + b.sigma * x)
    return np.clip(v, d.lo, d.hi)


#: truncated inputs sampled from a uniform variate, with bounds at -inf, 0 (lognormal:
#: F(a) = 0) and +inf (F(b) = 1)
_U_TRUNCATED = [
    (S._FAST_U_TRUNC_NORMAL, D.truncated(D.normal(3.0, 2.0), -np.inf, 1.0)),
    (S._FAST_U_TRUNC_NORMAL, D.truncated(D.normal(3.0, 2.0), 2.5, np.inf)),
    (S._FAST_U_TRUNC_NORMAL, D.truncated(D.normal(0.0, 1.0), -0.5, 2.0)),
    (S._FAST_U_TRUNC_LOGNORMAL, D.truncated(D.lognormal_ci(3.0, 30.0), 0.0, 20.0)),
    (S._FAST_U_TRUNC_LOGNORMAL, D.truncated(D.lognormal_ci(3.0, 30.0), 10.0, np.inf)),
    (S._FAST_U_TRUNC_LOGNORMAL, D.truncated(D.lognormal_ci(5.0, 40.0), 1.0, 1.0e4)),
]


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_truncated_from_uniform_grid_ends_are_finite_inside_the_support(backend):
    """u = 0 and the top of the grid (1 - 2^-53) map to their cells' midpoints, as the
    scores do: finite values strictly inside an infinite or zero bound (u = 0 used to
    give the bound itself: -inf, or exactly 0 for a lognormal), inside [lo, hi], the same
    bits on every backend, and close to the reference at the midpoint."""
    args, nz, nu = _transform_args(_U_TRUNCATED)
    u = np.repeat(np.array([[0.0], [2.0 ** -53], [0.5 - 2.0 ** -53], [0.5], [1.0 - 2.0 ** -53]]), nu, axis=1)
    z = np.zeros((u.shape[0], nz))
    x = get_backend(backend).transform(z, u, args[0], np.full((u.shape[0], L.N_INPUTS), -1.0), *args[1:])
    assert_same_bits(x, _numba_transform(z, u, args))
    for c, (code, d) in enumerate(_U_TRUNCATED):
        v = x[:, args[1][c]]
        lo, hi = d.support
        assert np.all(np.isfinite(v)), (d.describe(), v)
        assert np.all((v >= lo) & (v <= hi)), (d.describe(), v)
        if lo == -np.inf or d._flo == 0.0:
            assert v[0] > lo, d.describe()
        if hi == np.inf:
            assert v[-1] < hi, d.describe()
        np.testing.assert_allclose(v, _truncated_at_midpoint(d, u[:, args[0][c]]), rtol=1e-13, atol=0.0,
                                   err_msg=d.describe())


@settings(max_examples=60, deadline=None)
@given(lo=st.floats(-1e3, 1e3), w1=st.floats(0.0, 1e3), w2=st.floats(1e-3, 1e3),
       mu=st.floats(-30.0, 30.0), sigma=st.floats(1e-3, 5.0), a=st.floats(-3.0, 2.0), width=st.floats(0.2, 5.0),
       seed=st.integers(0, 2 ** 32 - 1))
def test_transform_identical_bits_property(lo, w1, w2, mu, sigma, a, width, seed):
    """Random parameters inside the declared domains, every code: the same bits."""
    base = D.lognormal(mu, sigma)
    t_lo, t_hi = np.exp(mu + sigma * np.array([a, a + width]))
    cases = [(S._FAST_U_TRIANGULAR, D.triangular(lo, lo + w1, lo + w1 + w2)),
             (S._FAST_TRIANGULAR, D.triangular(lo, lo + w1, lo + w1 + w2)),
             (S._FAST_U_UNIFORM, D.uniform(lo, lo + w2)), (S._FAST_UNIFORM, D.uniform(lo, lo + w2)),
             (S._FAST_LOGNORMAL, base), (S._FAST_NORMAL, D.normal(lo, w2)),
             (S._FAST_TRUNC_LOGNORMAL, D.truncated(base, float(t_lo), float(t_hi))),
             (S._FAST_TRUNC_NORMAL, D.truncated(D.normal(lo, w2), lo + a * w2, lo + (a + width) * w2)),
             (S._FAST_U_TRUNC_LOGNORMAL, D.truncated(base, float(t_lo), float(t_hi))),
             (S._FAST_U_TRUNC_NORMAL, D.truncated(D.normal(lo, w2), lo + a * w2, lo + (a + width) * w2))]
    args, nz, nu = _transform_args(cases)
    rng = np.random.default_rng(seed)
    z = np.ascontiguousarray(2.0 * rng.standard_normal((37, nz)))
    u = rng.random((37, nu))
    assert_same_bits(_cython_transform(z, u, args), _numba_transform(z, u, args))


def test_stream_code_table_is_declared_once():
    """The C copy of the stream-code table (enum MS_* of ext/market_sample_simd.h, which
    the .pyx checks codes against and the C kernel dispatches on) equals the one
    declaration, ``sample_checks``; the numba kernel and the model use that one."""
    from engine.market import model as M
    from engine.market.kernels import sample_checks as C
    names, u_codes, n_params = _market.sample_codes()
    assert names == C.CODES
    assert u_codes == C.U_CODES == (5, 6, 9, 10)
    assert n_params == C.N_PARAMS == S._N_PARAMS
    assert C.U_CODE_MASK == sum(1 << c for c in u_codes)
    for name, code in C.CODES.items():
        assert getattr(S, f"_FAST_{name}") == getattr(M, f"_FAST_{name}", code) == code


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_sample_transform_rejects_bad_input(backend):
    """Every backend's ``transform`` (and the Cython wrapper itself, a second line)
    checks its arguments (``sample_checks.check_transform``) before compiled code runs."""
    z, u, (cols, ocols, codes, params) = _transform_case(9)
    out = np.empty((9, L.N_INPUTS))
    fns = [get_backend(backend).transform] + ([_market.sample_transform] if backend == "cython" else [])

    def call(**kw):
        a = dict(z=z, u=u, cols=cols, out=out, ocols=ocols, codes=codes, params=params)
        a.update(kw)
        for f in fns:
            f(a["z"], a["u"], a["cols"], a["out"], a["ocols"], a["codes"], a["params"])
        return a["out"]

    def rejects(match, **kw):
        for f in fns:
            a = dict(z=z, u=u, cols=cols, out=out, ocols=ocols, codes=codes, params=params)
            a.update(kw)
            with pytest.raises(ValueError, match=match):
                f(a["z"], a["u"], a["cols"], a["out"], a["ocols"], a["codes"], a["params"])

    rejects("out must have shape", out=np.empty((9, 44)))
    rejects("z must be a C-contiguous float64", z=np.asfortranarray(z))
    rejects("codes must be a C-contiguous int64", codes=codes.astype(np.int32))
    rejects("z and u must have 9 rows", u=u[:5])
    bad = codes.copy()
    bad[3] = 11
    rejects(r"codes\[3\] must be in \[0, 10\], got 11", codes=bad)
    bad[3] = -1
    rejects(r"codes\[3\] must be in \[0, 10\], got -1", codes=bad)
    bad = cols.copy()
    bad[1] = z.shape[1]
    rejects(r"cols\[1\] must be in .* reads z\), got", cols=bad)
    j = int(np.flatnonzero(np.isin(codes, S._U_CODES))[0])
    bad = cols.copy()
    bad[j] = u.shape[1]
    rejects(rf"cols\[{j}\] must be in \[0, {u.shape[1] - 1}\] \(code {codes[j]} reads u\), got {u.shape[1]}",
            cols=bad)
    bad = ocols.copy()
    bad[0] = 45
    rejects(r"ocols\[0\] must be in \[0, 44\], got 45", ocols=bad)
    bad = ocols.copy()
    bad[1] = bad[0]
    rejects("ocols must be distinct", ocols=bad)
    rejects("params 6 columns", params=params[:, :5].copy())
    rejects(r"cols, ocols and params must have 18 rows .* got 17, 18", cols=cols[:-1].copy())
    rejects(r"cols, ocols and params must have 18 rows .* got 18, 17", ocols=ocols[:-1].copy())
    ro = np.empty_like(out)
    ro.flags.writeable = False
    rejects("out must be writeable", out=ro)
    big = np.zeros((9, 45 + z.shape[1]))
    rejects("out must be a C-contiguous", out=big[:, :45])
    zbuf = np.zeros((9 * 45 + z.size))
    rejects("out must not share memory with z", out=zbuf[:9 * 45].reshape(9, 45),
            z=zbuf[9 * 45 - 3:-3].reshape(z.shape))
    assert call(z=z[:0], u=u[:0], out=out[:0]).shape == (0, L.N_INPUTS)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_transform_out_of_range_output_column_is_rejected_not_written(backend):
    """The reviewer's case: an output column past ``out``'s 45 (here into the next rows of
    a larger buffer) is an error on every backend, and nothing is written."""
    big = np.zeros((3, 45))
    out = big[:2]
    with pytest.raises(ValueError, match=r"ocols\[0\] must be in \[0, 44\], got 45"):
        get_backend(backend).transform(np.zeros((2, 1)), np.zeros((2, 0)), np.array([0]), out, np.array([45]),
                                       np.array([1]), np.array([[7., 0, 0, 0, 0, 0]]))
    assert not big.any()


def test_forecast_input_matrix_identical_on_both_backends():
    """``sample_values``' inputs (scores, copula, transforms) on both backends: same bits."""
    from engine.market.scenario import load_scenario
    from engine.market.simulate import sample_values
    m = load_scenario("default").build()
    xn, _ = sample_values(m, 3000, seed=2, backend="numba")
    xc, _ = sample_values(m, 3000, seed=2, backend="cython")
    assert_same_bits(xn, xc)


# -- Gaussian copula ------------------------------------------------------------------------

def _copula_case(n, seed=12):
    """Scores (n, 9) and the default scenario's copula factor on 6 of its columns."""
    from engine.market.scenario import load_scenario
    f = np.ascontiguousarray(load_scenario("default").build().correlation.factor)
    z = np.random.default_rng(seed).standard_normal((n, 9))
    return z, np.array([7, 0, 3, 4, 8, 2], np.int64), f


@pytest.mark.parametrize("n", [1, 5, 8, 1001])
def test_copula_cython_and_numba_identical_bits(n):
    z, cols, f = _copula_case(n)
    zc, zn = z.copy(), z.copy()
    assert _market.sample_correlate(zc, cols, f) is zc
    S.correlate_numba(zn, cols, f)
    assert_same_bits(zc, zn)
    other = np.setdiff1d(np.arange(9), cols)
    assert np.array_equal(zc[:, other], z[:, other])
    np.testing.assert_allclose(zc[:, cols], z[:, cols] @ f.T, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_sample_correlate_rejects_bad_input(backend):
    """Every backend's ``correlate`` (and the Cython wrapper itself) checks its arguments
    (``sample_checks.check_correlate``) before compiled code runs."""
    z, cols, f = _copula_case(4)
    fns = [get_backend(backend).correlate] + ([_market.sample_correlate] if backend == "cython" else [])

    def rejects(match, zz, cc, ff):
        for fn in fns:
            with pytest.raises(ValueError, match=match):
                fn(zz, cc, ff)

    rejects(r"factor must have shape \(6, 6\)", z, cols, f[:5, :5].copy())
    rejects(r"cols\[2\] must be in \[0, 8\], got 9", z, np.array([0, 1, 9, 2, 3, 4], np.int64), f)
    rejects(r"cols\[0\] must be in \[0, 1\], got 2", np.zeros((2, 2)), np.array([2, 0]), 2 * np.eye(2))
    rejects("cols must be distinct", z, np.array([0, 1, 1, 2, 3, 4], np.int64), f)
    rejects("z must be a C-contiguous float64", np.asfortranarray(z), cols, f)
    rejects("factor must be a C-contiguous float64", z, cols, f.astype(np.float32))
    rejects("cols must be a C-contiguous int64", z, cols.astype(np.int32), f)
    ro = z.copy()
    ro.flags.writeable = False
    rejects("z must be writeable", ro, cols, f)
    rejects("at most 64 correlated columns, got 65", np.zeros((2, 70)), np.arange(65, dtype=np.int64), np.eye(65))
    buf = np.zeros(4 * 9 + 36)
    rejects("z must not share memory with", buf[:36].reshape(4, 9), cols, buf[30:66].reshape(6, 6))
