"""numba backend of the per-draw market model.

Design
------
One scalar function, ``_draw``, computes every output of one draw for all years in
one pass (the formulas of ``reference.market_values_numpy``, in the same order).
Its exp, log, pow and 1/sqrt are the scalar twins of the Cython kernel's vector
functions (``ext/market_simd_body.h``: ``_exp``, ``_log``, ``_pow_pos``, ``_rsqrt``
here, the same IEEE operations in the same order), so the two compiled backends give
bit-identical values (``docs/reproducibility.md``; tests/test_market_simd.py).
Two loops call it:

* ``market_values_numba`` writes per-draw outputs (``prange`` over draws; each
  draw is independent, so the result does not depend on the thread count);
* ``market_summaries_numba`` is the fused streaming kernel: for sub-batches of
  ``_SUB`` draws it writes the outputs series-major into a small buffer, computes
  every series' bin indices in loops without a carried dependency (they vectorise),
  noting per series how many values are clamped or non-finite and the lowest and
  highest bin (``span``), then counts. Series without such a value (the usual case)
  are counted four at a time: four running sums, each still adding its series' draws
  in draw order, and four histogram rows, so neither the add latency nor repeated
  increments of one bin serialise the loop; a series with a clamped or non-finite
  value takes an exact per-value path. The counters may be int64 or uint16 (the
  driver's staging counters, ``summaries.Accumulator``). It is serial and ``nogil``:
  the driver runs one call per chunk on its own thread with its own accumulators.

No ``fastmath`` (it would allow reassociation and break bit-reproducibility).
"""
from __future__ import annotations

import numba as nb
import numpy as np
from numba.core import types
from numba.extending import intrinsic

from . import layout as L

__all__ = ["market_values_numba", "market_summaries_numba", "set_threads"]

_S = L.SECONDS_PER_YEAR
_DAY = L.SECONDS_PER_DAY
_JKWH = L.JOULES_PER_KWH
_NO = L.N_OUTPUTS
_SHIFT = np.uint64(L.HIST_SHIFT)
_MASK = np.uint64(L.ABS_MASK)
_KLO = L.HIST_KEY_LO
_KHI = L.HIST_KEY_HI
_HALF = L.HIST_HALF
_ZERO = L.HIST_ZERO


@intrinsic
def _bits(typingctx, x):
    """The IEEE-754 bits of a float64 as an int64 (a bit cast, no conversion)."""
    if isinstance(x, types.Float) and x.bitwidth == 64:
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], context.get_value_type(types.int64))
        return types.int64(types.float64), codegen
    return None


@intrinsic
def _from_bits(typingctx, i):
    """The float64 whose IEEE-754 bits are the int64 ``i`` (a bit cast)."""
    if isinstance(i, types.Integer) and i.bitwidth == 64:
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], context.get_value_type(types.float64))
        return types.float64(types.int64), codegen
    return None


_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e+00
_ROUND_C = 6755399441055744.0          # 1.5 * 2^52
_ROUND_C_BITS = 0x4338000000000000     # its bits
_E2, _E3, _E4, _E5, _E6, _E7 = 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040
_E8, _E9, _E10, _E11 = 1.0 / 40320, 1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800
_E12, _E13 = 1.0 / 479001600, 1.0 / 6227020800.0
_LG1, _LG2, _LG3 = 6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01
_LG4, _LG5, _LG6 = 2.222219843214978396e-01, 1.818357216161805012e-01, 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01
_INF = np.inf


@nb.njit(inline="always", nogil=True, cache=True, error_model="numpy")
def _exp(x):
    """exp(x): scalar twin of ``mk_exp`` in ext/market_simd_body.h (Cody-Waite
    reduction and the two-part ln2 of fdlibm's e_exp.c, Taylor series of expm1 to r^13
    by Estrin's scheme, 2^k in two factors; Muller, "Elementary Functions", ch. 11).
    Within 2 ulp of numpy.exp."""
    xc = 710.0 if x > 710.0 else x
    xc = -746.0 if xc < -746.0 else xc
    bk = xc * _INV_LN2 + _ROUND_C
    k = bk - _ROUND_C
    r = (xc - k * _LN2_HI) - k * _LN2_LO
    r2 = r * r
    r4 = r2 * r2
    a0 = _E2 + _E3 * r
    a1 = _E4 + _E5 * r
    a2 = _E6 + _E7 * r
    a3 = _E8 + _E9 * r
    a4 = _E10 + _E11 * r
    a5 = _E12 + _E13 * r
    b0 = a0 + a1 * r2
    b1 = a2 + a3 * r2
    b2 = a4 + a5 * r2
    q = b0 + r4 * (b1 + r4 * b2)
    e = 1.0 + (r + r2 * q)
    kb = _bits(bk) - _ROUND_C_BITS
    k1 = kb >> 1
    s1 = _from_bits((k1 + 1023) << 52)
    s2 = _from_bits((kb - k1 + 1023) << 52)
    y = (e * s1) * s2
    return x if x != x else y


@nb.njit(inline="always", nogil=True, cache=True, error_model="numpy")
def _log(x):
    """log(x): scalar twin of ``mk_log`` (fdlibm 5.3 e_log.c: x = 2^k m,
    sqrt(2)/2 <= m < sqrt(2), s = f / (2 + f), minimax Lg1..Lg7). Within 2 ulp of numpy.log."""
    sub = x < 2.2250738585072014e-308
    xs = x * 18014398509481984.0 if sub else x
    bits = _bits(xs)
    k = (bits >> 52) - 1023 - (54 if sub else 0)
    mbits = (bits & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000
    if mbits > 0x3FF6A09E667F3BCC:
        mbits = mbits - 0x0010000000000000
        k = k + 1
    f = _from_bits(mbits) - 1.0
    dk = float(k)
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    R = t2 + t1
    hfsq = 0.5 * f * f
    y = dk * _LN2_HI - ((hfsq - (s * (hfsq + R) + dk * _LN2_LO)) - f)
    if x == _INF:
        y = x
    if x == 0.0:
        y = -_INF
    if x < 0.0 or x != x:
        y = np.nan
    return y


@nb.njit(inline="always", nogil=True, cache=True, error_model="numpy")
def _pow_pos(q, y):
    """q^y for q > 0 as exp(y log q): scalar twin of ``mk_pow_pos``; y = 0 gives 1."""
    if y == 0.0:
        return 1.0
    return _exp(y * _log(q))


@nb.njit(inline="always", nogil=True, cache=True, error_model="numpy")
def _rsqrt(u):
    """1 / sqrt(u) for u >= 1: scalar twin of ``mk_rsqrt`` (bit-pattern first guess,
    Robertson 2012 after Lomont 2003, then four Newton-Raphson steps; Muller,
    "Elementary Functions", sec. 5.2). Within 2.5 ulp of the exact 1 / sqrt(u)."""
    y = _from_bits(0x5FE6EB50C7B537A9 - (_bits(u) >> 1))
    h = 0.5 * u
    y = y * (1.5 - (h * y) * y)
    y = y * (1.5 - (h * y) * y)
    y = y * (1.5 - (h * y) * y)
    y = y * (1.5 - (h * y) * y)
    return 0.0 if u == _INF else y


@nb.njit(nogil=True, cache=True, error_model="numpy")
def math_array(which, x, out, p):
    """``out[i] = f(x[i])`` for the scalar twins (``which``: 0 exp, 1 rsqrt, 2 log,
    3 pow with exponent ``p``); for the tests against NumPy and the Cython kernel."""
    for i in range(x.shape[0]):
        v = x[i]
        if which == 0:
            out[i] = _exp(v)
        elif which == 1:
            out[i] = _rsqrt(v)
        elif which == 2:
            out[i] = _log(v)
        else:
            out[i] = _pow_pos(v, p)



@nb.njit(inline="always", nogil=True, cache=True, error_model="numpy")
def _draw(x, yp, T, o, base, stride):
    """All outputs of one draw: ``x`` (N_INPUTS,); output ``k`` of year ``t`` goes to
    ``o[base + (k*T + t) * stride]`` (stride 1: one draw's row; stride n: series-major batch)."""
    D0 = x[0]; g1 = x[1]; gdec = x[2]; P0 = x[3]; p1 = x[4]; pdec = x[5]; eps = x[6]
    rs_max = x[7]; rs_mid = x[8]; rs_k = x[9]; rm = x[10]
    as_max = x[11]; as_mid = x[12]; as_k = x[13]; ac = x[14]
    eff = x[15]; util = x[16]; sw = x[17]; hw = x[18]; p2a = x[19]; oth0 = x[20]; othg = x[21]
    runs0 = x[22]; runsg = x[23]; cpr0 = x[24]; cprg = x[25]; cdec = x[26]; ptm = x[27]; tutil = x[28]
    pfac = x[29]; life = x[30]; gprior = x[31]; pue = x[32]; elec = x[33]
    ceiling = x[42]; sdec = x[43]; mk = x[44]
    keep = 1.0 - 1.0 / life
    inv_ceiling = 1.0 / ceiling
    y0 = yp[0, 0]
    er = _exp(-rs_k * (y0 - rs_mid))
    er_step = _exp(-rs_k)
    ea = _exp(-as_k * (y0 - as_mid))
    ea_step = _exp(-as_k)
    mix0 = (1.0 + rs_max / (1.0 + er) * (rm - 1.0)) * (1.0 + as_max / (1.0 + ea) * (ac - 1.0))
    inv_mix0 = 1.0 / mix0
    inv_life_s = 1.0 / (life * _S)
    inv_s_tutil = 1.0 / (_S * tutil)
    energy_cost = pue * elec * (1.0 / _JKWH)
    tps_per_day = p2a * (1.0 / _DAY)
    inv_tpr = 1.0 / (T - 1) if T > 1 else 0.0
    w0 = x[34]; w1 = x[36]; w2 = x[38]; w3 = x[40]
    r0 = _pow_pos(x[35] / w0, inv_tpr)
    r1 = _pow_pos(x[37] / w1, inv_tpr)
    r2 = _pow_pos(x[39] / w2, inv_tpr)
    r3 = _pow_pos(x[41] / w3, inv_tpr)
    B = 1.0; Lam = 0.0
    gstep = g1 - 1.0
    lam = _log(p1)
    swf = 1.0; hwf = 1.0
    sstep = sw - 1.0
    oth = oth0 * yp[0, 2]
    train = runs0 * cpr0 * ptm
    cstep = cprg - 1.0
    cap_inf = 0.0; cap_tr = 0.0; chips = 0.0; power_w = 0.0
    for t in range(T):
        if t > 0:
            B = B * (1.0 + gstep)
            gstep = gstep * gdec
            Lam = Lam + lam
            lam = lam * pdec
            er = er * er_step
            ea = ea * ea_step
            swf = swf * (1.0 + sstep)
            sstep = sstep * sdec
            oth = oth * othg
            train = train * runsg * (1.0 + cstep)
            cstep = cstep * cdec
            w0 = w0 * r0; w1 = w1 * r1; w2 = w2 * r2; w3 = w3 * r3
            if yp[t, 5] > yp[t - 1, 5]:
                hwf = hwf * hw
        mix = (1.0 + rs_max / (1.0 + er) * (rm - 1.0)) * (1.0 + as_max / (1.0 + ea) * (ac - 1.0))
        theta = yp[t, 1] * hwf * eff * util * swf
        inv_theta = 1.0 / theta
        flops = yp[t, 2] * hwf
        inv_flops = 1.0 / flops
        chip_price = yp[t, 3] * pfac
        watts = yp[t, 4]
        cost_s = chip_price * inv_life_s + watts * energy_cost
        cost_mtok = cost_s * p2a * inv_theta * 1e6
        price = P0 * _exp(-Lam)
        cap_price = mk * cost_mtok
        if cap_price < price:
            price = cap_price
        tokens_day = D0 * B * _exp(eps * Lam) * (mix * inv_mix0)
        chips_llm = tokens_day * tps_per_day * inv_theta
        c_inf = chips_llm * flops + oth
        c_tr = train * inv_s_tutil
        if t == 0:
            cap_inf = c_inf / gprior
            cap_tr = c_tr / gprior
            chips = (cap_inf + cap_tr) * inv_flops
            power_w = chips * watts
        ret_inf = cap_inf * keep
        ret_tr = cap_tr * keep
        d_inf = c_inf - ret_inf
        d_tr = c_tr - ret_tr
        # selects written as in ext/market_simd_body.h (a NaN difference gives 0 in both)
        want_inf = d_inf if d_inf > 0.0 else 0.0
        want_tr = d_tr if d_tr > 0.0 else 0.0
        xr = (want_inf + want_tr) * inv_flops * chip_price * inv_ceiling
        f = _rsqrt(1.0 + xr * xr)
        new_inf = want_inf * f
        new_tr = want_tr * f
        cap_inf = ret_inf + new_inf
        cap_tr = ret_tr + new_tr
        use_inf = c_inf if c_inf < cap_inf else cap_inf
        use_tr = c_tr if c_tr < cap_tr else cap_tr
        bought_inf = new_inf * inv_flops
        bought_tr = new_tr * inv_flops
        shipped = bought_inf + bought_tr
        spend_inf = bought_inf * chip_price
        spend_tr = bought_tr * chip_price
        spend = spend_inf + spend_tr
        chips = chips * keep + shipped
        power_w = power_w * keep + shipped * watts
        served = tokens_day * (use_inf / c_inf)
        spend_per_w = spend / (w0 + w1 + w2 + w3)
        o[base + (0 * T + t) * stride] = served
        o[base + (1 * T + t) * stride] = price
        o[base + (2 * T + t) * stride] = cost_mtok
        o[base + (3 * T + t) * stride] = served * 365.25 * price * 1e-6
        o[base + (4 * T + t) * stride] = use_inf
        o[base + (5 * T + t) * stride] = use_tr * (_S * tutil)
        o[base + (6 * T + t) * stride] = use_inf / (use_inf + use_tr)
        o[base + (7 * T + t) * stride] = chips
        o[base + (8 * T + t) * stride] = shipped
        o[base + (9 * T + t) * stride] = power_w * pue * 1e-9
        o[base + (10 * T + t) * stride] = spend_inf
        o[base + (11 * T + t) * stride] = spend_tr
        o[base + (12 * T + t) * stride] = spend
        o[base + (13 * T + t) * stride] = spend_inf / spend
        o[base + (14 * T + t) * stride] = w0 * spend_per_w
        o[base + (15 * T + t) * stride] = w1 * spend_per_w
        o[base + (16 * T + t) * stride] = w2 * spend_per_w
        o[base + (17 * T + t) * stride] = w3 * spend_per_w


@nb.njit(parallel=True, nogil=True, cache=True, error_model="numpy")
def _values(x, yp, out):
    n = x.shape[0]
    T = yp.shape[0]
    for i in nb.prange(n):
        _draw(x[i], yp, T, out[i].reshape(-1), 0, 1)


#: Draws per inner sub-batch of the fused kernel: the series-major output buffer
#: (N_OUTPUTS * T * _SUB doubles, 240 KB for 13 years) stays in L2 while the histogram
#: rows are updated one series at a time (a draw-major update touches 234 histogram rows
#: per draw, each a likely cache miss; measured 3x slower; so was computing bin indices
#: draw-major and counting series-major from a transposed index buffer).
_SUB = 128


@nb.njit(nogil=True, cache=True, error_model="numpy")
def _summaries(x, yp, hist, span, sums, nonfinite, clamped, ev_series, ev_op, ev_threshold, ev_count, buf, bad, idx,
               nrare):
    n = x.shape[0]
    T = yp.shape[0]
    ns = _NO * T
    bits = buf.view(np.uint64)
    ne = ev_series.shape[0]
    bad_draws = 0
    for start in range(0, n, _SUB):
        m_n = min(_SUB, n - start)
        for i in range(m_n):
            _draw(x[start + i], yp, T, buf, i, m_n)
            bad[i] = False
        # bin indices, one series at a time: no loop-carried dependency, vectorises;
        # counts values that are clamped, inf or NaN (exponent field >= that of 2^HIST_EXP_MAX)
        for s in range(ns):
            off = s * m_n
            rare = 0
            lo = span[s, 0]
            hi = span[s, 1]
            for i in range(m_n):
                b = bits[off + i]
                key = np.int64((b & _MASK) >> _SHIFT)
                m = key - _KLO
                j = _ZERO - 1 - m if (b >> np.uint64(63)) else _ZERO + 1 + m
                j = _ZERO if key < _KLO else j
                idx[off + i] = j
                lo = min(lo, j)
                hi = max(hi, j)
                rare += 1 if m >= _HALF else 0
            nrare[s] = rare
            if rare == 0:
                span[s, 0] = lo
                span[s, 1] = hi
        s = 0
        while s < ns:
            if s + 4 <= ns and nrare[s] + nrare[s + 1] + nrare[s + 2] + nrare[s + 3] == 0:
                # common case, four series at once: four independent running sums (each
                # still in draw order) and four histogram rows, so neither the floating-point
                # add latency nor a repeated bin serialises the loop
                o0 = s * m_n
                o1 = o0 + m_n
                o2 = o1 + m_n
                o3 = o2 + m_n
                a0 = sums[s]
                a1 = sums[s + 1]
                a2 = sums[s + 2]
                a3 = sums[s + 3]
                h0 = hist[s]
                h1 = hist[s + 1]
                h2 = hist[s + 2]
                h3 = hist[s + 3]
                for i in range(m_n):
                    a0 += buf[o0 + i]
                    a1 += buf[o1 + i]
                    a2 += buf[o2 + i]
                    a3 += buf[o3 + i]
                    h0[idx[o0 + i]] += 1
                    h1[idx[o1 + i]] += 1
                    h2[idx[o2 + i]] += 1
                    h3[idx[o3 + i]] += 1
                sums[s] = a0
                sums[s + 1] = a1
                sums[s + 2] = a2
                sums[s + 3] = a3
                s += 4
                continue
            off = s * m_n
            h = hist[s]
            acc = sums[s]
            if nrare[s] == 0:
                for i in range(m_n):
                    acc += buf[off + i]
                    h[idx[off + i]] += 1
            else:
                # exact path: skip non-finite values, clamp out-of-range bins
                lo = span[s, 0]
                hi = span[s, 1]
                for i in range(m_n):
                    v = buf[off + i]
                    if not np.isfinite(v):
                        nonfinite[s] += 1
                        bad[i] = True
                        continue
                    acc += v
                    j = idx[off + i]
                    if j > _ZERO + _HALF:
                        j = _ZERO + _HALF
                        clamped[s] += 1
                    elif j < _ZERO - _HALF:
                        j = _ZERO - _HALF
                        clamped[s] += 1
                    h[j] += 1
                    lo = min(lo, j)
                    hi = max(hi, j)
                span[s, 0] = lo
                span[s, 1] = hi
            sums[s] = acc
            s += 1
        for i in range(m_n):
            if bad[i]:
                bad_draws += 1
        for e in range(ne):
            off = ev_series[e] * m_n
            thr = ev_threshold[e]
            c = 0
            if ev_op[e] == 0:
                for i in range(m_n):
                    if buf[off + i] > thr:
                        c += 1
            else:
                for i in range(m_n):
                    if buf[off + i] < thr:
                        c += 1
            ev_count[e] += c
    return bad_draws


def set_threads(n_threads: int) -> None:
    """Set numba's thread count for ``prange`` loops (capped at numba's pool size)."""
    nb.set_num_threads(max(1, min(int(n_threads), nb.config.NUMBA_NUM_THREADS)))


def market_values_numba(x, yp, out, n_threads=1):
    """Per-draw outputs into ``out`` (n, N_OUTPUTS, T); see ``reference.market_values_numpy``."""
    set_threads(n_threads)
    _values(x, yp, out)
    return out


def market_summaries_numba(x, yp, hist, span, sums, nonfinite, clamped, ev_series, ev_op, ev_threshold, ev_count):
    """Fused streaming kernel; returns the number of draws with a non-finite output.
    See ``reference.market_summaries_numpy`` for the arguments."""
    ns = _NO * yp.shape[0]
    buf = np.empty(ns * _SUB)
    bad = np.empty(_SUB, dtype=np.bool_)
    idx = np.empty(ns * _SUB, dtype=np.int64)
    nrare = np.empty(ns, dtype=np.int64)
    return _summaries(x, yp, hist, span, sums, nonfinite, clamped, ev_series, ev_op, ev_threshold, ev_count, buf, bad,
                      idx, nrare)
