"""The compiled inverse normal CDF (``sample_kernel._ndtri``, Wichura 1988 AS 241) against
scipy.special.ndtri, and the compiled truncated normal / lognormal transforms (codes 7
and 8 of ``sample_kernel._fast_from_scores``) against ``Truncated.from_normal``, the readable
reference."""

import statistics

import numpy as np
from hypothesis import given, settings, strategies as st
from scipy import special

from engine.market import distributions as D
from engine.market import model as M
from engine.market.kernels import sample_kernel as S

#: AS 241 and scipy's ndtri (Cephes) each err by a few ulp; over 10^6 points spread
#: over (0, 1), the two differ by at most 1.05e-15 relatively (about 5 ulp).
NDTRI_RTOL = 2e-15


def _ndtri(p):
    return np.array([S._ndtri(float(v)) for v in np.atleast_1d(p)])


def _probabilities():
    rng = np.random.default_rng(7)
    return np.concatenate([
        rng.random(20_000),                                   # body
        10.0 ** rng.uniform(-320.0, -1.0, 20_000),            # lower tail, subnormals included
        1.0 - 10.0 ** rng.uniform(-16.0, -1.0, 20_000),       # upper tail, up to 1 - 1e-16
        [1e-300, 1e-20, 1.0 - 1e-16, np.nextafter(1.0, 0.0), 5e-324, np.finfo(float).tiny,
         0.075, 0.925, np.nextafter(0.075, 0.0), np.nextafter(0.925, 1.0), 0.5, 0.25, 0.75],
    ])


def test_ndtri_matches_scipy():
    p = _probabilities()
    np.testing.assert_allclose(_ndtri(p), special.ndtri(p), rtol=NDTRI_RTOL, atol=0.0)


#: the tails' log is the kernels' ``_log`` (mk_log's twin, within 2 ulp of libm's), so tail
#: values may differ from CPython's (libm log) in the last bits: at most 5 ulp measured
#: over 9e5 tail probabilities (0.95 % of them differ at all)
TAIL_ULP_VS_CPYTHON = 8


def test_ndtri_is_cpythons_as241():
    """CPython's ``statistics.NormalDist.inv_cdf`` is AS 241 too: equal bit for bit in the
    central region (a check of the transcribed coefficients), and within
    ``TAIL_ULP_VS_CPYTHON`` ulp in the tails, where the log differs."""
    nd = statistics.NormalDist()
    p = _probabilities()[::20]
    p = p[(p > 0.0) & (p < 1.0)]
    got = _ndtri(p)
    ref = np.array([nd.inv_cdf(float(v)) for v in p])
    central = np.abs(p - 0.5) <= 0.425
    assert central.sum() > 500
    assert np.array_equal(got[central], ref[central])
    ulps = np.abs(got - ref) / np.spacing(np.abs(ref))
    assert ulps.max() <= TAIL_ULP_VS_CPYTHON
    assert np.mean(ulps[~central] == 0) > 0.9


def test_ndtri_edges_and_symmetry():
    assert S._ndtri(0.0) == -np.inf
    assert S._ndtri(1.0) == np.inf
    assert S._ndtri(0.5) == 0.0
    for bad in (-1e-300, -0.5, 1.0 + 1e-15, 2.0, np.inf, -np.inf, np.nan):
        assert np.isnan(S._ndtri(bad)), bad
    assert np.isnan(special.ndtri(np.array([-0.5, 2.0, np.nan]))).all()  # the same convention
    # exact symmetry where 1 - p is exact
    p = np.random.default_rng(1).uniform(0.5, 1.0, 5000)
    assert np.array_equal(_ndtri(p), -_ndtri(1.0 - p))


TRUNCATED = [  # (code, distribution)
    (S._FAST_TRUNC_LOGNORMAL, D.truncated(D.lognormal_ci(5.0, 40.0, name="ln"), 1.0, 1.0e4)),  # default scenario
    (S._FAST_TRUNC_LOGNORMAL, D.truncated(D.lognormal_ci(3.0, 30.0, name="ln"), 4.0, 20.0)),
    (S._FAST_TRUNC_LOGNORMAL, D.truncated(D.lognormal_ci(3.0, 30.0, name="ln"), 0.0, 20.0)),    # Phi(a) = 0
    (S._FAST_TRUNC_LOGNORMAL, D.truncated(D.lognormal_ci(3.0, 30.0, name="ln"), 10.0, np.inf)),
    (S._FAST_TRUNC_NORMAL, D.truncated(D.normal(0.0, 1.0, name="n"), -0.5, 2.0)),
    (S._FAST_TRUNC_NORMAL, D.truncated(D.normal(3.0, 2.0, name="n"), -np.inf, 1.0)),
    (S._FAST_TRUNC_NORMAL, D.truncated(D.normal(3.0, 2.0, name="n"), 2.5, np.inf)),
]


def _scale(d):
    """Absolute tolerance unit: a normal's values cross zero, so compare those to its sd."""
    return d.base.sd if isinstance(d.base, D.Normal) else 0.0


def _truncated(z, cases):
    """Columns of ``_fast_from_scores`` for ``cases`` (the model's parameter rows)."""
    rows, codes = [], []
    for code, d in cases:
        b = d.base
        loc, scale = (b.mean, b.sd) if isinstance(b, D.Normal) else (b.mu, b.sigma)
        rows.append((loc, scale, d._flo, d._fhi - d._flo, d.lo, d.hi))
        codes.append(code)
    k = len(cases)
    out = np.empty((z.shape[0], k))
    S._fast_from_scores(np.ascontiguousarray(z), np.zeros((z.shape[0], 1)), np.arange(k, dtype=np.int64), out,
                        np.arange(k, dtype=np.int64), np.array(codes, np.int64), M._params_array(rows))
    return out


def test_truncated_matches_reference():
    """Equal to ``Truncated.from_normal`` within 1e-13 relatively (a normal base: or
    1e-13 sd absolutely) over 2e5 normal scores; the formula is the reference's, so the
    two differ only by the last bits of erfc, ndtri and exp (largest relative difference
    seen on the default scenario's two inputs over 4e6 draws: 2.0e-14, near z = 3)."""
    z = np.random.default_rng(11).standard_normal((200_000, len(TRUNCATED)))
    got = _truncated(z, TRUNCATED)
    for c, (_, d) in enumerate(TRUNCATED):
        np.testing.assert_allclose(got[:, c], d.from_normal(z[:, c]), rtol=1e-13, atol=1e-13 * _scale(d),
                                   err_msg=d.describe())


def test_truncated_stays_inside_bounds():
    z = np.concatenate([np.linspace(-40.0, 40.0, 4001), [-np.inf, np.inf, -1e300, 1e300, 0.0]])
    zz = np.repeat(z[:, None], len(TRUNCATED), axis=1)
    got = _truncated(zz, TRUNCATED)
    for c, (_, d) in enumerate(TRUNCATED):
        x = got[:, c]
        assert np.all((x >= d.lo) & (x <= d.hi)), d.describe()
        # the same infinities as the reference (beyond |z| = 37.5 scipy's ndtr underflows
        # to 0 where libm's erfc still returns a subnormal)
        near = np.abs(z) <= 37.0
        assert np.array_equal(np.isfinite(x[near]), np.isfinite(d.from_normal(z[near]))), d.describe()


@settings(max_examples=60, deadline=None)
@given(lo=st.floats(1e-3, 1e3), ratio=st.floats(1.5, 1e3), a=st.floats(-3.0, 2.0), width=st.floats(0.2, 5.0),
       lognormal=st.booleans())
def test_truncated_matches_reference_property(lo, ratio, a, width, lognormal):
    """Any lognormal (90 % CI [lo, lo * ratio]) or normal base, truncated to [a, a + width]
    in base-normal scores (the bounds converted back to values)."""
    if lognormal:
        base = D.lognormal_ci(lo, lo * ratio, name="x")
        t_lo, t_hi = np.exp(base.mu + base.sigma * np.array([a, a + width]))
        code = S._FAST_TRUNC_LOGNORMAL
    else:
        base = D.normal(lo, lo * ratio * 0.1, name="x")
        t_lo, t_hi = base.mean + base.sd * np.array([a, a + width])
        code = S._FAST_TRUNC_NORMAL
    d = D.truncated(base, float(t_lo), float(t_hi))
    z = np.random.default_rng(3).standard_normal((2000, 1))
    got = _truncated(z, [(code, d)])[:, 0]
    np.testing.assert_allclose(got, d.from_normal(z[:, 0]), rtol=1e-13, atol=1e-13 * _scale(d))
    assert np.all((got >= d.lo) & (got <= d.hi))


def test_default_model_samples_truncated_inputs_compiled():
    """The default scenario's truncated lognormals take the compiled path (no slow stream),
    from a uniform variate (they are not correlated)."""
    from engine.market.scenario import load_scenario
    m = load_scenario("default").build()
    assert m._slow_streams == []
    codes = m._streams[2]
    assert np.count_nonzero(codes == S._FAST_U_TRUNC_LOGNORMAL) == 2
