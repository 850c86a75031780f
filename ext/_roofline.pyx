# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Cython backend of the per-point roofline kernel.

Design
------
* One ``cdef inline ... noexcept nogil`` function per formula, one ``prange``
  loop per kernel; the formulas and conventions are specified (and tested) by
  ``engine.core.reference``; ``engine.core.numba_kernels`` is the numba twin.
* Inputs are trusted: ``engine.core.dispatch`` coerces dtypes and layout,
  checks shapes and index ranges, and allocates outputs before calling. The
  ``def`` wrappers here still check array lengths (O(1)) so a wrong call can
  never read out of bounds.
* Threads are passed explicitly; without OpenMP ``prange`` runs serially
  (``openmp_enabled()`` says which).
"""
from cython.parallel cimport prange
from libc.math cimport ceil, floor, expm1, log1p, NAN, fmin, fmax
cimport cython

cdef extern from *:
    """
    #ifndef INFERCAST_OPENMP
    #define INFERCAST_OPENMP 0
    #endif
    #if INFERCAST_OPENMP
    #include <omp.h>
    static int infercast_max_threads(void) { return omp_get_max_threads(); }
    #else
    static int infercast_max_threads(void) { return 1; }
    #endif
    """
    int INFERCAST_OPENMP
    int infercast_max_threads() nogil

ctypedef signed char i8

cdef enum:
    M_LAYERS = 0
    M_HIDDEN = 1
    M_FLOP_LIN = 2
    M_FLOP_HEAD = 3
    M_ATTN_FULL = 4
    M_ATTN_WIN = 5
    M_WINDOW = 6
    M_KV_FULL = 7
    M_KV_WIN = 8
    M_KV_SPLIT = 9
    M_PARAMS_RESIDENT = 10
    M_PARAMS_READ = 11
    M_PARAMS_EXPERT = 12
    M_EXPERTS = 13
    M_EXPERTS_ACTIVE = 14
    N_MODEL_COLS = 15
    C_INV_FLOPS = 0
    C_USABLE_BYTES = 7
    C_INV_MEM_BW = 8
    C_INV_LINK_BW = 9
    C_LINK_LATENCY = 10
    C_STEP_OVERHEAD = 11
    C_HOURLY_USD = 12
    C_TDP_W = 13
    N_CHIP_COLS = 14
    N_FLOAT_OUT = 9
    N_DTYPE_CODES = 7
    BOUND_NONE = -1
    BOUND_COMPUTE = 0
    BOUND_MEMORY = 1
    BOUND_NETWORK = 2

_LAYOUT = dict(
    M_LAYERS=M_LAYERS, M_HIDDEN=M_HIDDEN, M_FLOP_LIN=M_FLOP_LIN, M_FLOP_HEAD=M_FLOP_HEAD,
    M_ATTN_FULL=M_ATTN_FULL, M_ATTN_WIN=M_ATTN_WIN, M_WINDOW=M_WINDOW, M_KV_FULL=M_KV_FULL,
    M_KV_WIN=M_KV_WIN, M_KV_SPLIT=M_KV_SPLIT, M_PARAMS_RESIDENT=M_PARAMS_RESIDENT,
    M_PARAMS_READ=M_PARAMS_READ, M_PARAMS_EXPERT=M_PARAMS_EXPERT, M_EXPERTS=M_EXPERTS,
    M_EXPERTS_ACTIVE=M_EXPERTS_ACTIVE, N_MODEL_COLS=N_MODEL_COLS, C_INV_FLOPS=C_INV_FLOPS,
    C_USABLE_BYTES=C_USABLE_BYTES, C_INV_MEM_BW=C_INV_MEM_BW, C_INV_LINK_BW=C_INV_LINK_BW,
    C_LINK_LATENCY=C_LINK_LATENCY, C_STEP_OVERHEAD=C_STEP_OVERHEAD, C_HOURLY_USD=C_HOURLY_USD,
    C_TDP_W=C_TDP_W, N_CHIP_COLS=N_CHIP_COLS, N_FLOAT_OUT=N_FLOAT_OUT,
    N_DTYPE_CODES=N_DTYPE_CODES, BOUND_NONE=BOUND_NONE, BOUND_COMPUTE=BOUND_COMPUTE,
    BOUND_MEMORY=BOUND_MEMORY, BOUND_NETWORK=BOUND_NETWORK,
)


def layout():
    """The kernel ABI constants compiled into this extension."""
    return dict(_LAYOUT)


def openmp_enabled():
    """Whether this extension was compiled with OpenMP (else prange is serial)."""
    return bool(INFERCAST_OPENMP)


def max_threads():
    """Threads OpenMP would use by default (1 without OpenMP)."""
    return infercast_max_threads()


cdef inline double _series(double a, double b, double lo, double hi) noexcept nogil:
    """Sum of a + b c over integers c in [lo, hi]."""
    cdef double n = hi - lo + 1.0
    if n <= 0.0:
        return 0.0
    return n * a + b * (lo + hi) * n * 0.5


cdef inline double _sum_max_affine(double a1, double b1, double a2, double b2,
                                   double lo, double hi) noexcept nogil:
    """Exact sum over integer c in [lo, hi] of max(a1 + b1 c, a2 + b2 c)."""
    cdef double cstar, k
    if hi < lo:
        return 0.0
    if b1 == b2:
        return _series(fmax(a1, a2), b1, lo, hi)
    cstar = (a2 - a1) / (b1 - b2)
    if b1 > b2:
        k = fmin(fmax(ceil(cstar), lo), hi + 1.0)
        return _series(a2, b2, lo, k - 1.0) + _series(a1, b1, k, hi)
    k = fmax(fmin(floor(cstar), hi), lo - 1.0)
    return _series(a1, b1, lo, k) + _series(a2, b2, k + 1.0, hi)


cdef inline double _experts_touched(double n_tok, double n_exp, double k) noexcept nogil:
    """Expected distinct routed experts for n_tok tokens: E (1 - (1 - k/E)^n)."""
    if n_exp <= 0.0:
        return 0.0
    return -n_exp * expm1(n_tok * log1p(-k / n_exp))


cdef inline double _network(double n_tok, double layers, double hidden, double ab, double tp,
                            double pp, double inv_link, double lat) noexcept nogil:
    """Two ring all-reduces per layer plus pp-1 stage hand-offs [s]."""
    cdef double msg = n_tok * hidden * ab
    cdef double t = 0.0
    if tp > 1.0:
        t += 2.0 * layers * (2.0 * (tp - 1.0) / tp * msg * inv_link + 2.0 * (tp - 1.0) * lat)
    if pp > 1.0:
        t += (pp - 1.0) * (msg * inv_link + lat)
    return t


cdef inline i8 _bound(double t_comp, double t_mem, double t_net) noexcept nogil:
    if t_net > fmax(t_comp, t_mem):
        return BOUND_NETWORK
    return BOUND_COMPUTE if t_comp >= t_mem else BOUND_MEMORY


cdef inline void _point(Py_ssize_t i, const double[:, ::1] mt, const double[:, ::1] ct,
                        const double[::1] db, const int[::1] model_idx, const int[::1] chip_idx,
                        const int[::1] tp_a, const int[::1] pp_a, const int[::1] batch,
                        const int[::1] prompt, const int[::1] output, const i8[::1] w_dt,
                        const i8[::1] kv_dt, const i8[::1] act_dt, bint loop_decode,
                        double[:, ::1] out_f, i8[:, ::1] out_bound, unsigned char[::1] out_fits,
                        long long[::1] out_maxb, Py_ssize_t o) noexcept nogil:
    cdef int mi = model_idx[i]
    cdef int ci = chip_idx[i]
    cdef double tp = tp_a[i]
    cdef double pp = pp_a[i]
    cdef double B = batch[i]
    cdef double P = prompt[i]
    cdef double N = output[i]
    cdef double wb = db[w_dt[i]]
    cdef double kb = db[kv_dt[i]]
    cdef double ab = db[act_dt[i]]
    cdef double inv_f = ct[ci, C_INV_FLOPS + act_dt[i]]
    cdef double inv_bw = ct[ci, C_INV_MEM_BW]
    cdef double inv_link = ct[ci, C_INV_LINK_BW]
    cdef double lat = ct[ci, C_LINK_LATENCY]
    cdef double ovh = ct[ci, C_STEP_OVERHEAD]
    cdef double layers = mt[mi, M_LAYERS]
    cdef double hidden = mt[mi, M_HIDDEN]
    cdef double w = mt[mi, M_WINDOW]
    cdef double kv_full = mt[mi, M_KV_FULL]
    cdef double kv_win = mt[mi, M_KV_WIN]
    cdef double n_exp = mt[mi, M_EXPERTS]
    cdef double k_exp = mt[mi, M_EXPERTS_ACTIVE]
    cdef double kv_frac, inv_chips, weight_bytes, ctx_max, kv_seq, room, mb
    cdef double inv_tp, wpre, kv_tok_bytes, act_tok_bytes, n_pre, win_keys, flops_pre
    cdef double t_comp, t_mem, t_net, w_read, ttft, cf, a1, b1, g1, a2, b2, g2, kvb
    cdef double lo, hi, h1, l2, s_max, s_comp, s_mem, c, kw, tc, tm
    cdef double n_steps, t_net_d, decode_total, e2e, tokens, tok_s, n_chips
    cdef long long max_b
    cdef bint fits

    kv_frac = 1.0 / fmin(tp, mt[mi, M_KV_SPLIT])
    inv_chips = 1.0 / (tp * pp)
    weight_bytes = mt[mi, M_PARAMS_RESIDENT] * wb / (tp * pp)
    ctx_max = P + N
    kv_seq = kb * kv_frac * (kv_full * ctx_max + kv_win * fmin(ctx_max, w)) / pp
    room = ct[ci, C_USABLE_BYTES] - weight_bytes
    mb = 0.0
    if room >= 0.0:
        mb = fmin(floor(room / kv_seq), 4611686018427387904.0)
    max_b = <long long>mb
    out_maxb[o] = max_b
    out_f[5, o] = weight_bytes
    out_f[6, o] = B * kv_seq
    fits = batch[i] <= max_b
    out_fits[o] = fits
    if not fits:
        out_f[0, o] = NAN
        out_f[1, o] = NAN
        out_f[2, o] = NAN
        out_f[3, o] = NAN
        out_f[4, o] = NAN
        out_f[7, o] = NAN
        out_f[8, o] = NAN
        out_bound[0, o] = BOUND_NONE
        out_bound[1, o] = BOUND_NONE
        return

    inv_tp = 1.0 / tp
    wpre = wb * inv_tp
    kv_tok_bytes = kb * kv_frac * (kv_full + kv_win)
    act_tok_bytes = 2.0 * layers * hidden * ab

    # prefill: B x P tokens, causal attention
    n_pre = B * P
    if P <= w:
        win_keys = P * (P + 1.0) * 0.5
    else:
        win_keys = w * (w + 1.0) * 0.5 + (P - w) * w
    flops_pre = B * (mt[mi, M_FLOP_LIN] * P + mt[mi, M_FLOP_HEAD]
                     + mt[mi, M_ATTN_FULL] * P * (P + 1.0) * 0.5 + mt[mi, M_ATTN_WIN] * win_keys)
    t_comp = flops_pre * inv_tp * inv_f
    w_read = wpre * (mt[mi, M_PARAMS_READ]
                     + mt[mi, M_PARAMS_EXPERT] * _experts_touched(n_pre, n_exp, k_exp))
    t_mem = (w_read + n_pre * (kv_tok_bytes + act_tok_bytes)) * inv_bw
    t_net = _network(n_pre, layers, hidden, ab, tp, pp, inv_link, lat)
    ttft = fmax(t_comp, t_mem) + t_net + ovh
    out_bound[0, o] = _bound(t_comp, t_mem, t_net)

    # decode: contexts P+1 .. P+N-1
    cf = B * inv_tp * inv_f
    a1 = cf * (mt[mi, M_FLOP_LIN] + mt[mi, M_FLOP_HEAD])
    b1 = cf * mt[mi, M_ATTN_FULL]
    g1 = cf * mt[mi, M_ATTN_WIN]
    w_read = wpre * (mt[mi, M_PARAMS_READ]
                     + mt[mi, M_PARAMS_EXPERT] * _experts_touched(B, n_exp, k_exp))
    a2 = (w_read + B * (kv_tok_bytes + act_tok_bytes)) * inv_bw
    kvb = B * kb * kv_frac * inv_bw
    b2 = kvb * kv_full
    g2 = kvb * kv_win
    lo = P + 1.0
    hi = P + N - 1.0
    h1 = fmin(hi, w)
    l2 = fmax(lo, w + 1.0)
    if loop_decode:
        s_max = 0.0
        s_comp = 0.0
        s_mem = 0.0
        c = lo
        while c <= hi:
            kw = fmin(c, w)
            tc = a1 + b1 * c + g1 * kw
            tm = a2 + b2 * c + g2 * kw
            s_max += fmax(tc, tm)
            s_comp += tc
            s_mem += tm
            c += 1.0
    else:
        s_max = (_sum_max_affine(a1, b1 + g1, a2, b2 + g2, lo, h1)
                 + _sum_max_affine(a1 + g1 * w, b1, a2 + g2 * w, b2, l2, hi))
        s_comp = _series(a1, b1 + g1, lo, h1) + _series(a1 + g1 * w, b1, l2, hi)
        s_mem = _series(a2, b2 + g2, lo, h1) + _series(a2 + g2 * w, b2, l2, hi)
    n_steps = N - 1.0
    t_net_d = _network(B, layers, hidden, ab, tp, pp, inv_link, lat)
    decode_total = s_max + n_steps * (t_net_d + ovh)
    e2e = ttft + decode_total
    tokens = B * N
    tok_s = tokens / e2e
    n_chips = tp * pp
    out_f[0, o] = ttft
    out_f[1, o] = decode_total / n_steps if n_steps > 0.0 else NAN
    out_f[2, o] = e2e
    out_f[3, o] = tok_s
    out_f[4, o] = tok_s * inv_chips
    out_f[7, o] = ct[ci, C_HOURLY_USD] * n_chips * e2e / 3600.0 / tokens * 1e6
    out_f[8, o] = ct[ci, C_TDP_W] * n_chips * e2e / tokens
    if n_steps > 0.0:
        out_bound[1, o] = _bound(s_comp, s_mem, n_steps * t_net_d)
    else:
        out_bound[1, o] = BOUND_NONE


def roofline(const double[:, ::1] mt, const double[:, ::1] ct, const double[::1] db,
             const int[::1] model_idx, const int[::1] chip_idx, const int[::1] tp,
             const int[::1] pp, const int[::1] batch, const int[::1] prompt,
             const int[::1] output, const i8[::1] w_dt, const i8[::1] kv_dt,
             const i8[::1] act_dt, double[:, ::1] out_f, i8[:, ::1] out_bound,
             unsigned char[::1] out_fits, long long[::1] out_maxb, int n_threads=1,
             bint loop_decode=False, Py_ssize_t out_offset=0):
    """Per-point roofline outputs into the ``out_*`` buffers (see engine.core.reference).

    Point ``i`` is written to column ``out_offset + i`` of the outputs, so a
    large grid can be evaluated chunk by chunk into one set of buffers. Index
    ranges must already be checked (``engine.core.dispatch`` does); lengths
    are checked here.
    """
    cdef Py_ssize_t n = model_idx.shape[0]
    cdef Py_ssize_t i
    lengths = {"chip_idx": chip_idx.shape[0], "tp": tp.shape[0], "pp": pp.shape[0],
               "batch": batch.shape[0], "prompt": prompt.shape[0], "output": output.shape[0],
               "w_dt": w_dt.shape[0], "kv_dt": kv_dt.shape[0], "act_dt": act_dt.shape[0]}
    for name, length in lengths.items():
        if length != n:
            raise ValueError(f"{name} must have length {n}, got {length}")
    if out_offset < 0:
        raise ValueError(f"out_offset must be >= 0, got {out_offset}")
    cdef Py_ssize_t need = out_offset + n
    if out_f.shape[0] != N_FLOAT_OUT or out_f.shape[1] < need:
        raise ValueError(f"out_f must have shape ({N_FLOAT_OUT}, >= {need}), got "
                         f"({out_f.shape[0]}, {out_f.shape[1]})")
    if out_bound.shape[0] != 2 or out_bound.shape[1] < need:
        raise ValueError(f"out_bound must have shape (2, >= {need}), got "
                         f"({out_bound.shape[0]}, {out_bound.shape[1]})")
    if out_fits.shape[0] < need or out_maxb.shape[0] < need:
        raise ValueError(f"out_fits and out_maxb must have length >= {need}")
    if mt.shape[1] != N_MODEL_COLS or ct.shape[1] != N_CHIP_COLS or db.shape[0] != N_DTYPE_CODES:
        raise ValueError("model/chip/dtype tables do not match the kernel layout")
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    with nogil:
        for i in prange(n, num_threads=n_threads, schedule="static"):
            _point(i, mt, ct, db, model_idx, chip_idx, tp, pp, batch, prompt, output,
                   w_dt, kv_dt, act_dt, loop_decode, out_f, out_bound, out_fits, out_maxb,
                   i + out_offset)


def stream_pass(const int[::1] model_idx, const int[::1] chip_idx, const int[::1] tp,
                const int[::1] pp, const int[::1] batch, const int[::1] prompt,
                const int[::1] output, const i8[::1] w_dt, const i8[::1] kv_dt,
                const i8[::1] act_dt, double[:, ::1] out_f, i8[:, ::1] out_bound,
                unsigned char[::1] out_fits, long long[::1] out_maxb, int n_threads=1):
    """Read every input once and write every output once, with no physics.

    The memory-bandwidth limit for the roofline kernel on this machine: the
    benchmarks report kernel throughput as a fraction of this pass.
    """
    cdef Py_ssize_t n = model_idx.shape[0]
    cdef Py_ssize_t i, r
    cdef double s
    lengths = [chip_idx.shape[0], tp.shape[0], pp.shape[0], batch.shape[0], prompt.shape[0],
               output.shape[0], w_dt.shape[0], kv_dt.shape[0], act_dt.shape[0],
               out_fits.shape[0], out_maxb.shape[0]]
    if any(length != n for length in lengths):
        raise ValueError("all arrays must have the same length")
    if out_f.shape[0] != N_FLOAT_OUT or out_f.shape[1] != n or out_bound.shape[1] != n \
            or out_bound.shape[0] != 2:
        raise ValueError("output blocks do not match the kernel layout")
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    with nogil:
        for i in prange(n, num_threads=n_threads, schedule="static"):
            s = (<double>model_idx[i] + chip_idx[i] + tp[i] + pp[i] + batch[i] + prompt[i]
                 + output[i] + w_dt[i] + kv_dt[i] + act_dt[i])
            for r in range(N_FLOAT_OUT):
                out_f[r, i] = s
            out_bound[0, i] = w_dt[i]
            out_bound[1, i] = kv_dt[i]
            out_fits[i] = act_dt[i] > 0
            out_maxb[i] = batch[i]
