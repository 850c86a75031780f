"""The sampling stage: standard normal scores of the normal stream's uniforms.

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
from engine.market.kernels import get_backend
from engine.market.kernels import sample_kernel as S

from .simd_copies import run_copy
from .test_market_ndtri import NDTRI_RTOL, _probabilities

N53 = 2 ** 53
HALF_CELL = 2.0 ** -54
#: largest |score|: the cells next to 0 and 1 (Phi^-1(2^-54) = -8.29)
MAX_SCORE = 8.3


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
    assert np.array_equal(got.view(np.int64), _numba_scores(u).view(np.int64))


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
    assert np.array_equal(_cython_scores(mirror), -z)
    assert _cython_scores(np.array([0.0]))[0] == pytest.approx(special.ndtri(HALF_CELL), rel=NDTRI_RTOL)


def test_scores_in_place_and_any_shape():
    u = np.random.default_rng(5).random((37, 17))
    want = _cython_scores(u.ravel()).reshape(u.shape)
    for f in (_market.sample_scores, S.scores_from_uniforms_numba):
        v = u.copy()
        assert f(v, v) is v
        assert np.array_equal(v, want)


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
    assert np.array_equal(got, S.ndtri_numba(p, np.empty_like(p)), equal_nan=True)
    assert np.array_equal(got[::97], np.array([S._ndtri(float(v)) for v in p[::97]]), equal_nan=True)
    np.testing.assert_allclose(got, special.ndtri(p), rtol=NDTRI_RTOL, atol=0.0)


_CHILD = r"""
import json, sys
import numpy as np
sys.path.insert(0, {root!r})
from engine._ext import _market
from tests.test_market_sample import _uniforms
from tests.test_market_ndtri import _probabilities
u = _uniforms(seed=9, n=20_011)
p = np.concatenate([_probabilities(), [0.0, 1.0, -0.5, 2.0, np.inf]])
z = _market.sample_scores(u, np.empty_like(u))
q = _market._ndtri(p, np.empty_like(p))
print(json.dumps({{"isa": _market.simd_isa(), "scores": z.view(np.int64).tolist(),
                  "ndtri": np.nan_to_num(q, nan=7.0).view(np.int64).tolist()}}))
"""


def test_every_instruction_set_copy_gives_identical_scores():
    best = run_copy(_CHILD, None)
    assert best["isa"] == _market.simd_isa()
    u = _uniforms(seed=9, n=20_011)
    assert best["scores"] == _numba_scores(u).view(np.int64).tolist()
    seen = {best["isa"]}
    for isa in ("avx2", "baseline"):
        got = run_copy(_CHILD, isa)
        seen.add(got["isa"])
        assert got["scores"] == best["scores"], got["isa"]
        assert got["ndtri"] == best["ndtri"], got["isa"]
    assert "baseline" in seen


def test_sample_scores_rejects_bad_input():
    with pytest.raises(ValueError, match="u must be a C-contiguous float64"):
        _market.sample_scores(np.zeros(4, np.float32), np.empty(4))
    with pytest.raises(ValueError, match="u must be a C-contiguous float64"):
        _market.sample_scores(np.zeros((4, 4))[:, 1], np.empty(4))
    with pytest.raises(ValueError, match="z must be a C-contiguous float64"):
        _market.sample_scores(np.zeros(4), [0.0] * 4)
    with pytest.raises(ValueError, match="equal sizes, got 4 and 3"):
        _market.sample_scores(np.zeros(4), np.empty(3))
    ro = np.empty(4)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="z must be writeable"):
        _market.sample_scores(np.zeros(4), ro)
    with pytest.raises(ValueError, match="equal sizes"):
        S.scores_from_uniforms_numba(np.zeros(4), np.empty(3))
    assert _market.sample_scores(np.zeros(0), np.empty(0)).size == 0


@pytest.mark.parametrize("seed", [0, 1])
def test_scores_are_standard_normal_ks(seed):
    """KS against N(0, 1) at fixed seeds (2e5 scores from one stream)."""
    rng = np.random.default_rng(seed)
    z = _cython_scores(rng.random(200_000))
    assert stats.kstest(z, "norm").pvalue > 0.01


def test_model_sampler_identical_on_both_backends():
    from engine.market.scenario import load_scenario
    m = load_scenario("default").build()
    xs = []
    for be in ("numba", "cython"):
        rng, rng_u = np.random.default_rng(4), np.random.default_rng(5)
        xs.append(m.sample_inputs(rng, 3001, rng_uniform=rng_u, scores=get_backend(be).scores))
    assert np.array_equal(xs[0], xs[1])
