"""Sampling kernels of the market Monte Carlo, numba scalar twins of
``ext/market_sample_simd.h`` (the Cython backend's), and a readable NumPy reference of
the scores: the inverse normal CDF (AS 241) that turns uniform variates into standard
normal scores, the Gaussian copula and the closed-form inverse transforms of the input
columns.

Design
------
``_ndtri_central_q`` and ``_ndtri_tail`` are Wichura's AS 241 (PPND16) written in
terms of ``q = p - 1/2`` and ``r = min(p, 1 - p)``: the same IEEE operations in the
same order as ``ms_central`` and ``ms_tail`` of the C header, and the tail's log is
``_log``, the scalar twin of the kernels' ``mk_log``, so numba and Cython give the same
bits (no fastmath; the tail is written with selects, as C's, so even the sign bits of
its NaNs agree). ``_ndtri(p)`` is the usual interface (``q = p - 1/2``,
``r = p or 1 - p``); ``scores_from_uniforms_numba`` maps uniforms ``u = k 2^-53``
(``Generator.random``) to the scores of the cell midpoints ``(k + 1/2) 2^-53``,
through ``q = (u - 1/2) + 2^-54`` and ``r = 1/2 - |q|``, which are exact (the midpoint
itself is not a double above 1/2); scores are never infinite and exactly
antisymmetric (``k`` and ``2^53 - 1 - k`` give opposite scores).

The scores loop works on blocks of ``_BLOCK`` values: AS 241's central rational
function for every value (no branch: it vectorises), then the values outside the
centre (15 % of uniform variates) gathered into contiguous buffers and their tails
computed by a loop with selects instead of branches (``_ndtri_tail``), so the
latency of a log and a square root per tail value does not sit on every value's path
and no branch is mispredicted. ``_fast_from_scores`` (transforms) and
``_correlate_columns`` (copula) are the twins of ``ms_transform`` and ``ms_correlate``.

References
----------
Wichura, M. J. (1988). Algorithm AS 241: The percentage points of the normal
distribution. *Applied Statistics* 37(3), 477-484.
Vose, D. (2008). *Risk Analysis: A Quantitative Guide*, 3rd ed. Wiley (triangular
inverse CDF).
Devroye, L. (1986). *Non-Uniform Random Variate Generation*. Springer, sec. II.2
(inversion).
Johnson, N. L., Kotz, S. and Balakrishnan, N. (1994). *Continuous Univariate
Distributions*, vol. 1, 2nd ed. Wiley, sec. 10.1 (truncated normal).
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np
from scipy import special

from .numba_kernel import _exp, _log
from .sample_checks import CODES, N_CODES, N_PARAMS, U_CODE_MASK, U_CODES, check_correlate, check_pair, check_transform

__all__ = ["HALF_CELL", "correlate_numba", "ndtri_numba", "scores_from_uniforms_numba", "scores_from_uniforms_numpy",
           "transform_numba"]

#: half the spacing of ``Generator.random``'s grid (``k 2^-53``): the offset to the cell midpoint
HALF_CELL = 2.0 ** -54

# Wichura (1988), Algorithm AS 241 (PPND16): numerators and denominators of the
# rational approximations, lowest degree first, as printed in the paper.
_AS241_A = (3.3871328727963666080e0, 1.3314166789178437745e+2, 1.9715909503065514427e+3,
            1.3731693765509461125e+4, 4.5921953931549871457e+4, 6.7265770927008700853e+4,
            3.3430575583588128105e+4, 2.5090809287301226727e+3)
_AS241_B = (1.0, 4.2313330701600911252e+1, 6.8718700749205790830e+2, 5.3941960214247511077e+3,
            2.1213794301586595867e+4, 3.9307895800092710610e+4, 2.8729085735721942674e+4,
            5.2264952788528545610e+3)
_AS241_C = (1.42343711074968357734e0, 4.63033784615654529590e0, 5.76949722146069140550e0,
            3.64784832476320460504e0, 1.27045825245236838258e0, 2.41780725177450611770e-1,
            2.27238449892691845833e-2, 7.74545014278341407640e-4)
_AS241_D = (1.0, 2.05319162663775882187e0, 1.67638483018380384940e0, 6.89767334985100004550e-1,
            1.48103976427480074590e-1, 1.51986665636164571966e-2, 5.47593808499534494600e-4,
            1.05075007164441684324e-9)
_AS241_E = (6.65790464350110377720e0, 5.46378491116411436990e0, 1.78482653991729133580e0,
            2.96560571828504891230e-1, 2.65321895265761230930e-2, 1.24266094738807843860e-3,
            2.71155556874348757815e-5, 2.01033439929228813265e-7)
_AS241_F = (1.0, 5.99832206555887937690e-1, 1.36929880922735805310e-1, 1.48753612908506148525e-2,
            7.86869131145613259100e-4, 1.84631831751005468180e-5, 1.42151175831644588870e-7,
            2.04426310338993978564e-15)


@nb.njit(nogil=True, cache=True, inline="always")
def _horner8(c, r):
    """``c[0] + c[1] r + ... + c[7] r^7`` in Horner's order (AS 241's)."""
    return (((((((c[7] * r + c[6]) * r + c[5]) * r + c[4]) * r + c[3]) * r + c[2]) * r + c[1]) * r + c[0])


@nb.njit(nogil=True, cache=True, inline="always")
def _ndtri_central_q(q):
    """AS 241's central region, ``Phi^-1(1/2 + q)`` for ``|q| <= 0.425``; no branch."""
    r = 0.180625 - q * q
    return q * _horner8(_AS241_A, r) / _horner8(_AS241_B, r)


@nb.njit(nogil=True, cache=True, inline="always", error_model="numpy")
def _ndtri_tail(q, r):
    """AS 241's tails, ``Phi^-1(1/2 + q)`` for ``|q| > 0.425`` given ``r = min(1/2 + q,
    1/2 - q)``: ``r = 0`` gives -inf or +inf (the sign of ``q``), ``r < 0`` or NaN gives
    NaN (negated too where ``q < 0``, so its sign bit is C's). The log is ``_log`` (the
    kernels' ``mk_log``). Selects instead of branches (both rational functions
    evaluated), so that a loop of it vectorises: the twin of ``ms_tail``, the only tail
    formula of the numba kernels."""
    pos = r > 0.0
    s = math.sqrt(-_log(r if pos else 0.5))
    t = s - 1.6
    xn = _horner8(_AS241_C, t) / _horner8(_AS241_D, t)
    t5 = s - 5.0
    xf = _horner8(_AS241_E, t5) / _horner8(_AS241_F, t5)
    x = xf if s > 5.0 else xn
    edge = math.inf if r == 0.0 else math.nan
    x = x if pos else edge
    return -x if q < 0.0 else x


@nb.njit(nogil=True, cache=True, inline="always", error_model="numpy")
def _ndtri_qr(q, r):
    """``Phi^-1(1/2 + q)`` given ``r = min(1/2 + q, 1/2 - q)``: the central rational
    function for ``|q| <= 0.425``, else ``_ndtri_tail`` (NaN goes to the tail, as in C)."""
    if abs(q) <= 0.425:
        return _ndtri_central_q(q)
    return _ndtri_tail(q, r)


@nb.njit(nogil=True, cache=True, error_model="numpy")
def _ndtri(p):
    """Inverse of the standard normal CDF, ``Phi^-1(p)``.

    Wichura (1988), Algorithm AS 241 (PPND16, relative accuracy about 1e-16): a
    rational function of degree 7 in ``0.180625 - (p - 1/2)^2`` for ``|p - 1/2| <= 0.425``
    (``_ndtri_central_q``), else of ``sqrt(-log(min(p, 1 - p)))`` (one for values up to 5,
    one beyond), negated below 1/2 (``_ndtri_tail``). ``p`` = 0 and 1 give -inf and +inf,
    ``p`` outside [0, 1] and NaN give NaN (as scipy.special.ndtri). Scalar twin of
    ``ms_ndtri`` (ext/market_sample_simd.h), NaN sign bits included; the log is the
    kernels' ``_log`` (within 2 ulp of libm's), so it equals CPython's
    ``statistics.NormalDist.inv_cdf`` (the same algorithm with libm's log) except in the
    last bits of some tail values; within 2e-15 relatively of scipy.special.ndtri (Cephes)."""
    q = p - 0.5
    return _ndtri_qr(q, p if q < 0.0 else 1.0 - p)


#: values per block of the two-pass loops (the block's buffers stay in L1)
_BLOCK = 256


@nb.njit(nogil=True, cache=True, error_model="numpy", boundscheck=False)
def _scores_loop(u, z, flag):
    """``flag`` 1: ``z[i]`` = score of the uniform ``u[i]`` (cell midpoint); 0:
    ``z[i] = Phi^-1(u[i])``. 1-d arrays; ``z`` may be ``u``. Per block: q and r and the
    central value of every element; the tail elements' q and r gathered into
    contiguous buffers; their tail values by a branch-free loop; scattered back."""
    n = u.shape[0]
    qb = np.empty(_BLOCK)
    rb = np.empty(_BLOCK)
    tq = np.empty(_BLOCK)
    tr = np.empty(_BLOCK)
    ti = np.empty(_BLOCK, np.int64)
    for i0 in range(0, n, _BLOCK):
        m = min(_BLOCK, n - i0)
        if flag:
            for i in range(m):
                q = (u[i0 + i] - 0.5) + HALF_CELL
                qb[i] = q
                rb[i] = 0.5 - abs(q)
        else:
            for i in range(m):
                p = u[i0 + i]
                q = p - 0.5
                qb[i] = q
                rb[i] = p if q < 0.0 else 1.0 - p
        for i in range(m):
            z[i0 + i] = _ndtri_central_q(qb[i])
        nt = 0
        for i in range(m):
            tq[nt] = qb[i]
            tr[nt] = rb[i]
            ti[nt] = i
            nt += not abs(qb[i]) <= 0.425
        for j in range(nt):
            tq[j] = _ndtri_tail(tq[j], tr[j])
        for j in range(nt):
            z[i0 + ti[j]] = tq[j]


def scores_from_uniforms_numba(u: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Standard normal scores of uniforms ``u = k 2^-53`` on [0, 1) (``Generator.random``):
    ``z = Phi^-1((k + 1/2) 2^-53)``, finite, in about [-8.3, 8.3] [1]. ``z`` may be ``u``;
    both C-contiguous float64 of equal size, checked by ``sample_checks.check_pair``.
    Returns ``z``."""
    uf, zf = check_pair(u, z, "u", "z")
    _scores_loop(uf, zf, 1)
    return z


def ndtri_numba(p: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``z = Phi^-1(p)`` elementwise by the two-pass loop (scalar twin of ``ms_ndtri``)."""
    pf, zf = check_pair(p, z, "p", "z")
    _scores_loop(pf, zf, 0)
    return z


def scores_from_uniforms_numpy(u) -> np.ndarray:
    """Readable reference of ``scores_from_uniforms_numba``: ``Phi^-1`` of the cell
    midpoint ``u + 2^-54`` by SciPy's ``ndtri``, through ``1 - (u + 2^-54) =
    (1 - u) - 2^-54`` and the antisymmetry ``Phi^-1(p) = -Phi^-1(1 - p)`` above 1/2,
    where the midpoint is not a double but its complement is."""
    u = np.asarray(u, dtype=np.float64)
    lower = u < 0.5
    with np.errstate(invalid="ignore"):
        return np.where(lower, special.ndtri(u + HALF_CELL), -special.ndtri((1.0 - u) - HALF_CELL))


# -- inverse transforms of the input columns ------------------------------------------------

# the stream codes (declared once, in sample_checks; the names the model uses)
_FAST_FIXED, _FAST_NORMAL, _FAST_LOGNORMAL, _FAST_UNIFORM, _FAST_TRIANGULAR = (
    CODES["FIXED"], CODES["NORMAL"], CODES["LOGNORMAL"], CODES["UNIFORM"], CODES["TRIANGULAR"])
_FAST_U_UNIFORM, _FAST_U_TRIANGULAR = CODES["U_UNIFORM"], CODES["U_TRIANGULAR"]
_FAST_TRUNC_NORMAL, _FAST_TRUNC_LOGNORMAL = CODES["TRUNC_NORMAL"], CODES["TRUNC_LOGNORMAL"]
_FAST_U_TRUNC_NORMAL, _FAST_U_TRUNC_LOGNORMAL = CODES["U_TRUNC_NORMAL"], CODES["U_TRUNC_LOGNORMAL"]
_U_CODES, _N_CODES, _N_PARAMS = U_CODES, N_CODES, N_PARAMS
_SQRT1_2 = 0.7071067811865476

#: Rows per block of ``_fast_from_scores`` (its contiguous column buffers stay in L1).
_ROW_BLOCK = 128


@nb.njit(nogil=True, cache=True, inline="always", error_model="numpy")
def _phi(z):
    """Standard normal CDF ``erfc(-z / sqrt 2) / 2`` (libm's erfc)."""
    return 0.5 * math.erfc(-z * _SQRT1_2)


@nb.njit(nogil=True, cache=True, inline="always", error_model="numpy")
def _triangular_inv(uu, lo, hi, fc, a_l, a_r):
    """Triangular ``ppf(uu)`` (Vose 2008): ``lo + sqrt(uu a_l)`` below ``fc = (mode - lo) /
    (hi - lo)``, else ``hi - sqrt((1 - uu) a_r)``, ``a_l = (hi - lo)(mode - lo)``,
    ``a_r = (hi - lo)(hi - mode)``: the argument is selected first, so one square root."""
    left = uu < fc
    s = math.sqrt(uu * a_l if left else (1.0 - uu) * a_r)
    return lo + s if left else hi - s


@nb.njit(nogil=True, cache=True, error_model="numpy", boundscheck=False)
def _fast_from_scores(z, u, cols, out, ocols, codes, params):
    """Closed-form inverse transforms of the common families, one column at a time.

    Codes 1-4 read a normal score ``z[i, cols[c]]``: normal ``m + s z``; lognormal
    ``exp(mu + s z)``; uniform ``lo + (hi - lo) Phi(z)``; triangular ``ppf(Phi(z))``
    (Vose 2008), with ``Phi(z) = erfc(-z / sqrt 2) / 2``. Codes 5 and 6 (uniform,
    triangular) read a uniform variate ``u[i, cols[c]]`` directly (inverse transform
    without the normal CDF, Devroye 1986 sec. II.2). Code 0 is a fixed value.
    Codes 7 and 8 (normal and lognormal truncated to [lo, hi], normal score ``z``) are
    ``Truncated.ppf``'s formula: ``x = Phi^-1(Phi(a) + (Phi(b) - Phi(a)) Phi(z))``
    (Johnson et al. 1994, sec. 10.1; ``a``, ``b`` the bounds as base-normal scores,
    ``Phi^-1`` by ``_ndtri``, AS 241), then ``m + s x`` or ``exp(mu + s x)``, clipped to
    [lo, hi]; ``params[c]`` = (m or mu, s, Phi(a), Phi(b) - Phi(a), lo, hi). Codes 9 and
    10 are codes 7 and 8 with the midpoint ``m = u + 2^-54`` of the uniform variate's
    cell (as the scores) in place of ``Phi(z)``: ``q = p - 1/2`` from ``p = Phi(a) + w m``
    (``m`` exact below 1/2) and, above 1/2, ``r = 1 - p = (1 - Phi(b)) + w ((1 - u) -
    2^-54)`` (exact complement from 1/2; ``1 - Phi(b) = (1 - Phi(a)) - w`` clamped at 0),
    so ``u = 0`` and the top of the grid give finite values inside the support, never
    the bound itself (-inf, or 0 for a lognormal).
    Scalar twin of ``ms_transform`` (ext/market_sample_simd.h): the same operations in
    the same order (the lognormal's exp is the kernels' ``_exp``, ``mk_exp``'s twin;
    erfc is libm's in both).

    Column by column inside blocks of ``_ROW_BLOCK`` rows: a block of a column is
    copied into a contiguous buffer, transformed there and copied into its output
    column, so each transform loop has one formula, unit stride and no branch, and
    vectorises (the row-major columns are 45 or n_normal doubles apart). The
    lognormal's exp is branch-free, which vectorises where libm's exp is one call per
    value; the triangular inverse selects its square root's argument, then its affine
    form (``_triangular_inv``, one square root). The truncated transforms run in passes
    over the block: p; AS 241's central rational function for every row (vectorises);
    its tails for the rows outside the centre (15 % of them when p is near uniform);
    exp or affine; clip. Short passes keep the latency of erfc, log and the divisions,
    and the cost of a mispredicted branch, from adding up along one long chain per row
    (one fused loop measured twice as slow)."""
    n_all = out.shape[0]
    k = codes.shape[0]
    src = np.empty(_ROW_BLOCK)
    dst = np.empty(_ROW_BLOCK)
    rb = np.empty(_ROW_BLOCK)
    for r0 in range(0, n_all, _ROW_BLOCK):
        m = min(_ROW_BLOCK, n_all - r0)
        for c in range(k):
            code = codes[c]
            p0 = params[c, 0]
            p1 = params[c, 1]
            p2 = params[c, 2]
            oc = ocols[c]
            j = cols[c]
            if code == _FAST_FIXED:
                for i in range(m):
                    out[r0 + i, oc] = p0
                continue
            if (U_CODE_MASK >> code) & 1:
                for i in range(m):
                    src[i] = u[r0 + i, j]
            else:
                for i in range(m):
                    src[i] = z[r0 + i, j]
            if code == _FAST_UNIFORM or code == _FAST_TRIANGULAR:
                for i in range(m):
                    src[i] = _phi(src[i])
            if code == _FAST_U_UNIFORM or code == _FAST_UNIFORM:
                w = p1 - p0
                for i in range(m):
                    dst[i] = p0 + w * src[i]
            elif code == _FAST_U_TRIANGULAR or code == _FAST_TRIANGULAR:
                fc = (p1 - p0) / (p2 - p0)
                a_l = (p2 - p0) * (p1 - p0)
                a_r = (p2 - p0) * (p2 - p1)
                for i in range(m):
                    dst[i] = _triangular_inv(src[i], p0, p2, fc, a_l, a_r)
            elif code == _FAST_NORMAL:
                for i in range(m):
                    dst[i] = p0 + p1 * src[i]
            elif code == _FAST_LOGNORMAL:
                for i in range(m):
                    dst[i] = _exp(p0 + p1 * src[i])
            else:  # truncated: 7, 8, 9, 10
                p3 = params[c, 3]
                lo = params[c, 4]
                hi = params[c, 5]
                if (U_CODE_MASK >> code) & 1:
                    # u's cell midpoint: src <- q = p - 1/2, rb <- r = min(p, 1 - p), p = F(a) + w m
                    fbc = (1.0 - p2) - p3      # 1 - F(b), clamped at 0
                    fbc = fbc if fbc > 0.0 else 0.0
                    for i in range(m):
                        v = src[i]
                        p = p2 + p3 * (v + HALF_CELL)
                        q = p - 0.5
                        src[i] = q
                        rb[i] = p if q < 0.0 else fbc + p3 * ((1.0 - v) - HALF_CELL)
                else:
                    for i in range(m):  # src <- q, rb <- r of p = Phi(a) + (Phi(b) - Phi(a)) Phi(z)
                        p = p2 + p3 * _phi(src[i])
                        q = p - 0.5
                        src[i] = q
                        rb[i] = p if q < 0.0 else 1.0 - p
                for i in range(m):
                    dst[i] = _ndtri_central_q(src[i])
                for i in range(m):
                    if not abs(src[i]) <= 0.425:
                        dst[i] = _ndtri_tail(src[i], rb[i])
                if code == _FAST_TRUNC_LOGNORMAL or code == _FAST_U_TRUNC_LOGNORMAL:
                    for i in range(m):
                        dst[i] = _exp(p0 + p1 * dst[i])
                else:
                    for i in range(m):
                        dst[i] = p0 + p1 * dst[i]
                for i in range(m):
                    v = dst[i]
                    v = lo if v < lo else v
                    dst[i] = hi if v > hi else v
            for i in range(m):
                out[r0 + i, oc] = dst[i]


@nb.njit(nogil=True, cache=True)
def _correlate_columns(z, cols, factor, tmp):
    """``z[:, cols] <- z[:, cols] @ factor.T`` row by row in a fixed summation order,
    so the result does not depend on how many rows are passed (unlike BLAS). Scalar
    twin of ``ms_correlate`` (ext/market_sample_simd.h)."""
    n = z.shape[0]
    k = cols.shape[0]
    for i in range(n):
        for a in range(k):
            tmp[a] = z[i, cols[a]]
        for a in range(k):
            acc = 0.0
            for b in range(k):
                acc += factor[a, b] * tmp[b]
            z[i, cols[a]] = acc


def correlate_numba(z, cols, factor):
    """``_correlate_columns`` with its scratch row, after ``sample_checks.check_correlate``."""
    check_correlate(z, cols, factor)
    _correlate_columns(z, cols, factor, np.empty(cols.shape[0]))
    return z


def transform_numba(z, u, cols, out, ocols, codes, params):
    """``_fast_from_scores``, after ``sample_checks.check_transform``. Returns ``out``."""
    check_transform(z, u, cols, out, ocols, codes, params)
    _fast_from_scores(z, u, cols, out, ocols, codes, params)
    return out
