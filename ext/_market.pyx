# cython: language_level=3
"""Cython twin of the per-draw market kernel (see engine/market/kernels/reference.py).

Design
------
``_draw`` is one ``noexcept nogil`` scalar function computing every output of a draw
for all years in one pass, in the same operation order as the NumPy reference and
the numba kernel. ``market_values`` loops it with ``prange`` (independent draws, so
results do not depend on the thread count); ``market_summaries`` is the fused
streaming kernel (serial per call; the driver runs calls on worker threads with
their own accumulators). Inputs are validated by the Python layer; this module
only checks shapes. The indices repeat ``engine.market.kernels.layout`` and
``layout()`` returns the names so the tests can check both agree.
"""
import numpy as np
cimport cython
from cython.parallel cimport prange
from libc.math cimport exp, log, pow, sqrt, isfinite
from libc.stdint cimport uint64_t, int64_t, uint16_t
from libc.stdlib cimport malloc, free

DEF N_IN = 45
DEF N_OUT = 18
DEF N_YP = 6
# draws per sub-batch of the fused kernel (series-major buffer stays in L2; see numba_kernel._SUB);
# bin indices first (vectorised), then sums and counts, four series at a time (same split as numba)
DEF SUB = 128

cdef double S_YEAR = 31557600.0
cdef double S_DAY = 86400.0
cdef double J_KWH = 3.6e6
cdef int HIST_MANTISSA_BITS = 7
cdef int64_t KLO = (1023 - 128) << 7
cdef int64_t KHI = (1023 + 128) << 7
cdef int64_t HALF = KHI - KLO
cdef int64_t ZERO = HALF
cdef int SHIFT = 52 - 7
cdef uint64_t ABS_MASK = 0x7FFFFFFFFFFFFFFFULL

_INPUT_NAMES = (
    "tokens_per_day_base", "demand_growth_initial", "demand_growth_decay", "price_per_mtok_base",
    "price_decline_initial", "price_decline_decay", "price_elasticity", "reasoning_share_max",
    "reasoning_midpoint_year", "reasoning_adoption_rate", "reasoning_token_multiplier", "agent_share_max",
    "agent_midpoint_year", "agent_adoption_rate", "agent_calls_per_task", "serving_efficiency",
    "serving_utilisation", "software_gain_per_year", "hardware_gain_per_year", "peak_to_average",
    "other_inference_chips_base", "other_inference_growth", "frontier_runs_base", "frontier_runs_growth",
    "compute_per_run_base", "compute_per_run_growth", "compute_growth_decay", "post_training_multiplier",
    "training_utilisation", "accelerator_price_factor", "useful_life_years", "prior_fleet_growth", "pue",
    "electricity_price_usd_per_kwh", "share_nvidia_start", "share_nvidia_end", "share_amd_start",
    "share_amd_end", "share_hyperscaler_asic_start", "share_hyperscaler_asic_end",
    "share_inference_startups_start", "share_inference_startups_end", "spend_ceiling_usd", "software_gain_decay",
    "price_markup_max")
_YEAR_PARAM_NAMES = ("year", "throughput_tokens_per_s_per_chip", "peak_flops_per_chip",
                     "accelerator_price_usd", "accelerator_power_w", "years_beyond_roadmap")
_OUTPUT_NAMES = (
    "tokens_per_day", "price_per_mtok_usd", "serving_cost_per_mtok_usd", "llm_revenue_usd",
    "inference_compute_flops", "training_compute_flop", "inference_share_compute", "accelerators_installed",
    "accelerators_shipped", "power_gw", "spend_inference_usd", "spend_training_usd", "spend_total_usd",
    "inference_share_spend", "revenue_nvidia_usd", "revenue_amd_usd", "revenue_hyperscaler_asic_usd",
    "revenue_inference_startups_usd")


def layout():
    """(input names, year-parameter names, output names, histogram bins) of this build."""
    return _INPUT_NAMES, _YEAR_PARAM_NAMES, _OUTPUT_NAMES, int(2 * HALF + 1)


cdef inline double _max0(double a) noexcept nogil:
    return a if a > 0.0 else 0.0


cdef inline double _min(double a, double b) noexcept nogil:
    return b if b < a else a


@cython.boundscheck(False)
@cython.wraparound(False)
@cython.cdivision(True)
cdef void _draw(const double* x, const double* yp, int T, double* o, Py_ssize_t stride) noexcept nogil:
    # output k of year t goes to o[(k*T + t) * stride]
    cdef double D0 = x[0], g1 = x[1], gdec = x[2], P0 = x[3], p1 = x[4], pdec = x[5], eps = x[6]
    cdef double rs_max = x[7], rs_mid = x[8], rs_k = x[9], rm = x[10]
    cdef double as_max = x[11], as_mid = x[12], as_k = x[13], ac = x[14]
    cdef double eff = x[15], util = x[16], sw = x[17], hw = x[18], p2a = x[19], oth0 = x[20], othg = x[21]
    cdef double runs0 = x[22], runsg = x[23], cpr0 = x[24], cprg = x[25], cdec = x[26], ptm = x[27]
    cdef double tutil = x[28], pfac = x[29], life = x[30], gprior = x[31], pue = x[32], elec = x[33]
    cdef double ceiling = x[42], sdec = x[43], mk = x[44]
    cdef double keep = 1.0 - 1.0 / life
    cdef double inv_ceiling = 1.0 / ceiling
    cdef double y0 = yp[0]
    cdef double er = exp(-rs_k * (y0 - rs_mid))
    cdef double er_step = exp(-rs_k)
    cdef double ea = exp(-as_k * (y0 - as_mid))
    cdef double ea_step = exp(-as_k)
    cdef double mix0 = (1.0 + rs_max / (1.0 + er) * (rm - 1.0)) * (1.0 + as_max / (1.0 + ea) * (ac - 1.0))
    cdef double inv_mix0 = 1.0 / mix0
    cdef double inv_life_s = 1.0 / (life * S_YEAR)
    cdef double inv_s_tutil = 1.0 / (S_YEAR * tutil)
    cdef double energy_cost = pue * elec * (1.0 / J_KWH)
    cdef double tps_per_day = p2a * (1.0 / S_DAY)
    cdef double inv_tpr = 1.0 / (T - 1) if T > 1 else 0.0
    cdef double w0 = x[34], w1 = x[36], w2 = x[38], w3 = x[40]
    cdef double r0 = pow(x[35] / w0, inv_tpr)
    cdef double r1 = pow(x[37] / w1, inv_tpr)
    cdef double r2 = pow(x[39] / w2, inv_tpr)
    cdef double r3 = pow(x[41] / w3, inv_tpr)
    cdef double B = 1.0, Lam = 0.0
    cdef double gstep = g1 - 1.0
    cdef double lam = log(p1)
    cdef double swf = 1.0, hwf = 1.0
    cdef double sstep = sw - 1.0
    cdef double oth = oth0 * yp[2]
    cdef double train = runs0 * cpr0 * ptm
    cdef double cstep = cprg - 1.0
    cdef double cap_inf = 0.0, cap_tr = 0.0, chips = 0.0, power_w = 0.0
    cdef double mix, tokens_day, price, theta, flops, inv_flops, chip_price, watts, chips_llm
    cdef double c_inf, c_tr, ret_inf, ret_tr, want_inf, want_tr, xr, f, new_inf, new_tr, use_inf, use_tr
    cdef double cost_mtok, cap_price, inv_theta, spend_per_w
    cdef double bought_inf, bought_tr, shipped, spend_inf, spend_tr, spend, cost_s, served
    cdef const double* row
    cdef int t
    for t in range(T):
        row = yp + t * N_YP
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
            w0 = w0 * r0
            w1 = w1 * r1
            w2 = w2 * r2
            w3 = w3 * r3
            if row[5] > yp[(t - 1) * N_YP + 5]:
                hwf = hwf * hw
        mix = (1.0 + rs_max / (1.0 + er) * (rm - 1.0)) * (1.0 + as_max / (1.0 + ea) * (ac - 1.0))
        theta = row[1] * hwf * eff * util * swf
        inv_theta = 1.0 / theta
        flops = row[2] * hwf
        inv_flops = 1.0 / flops
        chip_price = row[3] * pfac
        watts = row[4]
        cost_s = chip_price * inv_life_s + watts * energy_cost
        cost_mtok = cost_s * p2a * inv_theta * 1e6
        price = P0 * exp(-Lam)
        cap_price = mk * cost_mtok
        if cap_price < price:
            price = cap_price
        tokens_day = D0 * B * exp(eps * Lam) * (mix * inv_mix0)
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
        want_inf = _max0(c_inf - ret_inf)
        want_tr = _max0(c_tr - ret_tr)
        xr = (want_inf + want_tr) * inv_flops * chip_price * inv_ceiling
        f = 1.0 / sqrt(1.0 + xr * xr)
        new_inf = want_inf * f
        new_tr = want_tr * f
        cap_inf = ret_inf + new_inf
        cap_tr = ret_tr + new_tr
        use_inf = _min(cap_inf, c_inf)
        use_tr = _min(cap_tr, c_tr)
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
        o[(0 * T + t) * stride] = served
        o[(1 * T + t) * stride] = price
        o[(2 * T + t) * stride] = cost_mtok
        o[(3 * T + t) * stride] = served * 365.25 * price * 1e-6
        o[(4 * T + t) * stride] = use_inf
        o[(5 * T + t) * stride] = use_tr * (S_YEAR * tutil)
        o[(6 * T + t) * stride] = use_inf / (use_inf + use_tr)
        o[(7 * T + t) * stride] = chips
        o[(8 * T + t) * stride] = shipped
        o[(9 * T + t) * stride] = power_w * pue * 1e-9
        o[(10 * T + t) * stride] = spend_inf
        o[(11 * T + t) * stride] = spend_tr
        o[(12 * T + t) * stride] = spend
        o[(13 * T + t) * stride] = spend_inf / spend
        o[(14 * T + t) * stride] = w0 * spend_per_w
        o[(15 * T + t) * stride] = w1 * spend_per_w
        o[(16 * T + t) * stride] = w2 * spend_per_w
        o[(17 * T + t) * stride] = w3 * spend_per_w


def _check(x, yp):
    if x.ndim != 2 or x.shape[1] != N_IN:
        raise ValueError(f"x must have shape (n, {N_IN}), got {x.shape}")
    if yp.ndim != 2 or yp.shape[1] != N_YP or yp.shape[0] < 1:
        raise ValueError(f"yp must have shape (T >= 1, {N_YP}), got {yp.shape}")


@cython.boundscheck(False)
@cython.wraparound(False)
def market_values(const double[:, ::1] x, const double[:, ::1] yp, double[:, :, ::1] out, int n_threads=1):
    """Per-draw outputs into ``out`` (n, N_OUTPUTS, T); ``prange`` over draws."""
    _check(np.asarray(x), np.asarray(yp))
    cdef Py_ssize_t n = x.shape[0], i
    cdef int T = yp.shape[0]
    if out.shape[0] != n or out.shape[1] != N_OUT or out.shape[2] != T:
        raise ValueError(f"out must have shape ({n}, {N_OUT}, {T})")
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    if n == 0:
        return np.asarray(out)
    for i in prange(n, nogil=True, num_threads=n_threads, schedule="static"):
        _draw(&x[i, 0], &yp[0, 0], T, &out[i, 0, 0], 1)
    return np.asarray(out)


ctypedef fused count_t:
    int64_t
    uint16_t


@cython.boundscheck(False)
@cython.wraparound(False)
cdef inline void _count(count_t* h, const int64_t* idx, Py_ssize_t mn) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(mn):
        h[idx[i]] += 1


@cython.boundscheck(False)
@cython.wraparound(False)
def market_summaries(const double[:, ::1] x, const double[:, ::1] yp, count_t[:, ::1] hist, int64_t[:, ::1] span,
                     double[::1] sums, int64_t[::1] nonfinite, int64_t[::1] clamped, const int64_t[::1] ev_series,
                     const int64_t[::1] ev_op, const double[::1] ev_threshold, int64_t[::1] ev_count):
    """Fused streaming kernel; returns the number of draws with a non-finite output.

    ``hist``: int64 or uint16 counters (the caller keeps uint16 ones from overflowing);
    ``span``: (n_series, 2) lowest and highest bin counted, widened in place. See
    ``engine.market.kernels.reference.market_summaries_numpy``."""
    _check(np.asarray(x), np.asarray(yp))
    cdef Py_ssize_t n = x.shape[0], i
    cdef int T = yp.shape[0]
    cdef Py_ssize_t ns = N_OUT * T, s, ne = ev_series.shape[0], e
    if hist.shape[0] != ns or hist.shape[1] != 2 * HALF + 1 or sums.shape[0] != ns or \
            nonfinite.shape[0] != ns or clamped.shape[0] != ns or span.shape[0] != ns or span.shape[1] != 2:
        raise ValueError("accumulator shapes do not match the number of series")
    if ev_op.shape[0] != ne or ev_threshold.shape[0] != ne or ev_count.shape[0] != ne:
        raise ValueError("event arrays must have equal lengths")
    for e in range(ne):
        if ev_series[e] < 0 or ev_series[e] >= ns:
            raise ValueError(f"event series index {ev_series[e]} out of range")
    cdef double* buf = <double*> malloc(ns * SUB * sizeof(double))
    cdef int64_t* idx = <int64_t*> malloc(ns * SUB * sizeof(int64_t))
    cdef int64_t* nrare = <int64_t*> malloc(ns * sizeof(int64_t))
    cdef char* bad = <char*> malloc(SUB * sizeof(char))
    if buf == NULL or bad == NULL or idx == NULL or nrare == NULL:
        free(buf)
        free(idx)
        free(nrare)
        free(bad)
        raise MemoryError()
    cdef uint64_t bits
    cdef int64_t key, m, c, j, rare, lo, hi
    cdef double v, acc, thr, a0, a1, a2, a3
    cdef int64_t bad_draws = 0
    cdef Py_ssize_t start, mn, off, o0, o1, o2, o3
    cdef count_t* h
    cdef count_t* h0
    cdef count_t* h1
    cdef count_t* h2
    cdef count_t* h3
    with nogil:
        for start in range(0, n, SUB):
            mn = SUB if n - start > SUB else n - start
            for i in range(mn):
                _draw(&x[start + i, 0], &yp[0, 0], T, buf + i, mn)
                bad[i] = 0
            # bin indices, one series at a time (no loop-carried dependency); counts values
            # that are clamped, inf or NaN (exponent field >= that of 2^HIST_EXP_MAX)
            for s in range(ns):
                off = s * mn
                rare = 0
                lo = span[s, 0]
                hi = span[s, 1]
                for i in range(mn):
                    bits = (<uint64_t*> &buf[off + i])[0]
                    key = <int64_t> ((bits & ABS_MASK) >> SHIFT)
                    m = key - KLO
                    j = ZERO - 1 - m if (bits >> 63) else ZERO + 1 + m
                    j = ZERO if key < KLO else j
                    idx[off + i] = j
                    lo = j if j < lo else lo
                    hi = j if j > hi else hi
                    rare += m >= HALF
                nrare[s] = rare
                if rare == 0:
                    span[s, 0] = lo
                    span[s, 1] = hi
            s = 0
            while s < ns:
                if s + 4 <= ns and nrare[s] + nrare[s + 1] + nrare[s + 2] + nrare[s + 3] == 0:
                    # four series at once: independent running sums (each in draw order)
                    # and histogram rows (same split as numba_kernel._summaries)
                    o0 = s * mn
                    o1 = o0 + mn
                    o2 = o1 + mn
                    o3 = o2 + mn
                    a0 = sums[s]
                    a1 = sums[s + 1]
                    a2 = sums[s + 2]
                    a3 = sums[s + 3]
                    h0 = &hist[s, 0]
                    h1 = &hist[s + 1, 0]
                    h2 = &hist[s + 2, 0]
                    h3 = &hist[s + 3, 0]
                    for i in range(mn):
                        a0 = a0 + buf[o0 + i]
                        a1 = a1 + buf[o1 + i]
                        a2 = a2 + buf[o2 + i]
                        a3 = a3 + buf[o3 + i]
                        h0[idx[o0 + i]] += 1
                        h1[idx[o1 + i]] += 1
                        h2[idx[o2 + i]] += 1
                        h3[idx[o3 + i]] += 1
                    sums[s] = a0
                    sums[s + 1] = a1
                    sums[s + 2] = a2
                    sums[s + 3] = a3
                    s = s + 4
                    continue
                off = s * mn
                h = &hist[s, 0]
                acc = sums[s]
                if nrare[s] == 0:
                    for i in range(mn):
                        acc = acc + buf[off + i]
                    _count(h, idx + off, mn)
                else:
                    lo = span[s, 0]
                    hi = span[s, 1]
                    for i in range(mn):
                        v = buf[off + i]
                        if not isfinite(v):
                            nonfinite[s] += 1
                            bad[i] = 1
                            continue
                        acc = acc + v
                        j = idx[off + i]
                        if j > ZERO + HALF:
                            j = ZERO + HALF
                            clamped[s] += 1
                        elif j < ZERO - HALF:
                            j = ZERO - HALF
                            clamped[s] += 1
                        h[j] += 1
                        lo = j if j < lo else lo
                        hi = j if j > hi else hi
                    span[s, 0] = lo
                    span[s, 1] = hi
                sums[s] = acc
                s = s + 1
            for i in range(mn):
                if bad[i]:
                    bad_draws += 1
            for e in range(ne):
                off = ev_series[e] * mn
                thr = ev_threshold[e]
                c = 0
                if ev_op[e] == 0:
                    for i in range(mn):
                        if buf[off + i] > thr:
                            c += 1
                else:
                    for i in range(mn):
                        if buf[off + i] < thr:
                            c += 1
                ev_count[e] += c
    free(buf)
    free(idx)
    free(nrare)
    free(bad)
    return bad_draws
