# cython: language_level=3
"""Cython backend of the per-draw market kernel (see engine/market/kernels/reference.py).

Design
------
The model is ``ext/market_simd.h``: the formulas of the NumPy reference, in the
operation order of the numba twin, evaluated eight (AVX-512) or four (AVX2,
baseline) draws at a time with GCC vector extensions, one copy per instruction
set, the best one picked at the first call (``simd_isa()``). Its exp, log, pow and
1/sqrt are branch-free vector functions whose scalar twins the numba kernel uses,
so both compiled backends give the same bits. ``market_values`` runs it with
``prange`` over chunks of draws (independent draws, so results do not depend on the
thread count); ``market_summaries`` is the fused streaming kernel: the C kernel
writes sub-batches of SUB draws series-major into a buffer (stride rounded up to
whole vectors), then bin indices, sums and counts as in the numba twin (serial per
call; the driver runs calls on worker threads with their own accumulators). Inputs
are validated by the Python layer; this module only checks shapes. The indices
repeat ``engine.market.kernels.layout`` and ``layout()`` returns the names so the
tests can check both agree.
"""
import numpy as np
cimport cython
from cython.parallel cimport prange
from libc.math cimport isfinite
from libc.stdint cimport uint64_t, int64_t, int32_t, uint16_t
from libc.stdlib cimport malloc, free

DEF N_IN = 45
DEF N_OUT = 18
DEF N_YP = 6
# draws per sub-batch of the fused kernel (series-major buffer stays in L2; see numba_kernel._SUB);
# bin indices first (vectorised, mk_bins), then sums and counts, four series at a time (same split as numba)
DEF SUB = 128
# draws per call of the C kernel in market_values (per thread chunk)
DEF VCHUNK = 256

# the histogram layout (engine/market/kernels/layout.py) as compiled into the C kernel
cdef extern from "market_simd.h":
    enum:
        HALF "MK_HIST_HALF"
        ZERO "MK_HIST_ZERO"
        HIST_BINS "MK_HIST_BINS"

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
    return _INPUT_NAMES, _YEAR_PARAM_NAMES, _OUTPUT_NAMES, int(HIST_BINS)


cdef extern from "market_simd.h" nogil:
    const char* infercast_isa_name()
    void mk_block(const double* x, int64_t n, const double* yp, int T, double* o, int64_t stride)
    int mk_values(const double* x, int64_t n, const double* yp, int T, double* out)
    int64_t mk_bins(const double* v, int64_t n, int32_t* idx, int64_t* lo, int64_t* hi)
    void mk_math_array(int which, const double* x, double* y, int64_t n, double p)


def simd_isa():
    """Instruction set of the kernel copy this CPU runs (avx512, avx2 or baseline; see ext/market_simd.h)."""
    return infercast_isa_name().decode()


_MATH = {"exp": 0, "rsqrt": 1, "log": 2, "pow": 3}


def _math(str fn, const double[::1] x, double[::1] out, double p=0.0):
    """out[i] = the kernel's vector ``fn`` of x[i] on the copy this CPU runs, for the
    tests against NumPy: ``exp``; ``rsqrt`` (1/sqrt, x >= 1 or NaN); ``log``; ``pow``
    (x[i]**p, x > 0 or NaN)."""
    cdef Py_ssize_t i, n = x.shape[0]
    if fn not in _MATH:
        raise ValueError(f"_math: fn must be one of {tuple(_MATH)}, got {fn!r}")
    if out.shape[0] != n:
        raise ValueError(f"_math: out has {out.shape[0]} elements, x has {n}")
    for i in range(n):
        if fn == "rsqrt" and x[i] < 1.0:
            raise ValueError(f"_math: rsqrt needs x >= 1, got x[{i}] = {x[i]!r}")
        if fn == "pow" and x[i] <= 0.0:
            raise ValueError(f"_math: pow needs x > 0, got x[{i}] = {x[i]!r}")
    if n:
        mk_math_array(_MATH[fn], &x[0], &out[0], n, p)


def _check(x, yp):
    if x.ndim != 2 or x.shape[1] != N_IN:
        raise ValueError(f"x must have shape (n, {N_IN}), got {x.shape}")
    if yp.ndim != 2 or yp.shape[1] != N_YP or yp.shape[0] < 1:
        raise ValueError(f"yp must have shape (T >= 1, {N_YP}), got {yp.shape}")


@cython.boundscheck(False)
@cython.wraparound(False)
def market_values(const double[:, ::1] x, const double[:, ::1] yp, double[:, :, ::1] out, int n_threads=1):
    """Per-draw outputs into ``out`` (n, N_OUTPUTS, T); ``prange`` over chunks of VCHUNK draws."""
    _check(np.asarray(x), np.asarray(yp))
    cdef Py_ssize_t n = x.shape[0], c, nchunks
    cdef int T = yp.shape[0]
    cdef int failed = 0
    if out.shape[0] != n or out.shape[1] != N_OUT or out.shape[2] != T:
        raise ValueError(f"out must have shape ({n}, {N_OUT}, {T})")
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    if n == 0:
        return np.asarray(out)
    nchunks = (n + VCHUNK - 1) // VCHUNK
    for c in prange(nchunks, nogil=True, num_threads=n_threads, schedule="static"):
        if mk_values(&x[c * VCHUNK, 0], min(VCHUNK, n - c * VCHUNK), &yp[0, 0], T,
                     &out[c * VCHUNK, 0, 0]) != 0:
            failed += 1     # a reduction: a failure in any thread is seen (``= 1`` is lastprivate)
    if failed:
        raise MemoryError()
    return np.asarray(out)


ctypedef fused count_t:
    int64_t
    uint16_t


@cython.boundscheck(False)
@cython.wraparound(False)
cdef inline void _count(count_t* h, const int32_t* idx, Py_ssize_t mn) noexcept nogil:
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
    if hist.shape[0] != ns or hist.shape[1] != HIST_BINS or sums.shape[0] != ns or \
            nonfinite.shape[0] != ns or clamped.shape[0] != ns or span.shape[0] != ns or span.shape[1] != 2:
        raise ValueError("accumulator shapes do not match the number of series")
    if ev_op.shape[0] != ne or ev_threshold.shape[0] != ne or ev_count.shape[0] != ne:
        raise ValueError("event arrays must have equal lengths")
    for e in range(ne):
        if ev_series[e] < 0 or ev_series[e] >= ns:
            raise ValueError(f"event series index {ev_series[e]} out of range")
    cdef double* buf = <double*> malloc(ns * SUB * sizeof(double))
    cdef int32_t* idx = <int32_t*> malloc(ns * SUB * sizeof(int32_t))
    cdef int64_t* nrare = <int64_t*> malloc(ns * sizeof(int64_t))
    cdef char* bad = <char*> malloc(SUB * sizeof(char))
    if buf == NULL or bad == NULL or idx == NULL or nrare == NULL:
        free(buf)
        free(idx)
        free(nrare)
        free(bad)
        raise MemoryError()
    cdef int64_t c, j, rare, lo, hi
    cdef double v, acc, thr, a0, a1, a2, a3
    cdef int64_t bad_draws = 0
    cdef Py_ssize_t start, mn, mnp, off, o0, o1, o2, o3
    cdef count_t* h
    cdef count_t* h0
    cdef count_t* h1
    cdef count_t* h2
    cdef count_t* h3
    with nogil:
        for start in range(0, n, SUB):
            mn = SUB if n - start > SUB else n - start
            mnp = (mn + 7) & ~7     # the buffer's stride: whole 8-lane vectors
            mk_block(&x[start, 0], mn, &yp[0, 0], T, buf, mnp)
            for i in range(mn):
                bad[i] = 0
            # bin indices, one series at a time, vectorised in C (mk_bins); counts values
            # that are clamped, inf or NaN (exponent field >= that of 2^HIST_EXP_MAX)
            for s in range(ns):
                off = s * mnp
                lo = span[s, 0]
                hi = span[s, 1]
                rare = mk_bins(buf + off, mn, idx + off, &lo, &hi)
                nrare[s] = rare
                if rare == 0:
                    span[s, 0] = lo
                    span[s, 1] = hi
            s = 0
            while s < ns:
                if s + 4 <= ns and nrare[s] + nrare[s + 1] + nrare[s + 2] + nrare[s + 3] == 0:
                    # four series at once: independent running sums (each in draw order)
                    # and histogram rows (same split as numba_kernel._summaries)
                    o0 = s * mnp
                    o1 = o0 + mnp
                    o2 = o1 + mnp
                    o3 = o2 + mnp
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
                off = s * mnp
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
                off = ev_series[e] * mnp
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
