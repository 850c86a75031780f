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
whole vectors), then, GROUP series at a time, bin indices (``mk_bins``), running
sums (``mk_sums``: vector adds across series, each series still added in draw
order, so the sums equal the numba twin's sequential ones bit for bit) and counts
(serial per call; the driver runs calls on worker threads with their own
accumulators). Inputs
are validated by the Python layer; this module only checks shapes. The indices
repeat ``engine.market.kernels.layout`` and ``layout()`` returns the names so the
tests can check both agree.
"""
import numpy as np
cimport cython
from cython.parallel cimport prange
from libc.math cimport isfinite
from libc.stdint cimport uint64_t, uint32_t, int64_t, int32_t, uint16_t, uintptr_t
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy

DEF N_IN = 45
DEF N_OUT = 18
DEF N_YP = 6
# draws per sub-batch of the fused kernel (series-major buffer stays in L2; see numba_kernel._SUB)
DEF SUB = 128
# series per group of the fused kernel: bin indices (vectorised, mk_bins) into a buffer of GROUP * SUB
# int32 that stays in L1, then the running sums (mk_sums: three 4-lane vectors of four series) and the
# counts, four rows at a time, while the group's values and indices are in L1. (The same grouping in the
# numba twin measured no faster there: its scalar per-draw kernel dominates; it keeps one pass per stage.)
DEF GROUP = 12
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
    void mk_sums(const double* v, int64_t stride, int64_t n, int nser, double* acc)
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
cdef inline void _count4(count_t* h0, Py_ssize_t hstride, const int32_t* i0, Py_ssize_t istride,
                         Py_ssize_t mn) noexcept nogil:
    """Counts of four rows h0 + r hstride from indices i0 + r istride (r < 4): the rows
    interleaved, so repeated increments of one bin do not serialise the loop, and two
    indices per 8-byte load (half a load of indices per count instead of one)."""
    cdef count_t* h1 = h0 + hstride
    cdef count_t* h2 = h1 + hstride
    cdef count_t* h3 = h2 + hstride
    cdef const int32_t* i1 = i0 + istride
    cdef const int32_t* i2 = i1 + istride
    cdef const int32_t* i3 = i2 + istride
    cdef uint64_t p0, p1, p2, p3
    cdef Py_ssize_t i = 0
    while i + 2 <= mn:
        memcpy(&p0, i0 + i, 8)
        memcpy(&p1, i1 + i, 8)
        memcpy(&p2, i2 + i, 8)
        memcpy(&p3, i3 + i, 8)
        h0[<uint32_t> p0] += 1      # indices i and i + 1 in either half: counts do not depend on the order
        h1[<uint32_t> p1] += 1
        h2[<uint32_t> p2] += 1
        h3[<uint32_t> p3] += 1
        h0[p0 >> 32] += 1
        h1[p1 >> 32] += 1
        h2[p2 >> 32] += 1
        h3[p3 >> 32] += 1
        i += 2
    if i < mn:
        h0[i0[i]] += 1
        h1[i1[i]] += 1
        h2[i2[i]] += 1
        h3[i3[i]] += 1


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
    # the sub-batch buffer on a 64-byte boundary: every 8-double vector the kernel stores and
    # mk_bins / mk_sums load is then one cache line (malloc guarantees 16 bytes; a 64-byte vector
    # off a line boundary straddles two lines)
    cdef char* bufraw = <char*> malloc(ns * SUB * sizeof(double) + 64)
    cdef double* buf = <double*> ((<uintptr_t> bufraw + 63) & ~(<uintptr_t> 63))
    cdef int32_t* idx = <int32_t*> malloc(GROUP * SUB * sizeof(int32_t))
    cdef int64_t* nrare = <int64_t*> malloc(GROUP * sizeof(int64_t))
    cdef char* bad = <char*> malloc(SUB * sizeof(char))
    if bufraw == NULL or bad == NULL or idx == NULL or nrare == NULL:
        free(bufraw)
        free(idx)
        free(nrare)
        free(bad)
        raise MemoryError()
    cdef int64_t c, j, rare, grare, lo, hi
    cdef double v, acc, thr
    cdef int64_t bad_draws = 0
    cdef Py_ssize_t start, mn, mnp, off, s0, g, q
    cdef Py_ssize_t hstride = hist.shape[1]
    cdef int any_bad
    cdef count_t* h
    with nogil:
        for start in range(0, n, SUB):
            mn = SUB if n - start > SUB else n - start
            mnp = (mn + 7) & ~7     # the buffer's stride: whole 8-lane vectors
            mk_block(&x[start, 0], mn, &yp[0, 0], T, buf, mnp)
            any_bad = 0
            for s0 in range(0, ns, GROUP):
                g = GROUP if ns - s0 > GROUP else ns - s0
                # bin indices of the group's series, vectorised in C (mk_bins); notes series with values
                # that are clamped, inf or NaN (exponent field >= that of 2^HIST_EXP_MAX)
                grare = 0
                for q in range(g):
                    s = s0 + q
                    lo = span[s, 0]
                    hi = span[s, 1]
                    rare = mk_bins(buf + s * mnp, mn, idx + q * mnp, &lo, &hi)
                    nrare[q] = rare
                    grare += rare
                    if rare == 0:
                        span[s, 0] = lo
                        span[s, 1] = hi
                if grare == 0:
                    # the usual case: running sums in draw order, vectorised across series (mk_sums),
                    # then the counts four rows at a time
                    mk_sums(buf + s0 * mnp, mnp, mn, <int> g, &sums[s0])
                    q = 0
                    while q + 4 <= g:
                        _count4(&hist[s0 + q, 0], hstride, idx + q * mnp, mnp, mn)
                        q = q + 4
                    while q < g:
                        _count(&hist[s0 + q, 0], idx + q * mnp, mn)
                        q = q + 1
                    continue
                for q in range(g):
                    s = s0 + q
                    off = s * mnp
                    h = &hist[s, 0]
                    acc = sums[s]
                    if nrare[q] == 0:
                        for i in range(mn):
                            acc = acc + buf[off + i]
                        _count(h, idx + q * mnp, mn)
                    else:
                        # exact path: skip non-finite values, clamp out-of-range bins
                        if not any_bad:
                            for i in range(mn):
                                bad[i] = 0
                            any_bad = 1
                        lo = span[s, 0]
                        hi = span[s, 1]
                        for i in range(mn):
                            v = buf[off + i]
                            if not isfinite(v):
                                nonfinite[s] += 1
                                bad[i] = 1
                                continue
                            acc = acc + v
                            j = idx[q * mnp + i]
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
            if any_bad:     # only when some series had a clamped or non-finite value
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
    free(bufraw)
    free(idx)
    free(nrare)
    free(bad)
    return bad_draws


# ---------------------------------------------------------------------------------------
# Sampling stage (ext/market_sample_simd.h): standard normal scores of the "normal"
# stream's uniforms, and the vector inverse normal CDF they use.
# ---------------------------------------------------------------------------------------
cdef extern from "market_sample_simd.h" nogil:
    void ms_scores(const double* u, double* z, int64_t n)
    void ms_ndtri(const double* p, double* z, int64_t n)


def _flat_pair(a, b, str an, str bn):
    """C-contiguous float64 1-d views of ``a`` and ``b`` (equal sizes), checked before C runs."""
    for arr, name in ((a, an), (b, bn)):
        if not isinstance(arr, np.ndarray) or arr.dtype != np.float64 or not arr.flags.c_contiguous:
            raise ValueError(f"{name} must be a C-contiguous float64 array, got "
                             f"{getattr(arr, 'dtype', type(arr).__name__)}")
    if not b.flags.writeable:
        raise ValueError(f"{bn} must be writeable")
    if a.size != b.size:
        raise ValueError(f"{an} and {bn} must have equal sizes, got {a.size} and {b.size}")
    if a.size and a.ctypes.data != b.ctypes.data and np.shares_memory(a, b):
        raise ValueError(f"{an} and {bn} overlap partly: pass the same array (in place) or disjoint ones")
    return a.reshape(-1), b.reshape(-1)


def sample_scores(u, z):
    """Standard normal scores ``z`` of uniforms ``u = k 2^-53`` on [0, 1) (numpy's
    ``Generator.random``): ``Phi^-1`` of the cell midpoint ``(k + 1/2) 2^-53`` (AS 241,
    ext/market_sample_simd.h; Wichura 1988), always finite (docs/reproducibility.md). ``z`` may be ``u``. Bit-identical to
    ``engine.market.kernels.sample_kernel.scores_from_uniforms_numba``. Returns ``z``."""
    uf, zf = _flat_pair(u, z, "u", "z")
    cdef const double[::1] uv = uf
    cdef double[::1] zv = zf
    cdef int64_t n = uf.shape[0]
    if n:
        with nogil:
            ms_scores(&uv[0], &zv[0], n)
    return z


def _ndtri(p, z):
    """``z = Phi^-1(p)`` by the vector AS 241 of this CPU's copy (for the tests)."""
    pf, zf = _flat_pair(p, z, "p", "z")
    cdef const double[::1] pv = pf
    cdef double[::1] zv = zf
    cdef int64_t n = pf.shape[0]
    if n:
        with nogil:
            ms_ndtri(&pv[0], &zv[0], n)
    return z


cdef extern from "market_sample_simd.h" nogil:
    void ms_transform(const double* z, int64_t nz, const double* u, int64_t nu, const int64_t* cols,
                      const int64_t* ocols, const int64_t* codes, const double* params, int64_t k,
                      double* x, int64_t n)

# the stream-code table as compiled into C (the C copy of engine/market/kernels/sample_checks.py's;
# sample_codes() returns it so that the tests check both agree)
cdef extern from "market_sample_simd.h" nogil:
    enum:
        MS_FIXED, MS_NORMAL, MS_LOGNORMAL, MS_UNIFORM, MS_TRIANGULAR, MS_U_UNIFORM, MS_U_TRIANGULAR
        MS_TRUNC_NORMAL, MS_TRUNC_LOGNORMAL, MS_U_TRUNC_NORMAL, MS_U_TRUNC_LOGNORMAL
        MS_N_CODES, MS_N_PARAMS, MS_U_CODE_MASK

_N_CODES = int(MS_N_CODES)
_N_PARAMS = int(MS_N_PARAMS)
_U_CODES = tuple(c for c in range(_N_CODES) if (MS_U_CODE_MASK >> c) & 1)


def sample_codes():
    """The stream-code table of this build: ({name: code}, codes that read a uniform
    variate, parameters per column)."""
    names = {"FIXED": MS_FIXED, "NORMAL": MS_NORMAL, "LOGNORMAL": MS_LOGNORMAL, "UNIFORM": MS_UNIFORM,
             "TRIANGULAR": MS_TRIANGULAR, "U_UNIFORM": MS_U_UNIFORM, "U_TRIANGULAR": MS_U_TRIANGULAR,
             "TRUNC_NORMAL": MS_TRUNC_NORMAL, "TRUNC_LOGNORMAL": MS_TRUNC_LOGNORMAL,
             "U_TRUNC_NORMAL": MS_U_TRUNC_NORMAL, "U_TRUNC_LOGNORMAL": MS_U_TRUNC_LOGNORMAL}
    return {k: int(v) for k, v in names.items()}, _U_CODES, _N_PARAMS


def _c_array(a, str name, dtype, int ndim):
    if not isinstance(a, np.ndarray) or a.dtype != dtype or a.ndim != ndim or not a.flags.c_contiguous:
        raise ValueError(f"{name} must be a C-contiguous {np.dtype(dtype).name} array with {ndim} "
                         f"dimension(s), got {getattr(a, 'dtype', type(a).__name__)} "
                         f"{getattr(a, 'shape', '')}")
    return a


def sample_transform(z, u, cols, out, ocols, codes, params):
    """The closed-form inverse transforms of the input columns into ``out`` (n, N_INPUTS):
    the vector twin (ext/market_sample_simd.h) of
    ``engine.market.kernels.sample_kernel._fast_from_scores``, bit-identical to it.
    ``z`` (n, n_normal) scores, ``u`` (n, n_uniform) uniforms, ``cols``, ``ocols``,
    ``codes`` (k,) int64, ``params`` (k, 6). Everything is checked here (shapes, codes
    0-10, column indices inside their stream and the output, distinct output columns,
    no memory shared by ``out`` and an input) before C runs: a second line behind
    ``engine.market.kernels.sample_checks.check_transform``, which ``Backend.transform``
    runs first on every backend."""
    _c_array(z, "z", np.float64, 2)
    _c_array(u, "u", np.float64, 2)
    _c_array(out, "out", np.float64, 2)
    _c_array(cols, "cols", np.int64, 1)
    _c_array(ocols, "ocols", np.int64, 1)
    _c_array(codes, "codes", np.int64, 1)
    _c_array(params, "params", np.float64, 2)
    cdef Py_ssize_t n = out.shape[0], k = codes.shape[0], c
    if out.shape[1] != N_IN:
        raise ValueError(f"out must have shape (n, {N_IN}), got {out.shape}")
    if not out.flags.writeable:
        raise ValueError("out must be writeable")
    if z.shape[0] != n or u.shape[0] != n:
        raise ValueError(f"z and u must have {n} rows (out's), got {z.shape[0]} and {u.shape[0]}")
    if cols.shape[0] != k or ocols.shape[0] != k or params.shape[0] != k or params.shape[1] != _N_PARAMS:
        raise ValueError(f"cols, ocols and params must have {k} rows (codes'), params {_N_PARAMS} columns, got "
                         f"{cols.shape[0]}, {ocols.shape[0]} and {params.shape}")
    # the checks on typed views (C loops: indexing the arrays from Python and np.unique took ~30 us a call)
    cdef const int64_t[::1] cv = cols
    cdef const int64_t[::1] ov = ocols
    cdef const int64_t[::1] kv = codes
    cdef int64_t code, width
    cdef Py_ssize_t zw = z.shape[1], uw = u.shape[1], c2
    for c in range(k):
        code = kv[c]
        if not 0 <= code < MS_N_CODES:
            raise ValueError(f"codes[{c}] must be in [0, {_N_CODES - 1}], got {code}")
        if not 0 <= ov[c] < N_IN:
            raise ValueError(f"ocols[{c}] must be in [0, {N_IN - 1}], got {ov[c]}")
        if code != MS_FIXED:
            width = uw if (MS_U_CODE_MASK >> code) & 1 else zw
            if not 0 <= cv[c] < width:
                raise ValueError(f"cols[{c}] must be in [0, {width - 1}] (code {code} reads "
                                 f"{'u' if (MS_U_CODE_MASK >> code) & 1 else 'z'}), got {cv[c]}")
    for c in range(k):
        for c2 in range(c):
            if ov[c2] == ov[c]:
                raise ValueError(f"ocols must be distinct, got {ocols.tolist()}")
    for a, name in ((z, "z"), (u, "u"), (cols, "cols"), (ocols, "ocols"), (codes, "codes"), (params, "params")):
        if np.shares_memory(out, a):
            raise ValueError(f"out must not share memory with {name}")
    if n == 0 or k == 0:
        return out
    cdef const double[:, ::1] zv = z
    cdef const double[:, ::1] uv = u
    cdef double[:, ::1] xv = out
    cdef const double[:, ::1] pv = params
    # a stream without columns: any valid address (no code reads it)
    cdef const double* zp = &zv[0, 0] if z.shape[1] else &pv[0, 0]
    cdef const double* up = &uv[0, 0] if u.shape[1] else &pv[0, 0]
    with nogil:
        ms_transform(zp, zv.shape[1], up, uv.shape[1], &cv[0], &ov[0], &kv[0], &pv[0, 0], k, &xv[0, 0], n)
    return out


cdef extern from "market_sample_simd.h" nogil:
    enum:
        MAX_CORR "MS_MAX_CORR"
    void ms_correlate(double* z, int64_t nz, const int64_t* cols, int64_t k, const double* f, int64_t n)


def sample_correlate(z, cols, factor):
    """Gaussian copula in place: ``z[:, cols] <- z[:, cols] @ factor.T`` row by row, the
    vector twin (ext/market_sample_simd.h) of
    ``engine.market.kernels.sample_kernel._correlate_columns`` (same sums in the same
    order: bit-identical). ``z`` (n, n_normal) float64, ``cols`` (k,) distinct int64
    column indices of ``z``, ``factor`` (k, k) float64, k <= 64; checked before C runs.
    Returns ``z``."""
    _c_array(z, "z", np.float64, 2)
    _c_array(cols, "cols", np.int64, 1)
    _c_array(factor, "factor", np.float64, 2)
    cdef Py_ssize_t k = cols.shape[0], n = z.shape[0], c
    if not z.flags.writeable:
        raise ValueError("z must be writeable")
    if factor.shape[0] != k or factor.shape[1] != k:
        raise ValueError(f"factor must have shape ({k}, {k}) (cols'), got {factor.shape}")
    if k > MAX_CORR:
        raise ValueError(f"at most {MAX_CORR} correlated columns, got {k}")
    cdef const int64_t[::1] cv = cols      # the checks on a typed view (C loops)
    cdef Py_ssize_t zw = z.shape[1], c2
    for c in range(k):
        if not 0 <= cv[c] < zw:
            raise ValueError(f"cols[{c}] must be in [0, {zw - 1}], got {cv[c]}")
    for c in range(k):
        for c2 in range(c):
            if cv[c2] == cv[c]:
                raise ValueError(f"cols must be distinct, got {cols.tolist()}")
    if np.shares_memory(z, cols) or np.shares_memory(z, factor):
        raise ValueError("z must not share memory with cols or factor")
    if n == 0 or k == 0:
        return z
    cdef double[:, ::1] zv = z
    cdef const double[:, ::1] fv = factor
    with nogil:
        ms_correlate(&zv[0, 0], zv.shape[1], &cv[0], k, &fv[0, 0], n)
    return z
