# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Cython backend of the per-point roofline kernel.

Design
------
* One ``cdef inline ... noexcept nogil`` function per formula and one scalar
  point function :func:`_eval`; the formulas and conventions are specified
  (and tested) by ``engine.core.reference``; ``engine.core.numba_kernels`` is
  the numba twin.
* Two loops call ``_eval``: :func:`roofline` over struct-of-arrays points and
  :func:`roofline_grid` over a Cartesian grid, where each thread walks a
  contiguous block of flat indices with an odometer, so a sweep never
  materialises its input columns.
* The point function is branch-free where the branch would depend on the data
  (the roofline crossover side, tp > 1, fit): a sweep mixes models, chips and
  parallelism at random, and mispredicted branches cost more than selects.
  Reciprocals are shared so a point costs 8 divisions.
* Inputs are trusted: ``engine.core.dispatch`` coerces dtypes and layout,
  checks index ranges and allocates outputs before calling. The ``def``
  wrappers here still check lengths and shapes (O(1)) so a wrong call can
  never read or write out of bounds.
* ``fmin``/``fmax`` are libm calls under IEEE semantics (no -ffast-math here),
  and a call spills every live xmm register; ``_min``/``_max`` are single
  instructions, equal to them for the non-NaN operands validation guarantees.
* Threads are passed explicitly; without OpenMP ``prange`` runs serially
  (``openmp_enabled()`` says which).
"""
from cython.parallel cimport prange
from libc.math cimport floor, ceil, expm1, NAN
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
    M_LOG_KEEP = 15
    N_MODEL_COLS = 16
    C_INV_FLOPS = 0
    C_USABLE_BYTES = 7
    C_INV_MEM_BW = 8
    C_INV_LINK_BW = 9
    C_LINK_LATENCY = 10
    C_STEP_OVERHEAD = 11
    C_HOURLY_USD = 12
    C_TDP_W = 13
    C_SCALEUP_DOMAIN = 14
    C_INV_SCALEOUT_BW = 15
    C_SCALEOUT_LATENCY = 16
    N_CHIP_COLS = 17
    N_FLOAT_OUT = 9
    N_DTYPE_CODES = 7
    N_GRID_AXES = 10
    BOUND_NONE = -1
    BOUND_COMPUTE = 0
    BOUND_MEMORY = 1
    BOUND_NETWORK = 2

_LAYOUT = dict(
    M_LAYERS=M_LAYERS, M_HIDDEN=M_HIDDEN, M_FLOP_LIN=M_FLOP_LIN, M_FLOP_HEAD=M_FLOP_HEAD,
    M_ATTN_FULL=M_ATTN_FULL, M_ATTN_WIN=M_ATTN_WIN, M_WINDOW=M_WINDOW, M_KV_FULL=M_KV_FULL,
    M_KV_WIN=M_KV_WIN, M_KV_SPLIT=M_KV_SPLIT, M_PARAMS_RESIDENT=M_PARAMS_RESIDENT,
    M_PARAMS_READ=M_PARAMS_READ, M_PARAMS_EXPERT=M_PARAMS_EXPERT, M_EXPERTS=M_EXPERTS,
    M_EXPERTS_ACTIVE=M_EXPERTS_ACTIVE, M_LOG_KEEP=M_LOG_KEEP, N_MODEL_COLS=N_MODEL_COLS,
    C_INV_FLOPS=C_INV_FLOPS, C_USABLE_BYTES=C_USABLE_BYTES, C_INV_MEM_BW=C_INV_MEM_BW,
    C_INV_LINK_BW=C_INV_LINK_BW, C_LINK_LATENCY=C_LINK_LATENCY, C_STEP_OVERHEAD=C_STEP_OVERHEAD,
    C_HOURLY_USD=C_HOURLY_USD, C_TDP_W=C_TDP_W, C_SCALEUP_DOMAIN=C_SCALEUP_DOMAIN,
    C_INV_SCALEOUT_BW=C_INV_SCALEOUT_BW, C_SCALEOUT_LATENCY=C_SCALEOUT_LATENCY, N_CHIP_COLS=N_CHIP_COLS, N_FLOAT_OUT=N_FLOAT_OUT,
    N_DTYPE_CODES=N_DTYPE_CODES, N_GRID_AXES=N_GRID_AXES, BOUND_NONE=BOUND_NONE,
    BOUND_COMPUTE=BOUND_COMPUTE, BOUND_MEMORY=BOUND_MEMORY, BOUND_NETWORK=BOUND_NETWORK,
)

#: points per block of the grid kernel (one odometer start per block)
cdef Py_ssize_t GRID_BLOCK = 4096


def layout():
    """The kernel ABI constants compiled into this extension."""
    return dict(_LAYOUT)


def openmp_enabled():
    """Whether this extension was compiled with OpenMP (else prange is serial)."""
    return bool(INFERCAST_OPENMP)


def max_threads():
    """Threads OpenMP would use by default (1 without OpenMP)."""
    return infercast_max_threads()


cdef inline double _min(double a, double b) noexcept nogil:
    """min for non-NaN operands: one minsd (libm fmin is a call, and spills registers)."""
    return a if a < b else b


cdef inline double _max(double a, double b) noexcept nogil:
    return a if a > b else b


cdef inline double _series(double a, double b, double lo, double hi) noexcept nogil:
    """Sum of a + b c over integers c in [lo, hi] (0 when hi < lo)."""
    cdef double n = _max(hi - lo + 1.0, 0.0)
    return n * a + b * (lo + hi) * n * 0.5


cdef inline double _sum_max_affine(double a1, double b1, double a2, double b2,
                                   double lo, double hi) noexcept nogil:
    """Exact sum over integer c in [lo, hi] of max(a1 + b1 c, a2 + b2 c).

    Contexts below ``m = floor(c*) + 1`` (clamped to [lo, hi + 1]) take the
    line that wins below the crossover c*, the rest the other one.
    """
    cdef double d = b1 - b2
    cdef double m = _min(_max(floor((a2 - a1) / d) + 1.0, lo), hi + 1.0)
    cdef bint up1 = d > 0.0 or (d == 0.0 and a1 >= a2)
    m = lo if d == 0.0 else m
    cdef double au = a1 if up1 else a2
    cdef double bu = b1 if up1 else b2
    cdef double al = a2 if up1 else a1
    cdef double bl = b2 if up1 else b1
    return _series(al, bl, lo, m - 1.0) + _series(au, bu, m, hi)


cdef struct Dep:
    # everything a point needs that depends only on (model, chip, tp, pp, dtypes)
    double wb, kb, ab, inv_f, inv_bw, inv_link, lat, ovh, layers, hidden, w, kv_full, kv_win
    double n_exp, log_keep, kv_frac, inv_chips, inv_tp, tp, pp, weight_bytes, room
    double kv_seq_unit, kv_tok_bytes, act_tok_bytes, wread_unit, flop_lin, flop_head
    double attn_full, attn_win, p_read, p_exp, hourly, tdp, n_chips
    double tp_inv_link, tp_lat, inv_out, lat_out, within, cross


cdef inline double _network(double n_tok, const Dep* d) noexcept nogil:
    """Two ring all-reduces per layer plus the stage hand-offs of one pass [s].

    The ring runs on the scale-up link inside the domain, at scale-out speed
    beyond it; ``d.within``/``d.cross`` hand-offs stay inside / leave a domain.
    """
    cdef double msg = n_tok * d.hidden * d.ab
    cdef double ar = 2.0 * d.layers * (2.0 * (d.tp - 1.0) * d.inv_tp * msg * d.tp_inv_link
                                       + 2.0 * (d.tp - 1.0) * d.tp_lat)
    cdef double p_in = d.within * (msg * d.inv_link + d.lat)
    cdef double p_out = d.cross * (msg * d.inv_out + d.lat_out)
    return ((ar if d.tp > 1.0 else 0.0) + (p_in if d.within > 0.0 else 0.0)
            + (p_out if d.cross > 0.0 else 0.0))


cdef inline i8 _bound(double t_comp, double t_mem, double t_net) noexcept nogil:
    cdef i8 code = BOUND_COMPUTE if t_comp >= t_mem else BOUND_MEMORY
    return BOUND_NETWORK if t_net > _max(t_comp, t_mem) else code


cdef inline void _deploy(Dep* d, const double* m, const double* c, const double* db, double tp,
                         double pp, int wd, int kd, int ad) noexcept nogil:
    """Per-deployment constants: memory split, effective rates, per-token bytes."""
    d.wb = db[wd]
    d.kb = db[kd]
    d.ab = db[ad]
    d.inv_f = c[C_INV_FLOPS + ad]
    d.inv_bw = c[C_INV_MEM_BW]
    d.inv_link = c[C_INV_LINK_BW]
    d.lat = c[C_LINK_LATENCY]
    d.ovh = c[C_STEP_OVERHEAD]
    d.layers = m[M_LAYERS]
    d.hidden = m[M_HIDDEN]
    d.w = m[M_WINDOW]
    d.kv_full = m[M_KV_FULL]
    d.kv_win = m[M_KV_WIN]
    d.n_exp = m[M_EXPERTS]
    d.log_keep = m[M_LOG_KEEP]
    d.tp = tp
    d.pp = pp
    d.kv_frac = 1.0 / _min(tp, m[M_KV_SPLIT])
    d.inv_chips = 1.0 / (tp * pp)
    d.inv_tp = pp * d.inv_chips
    d.weight_bytes = m[M_PARAMS_RESIDENT] * d.wb * d.inv_chips
    d.room = _max(c[C_USABLE_BYTES] - d.weight_bytes, 0.0)
    d.kv_seq_unit = d.kb * d.kv_frac
    d.kv_tok_bytes = d.kb * d.kv_frac * (d.kv_full + d.kv_win)
    d.act_tok_bytes = 2.0 * d.layers * d.hidden * d.ab
    d.wread_unit = d.wb * d.inv_tp
    d.flop_lin = m[M_FLOP_LIN]
    d.flop_head = m[M_FLOP_HEAD]
    d.attn_full = m[M_ATTN_FULL]
    d.attn_win = m[M_ATTN_WIN]
    d.p_read = m[M_PARAMS_READ]
    d.p_exp = m[M_PARAMS_EXPERT]
    d.hourly = c[C_HOURLY_USD]
    d.tdp = c[C_TDP_W]
    d.n_chips = tp * pp
    # tensor-parallel ring: scale-up link inside the domain, scale-out beyond it
    cdef double domain = c[C_SCALEUP_DOMAIN]
    d.inv_out = c[C_INV_SCALEOUT_BW]
    d.lat_out = c[C_SCALEOUT_LATENCY]
    d.tp_inv_link = d.inv_link if tp <= domain else d.inv_out
    d.tp_lat = d.lat if tp <= domain else d.lat_out
    # pipeline hand-offs leaving a domain of floor(domain / tp) stages
    d.cross = _max(ceil(pp / _max(floor(domain / tp), 1.0)) - 1.0, 0.0)
    d.within = pp - 1.0 - d.cross


cdef inline void _eval_dep(const Dep* d, double B, double P, double N, bint loop_decode,
                           double* of, Py_ssize_t ostride, i8* ob, unsigned char* ofits,
                           long long* omb, Py_ssize_t o) noexcept nogil:
    """Every output of one point of deployment ``d`` into column ``o`` of the outputs."""
    cdef double w = d.w
    cdef double touched_pre = 0.0
    cdef double touched_dec = 0.0
    cdef double ctx_max, kv_seq, mb, n_pre, tri, win_keys, flops_pre
    cdef double t_comp, t_mem, t_net, ttft, cf, a1, b1, g1, a2, b2, g2, kvb
    cdef double lo, hi, h1, l2, s_max, s_comp, s_mem, cc, kw, tc, tm
    cdef double n_steps, t_net_d, decode_total, e2e, tokens, inv_tokens, tok_s, nan
    cdef bint fits
    cdef i8 bound_pre, bound_dec

    # memory per chip
    ctx_max = P + N
    # each chip holds 1/pp of the layers for the pp micro-batches in flight: pp cancels
    kv_seq = d.kv_seq_unit * (d.kv_full * ctx_max + d.kv_win * _min(ctx_max, w))
    mb = _min(floor(d.room / kv_seq), 4611686018427387904.0)
    fits = B <= mb

    # expected routed experts touched by n tokens: E (1 - (1 - k/E)^n)
    if d.n_exp > 0.0:
        touched_pre = -d.n_exp * expm1(B * P * d.log_keep)
        touched_dec = -d.n_exp * expm1(B * d.log_keep)

    # prefill: B x P tokens, causal attention
    n_pre = B * P
    tri = P * (P + 1.0) * 0.5
    win_keys = tri if P <= w else w * (w + 1.0) * 0.5 + (P - w) * w
    flops_pre = B * (d.flop_lin * P + d.flop_head + d.attn_full * tri + d.attn_win * win_keys)
    t_comp = flops_pre * d.inv_tp * d.inv_f
    t_mem = (d.wread_unit * (d.p_read + d.p_exp * touched_pre)
             + n_pre * (d.kv_tok_bytes + d.act_tok_bytes)) * d.inv_bw
    t_net = _network(n_pre, d)
    ttft = _max(t_comp, t_mem) + t_net + d.ovh
    bound_pre = _bound(t_comp, t_mem, t_net)

    # decode: step j = 1..N-1 at context c = P + j; compute(c) = a1 + b1 c + g1 min(c, w),
    # memory(c) = a2 + b2 c + g2 min(c, w)
    cf = B * d.inv_tp * d.inv_f
    a1 = cf * (d.flop_lin + d.flop_head)
    b1 = cf * d.attn_full
    g1 = cf * d.attn_win
    a2 = (d.wread_unit * (d.p_read + d.p_exp * touched_dec)
          + B * (d.kv_tok_bytes + d.act_tok_bytes)) * d.inv_bw
    kvb = B * d.kb * d.kv_frac * d.inv_bw
    b2 = kvb * d.kv_full
    g2 = kvb * d.kv_win
    lo = P + 1.0
    hi = P + N - 1.0
    h1 = _min(hi, w)
    l2 = _max(lo, w + 1.0)
    if loop_decode:
        s_max = 0.0
        s_comp = 0.0
        s_mem = 0.0
        cc = lo
        while cc <= hi:
            kw = _min(cc, w)
            tc = a1 + b1 * cc + g1 * kw
            tm = a2 + b2 * cc + g2 * kw
            s_max += _max(tc, tm)
            s_comp += tc
            s_mem += tm
            cc += 1.0
    else:
        s_max = (_sum_max_affine(a1, b1 + g1, a2, b2 + g2, lo, h1)
                 + _sum_max_affine(a1 + g1 * w, b1, a2 + g2 * w, b2, l2, hi))
        s_comp = _series(a1, b1 + g1, lo, h1) + _series(a1 + g1 * w, b1, l2, hi)
        s_mem = _series(a2, b2 + g2, lo, h1) + _series(a2 + g2 * w, b2, l2, hi)
    n_steps = N - 1.0
    t_net_d = _network(B, d)
    decode_total = s_max + n_steps * (t_net_d + d.ovh)
    bound_dec = _bound(s_comp, s_mem, n_steps * t_net_d) if n_steps > 0.0 else BOUND_NONE
    e2e = ttft + decode_total
    tokens = d.pp * B * N        # pp micro-batches of B sequences finish per e2e
    inv_tokens = 1.0 / tokens
    tok_s = tokens / e2e
    nan = NAN

    omb[o] = <long long>mb
    ofits[o] = fits
    of[5 * ostride + o] = d.weight_bytes
    of[6 * ostride + o] = B * kv_seq
    of[o] = ttft if fits else nan
    of[ostride + o] = (decode_total / n_steps if n_steps > 0.0 else nan) if fits else nan
    of[2 * ostride + o] = e2e if fits else nan
    of[3 * ostride + o] = tok_s if fits else nan
    of[4 * ostride + o] = tok_s * d.inv_chips if fits else nan
    of[7 * ostride + o] = (d.hourly * d.n_chips * e2e * inv_tokens * (1e6 / 3600.0)
                           if fits else nan)
    of[8 * ostride + o] = d.tdp * d.n_chips * e2e * inv_tokens if fits else nan
    ob[o] = bound_pre if fits else BOUND_NONE
    ob[ostride + o] = bound_dec if fits else BOUND_NONE


cdef inline void _eval(const double* m, const double* c, const double* db, double tp, double pp,
                       double B, double P, double N, int wd, int kd, int ad, bint loop_decode,
                       double* of, Py_ssize_t ostride, i8* ob, unsigned char* ofits,
                       long long* omb, Py_ssize_t o) noexcept nogil:
    """Every output of one point into column ``o`` of the output buffers."""
    cdef Dep d
    _deploy(&d, m, c, db, tp, pp, wd, kd, ad)
    _eval_dep(&d, B, P, N, loop_decode, of, ostride, ob, ofits, omb, o)


cdef inline void _check_tables(const double[:, ::1] mt, const double[:, ::1] ct,
                               const double[::1] db) except *:
    if mt.shape[1] != N_MODEL_COLS or ct.shape[1] != N_CHIP_COLS or db.shape[0] != N_DTYPE_CODES:
        raise ValueError("model/chip/dtype tables do not match the kernel layout")


cdef inline void _check_out(double[:, ::1] out_f, i8[:, ::1] out_bound,
                            unsigned char[::1] out_fits, long long[::1] out_maxb,
                            Py_ssize_t need) except *:
    cdef Py_ssize_t m = out_fits.shape[0]
    if out_f.shape[0] != N_FLOAT_OUT or out_f.shape[1] != m or out_bound.shape[0] != 2 \
            or out_bound.shape[1] != m or out_maxb.shape[0] != m:
        raise ValueError(f"out_f must have shape ({N_FLOAT_OUT}, m), out_bound (2, m), "
                         f"out_fits and out_maxb (m,), with one m")
    if m < need:
        raise ValueError(f"out_f must have shape ({N_FLOAT_OUT}, >= {need}), got "
                         f"({out_f.shape[0]}, {out_f.shape[1]})")


def roofline(const double[:, ::1] mt, const double[:, ::1] ct, const double[::1] db,
             const int[::1] model_idx, const int[::1] chip_idx, const int[::1] tp,
             const int[::1] pp, const int[::1] batch, const int[::1] prompt,
             const int[::1] output, const i8[::1] w_dt, const i8[::1] kv_dt,
             const i8[::1] act_dt, double[:, ::1] out_f, i8[:, ::1] out_bound,
             unsigned char[::1] out_fits, long long[::1] out_maxb, int n_threads=1,
             bint loop_decode=False, Py_ssize_t out_offset=0):
    """Per-point roofline outputs into the ``out_*`` buffers (see engine.core.reference).

    Point ``i`` is written to column ``out_offset + i`` of the outputs. Index
    ranges must already be checked (``engine.core.dispatch`` does); lengths
    and shapes are checked here.
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
    _check_tables(mt, ct, db)
    _check_out(out_f, out_bound, out_fits, out_maxb, out_offset + n)
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    if n == 0:
        return
    cdef const double* mp = &mt[0, 0]
    cdef const double* cp = &ct[0, 0]
    cdef const double* dp = &db[0]
    cdef double* of = &out_f[0, 0]
    cdef i8* ob = &out_bound[0, 0]
    cdef Py_ssize_t ostride = out_f.shape[1]
    with nogil:
        for i in prange(n, num_threads=n_threads, schedule="static"):
            _eval(mp + model_idx[i] * N_MODEL_COLS, cp + chip_idx[i] * N_CHIP_COLS, dp,
                  tp[i], pp[i], batch[i], prompt[i], output[i], w_dt[i], kv_dt[i], act_dt[i],
                  loop_decode, of, ostride, ob, &out_fits[0], &out_maxb[0], i + out_offset)


cdef struct Grid:
    const int* model
    const int* chip
    const int* tp
    const int* pp
    const int* batch
    const int* prompt
    const int* output
    const i8* w
    const i8* kv
    const i8* act
    Py_ssize_t size[10]


cdef void _grid_block(const Grid* g, const double* mp, const double* cp, const double* dp,
                      Py_ssize_t f0, Py_ssize_t f1, bint loop_decode, double* of,
                      Py_ssize_t ostride, i8* ob, unsigned char* ofits,
                      long long* omb) noexcept nogil:
    """Points f0..f1-1 of the grid (C order), walking the coordinates like an odometer.

    The deployment constants are recomputed only when an axis they depend on
    (model, chip, tp, pp or a dtype) changes.
    """
    cdef Py_ssize_t idx[10]
    cdef Py_ssize_t r = f0
    cdef Py_ssize_t f
    cdef int a
    cdef Dep d
    cdef bint dtypes_vary = g.size[7] > 1 or g.size[8] > 1 or g.size[9] > 1
    for a in range(N_GRID_AXES - 1, -1, -1):
        idx[a] = r % g.size[a]
        r = r // g.size[a]
    _deploy(&d, mp + g.model[idx[0]] * N_MODEL_COLS, cp + g.chip[idx[1]] * N_CHIP_COLS, dp,
            g.tp[idx[2]], g.pp[idx[3]], g.w[idx[7]], g.kv[idx[8]], g.act[idx[9]])
    for f in range(f0, f1):
        _eval_dep(&d, g.batch[idx[4]], g.prompt[idx[5]], g.output[idx[6]], loop_decode,
                  of, ostride, ob, ofits, omb, f)
        a = N_GRID_AXES - 1
        idx[a] += 1
        while idx[a] == g.size[a] and a > 0:
            idx[a] = 0
            a -= 1
            idx[a] += 1
        if (dtypes_vary or a <= 3) and f + 1 < f1:   # never read past the grid's end
            _deploy(&d, mp + g.model[idx[0]] * N_MODEL_COLS, cp + g.chip[idx[1]] * N_CHIP_COLS,
                    dp, g.tp[idx[2]], g.pp[idx[3]], g.w[idx[7]], g.kv[idx[8]], g.act[idx[9]])


def roofline_grid(const double[:, ::1] mt, const double[:, ::1] ct, const double[::1] db,
                  const int[::1] model_idx, const int[::1] chip_idx, const int[::1] tp,
                  const int[::1] pp, const int[::1] batch, const int[::1] prompt,
                  const int[::1] output, const i8[::1] w_dt, const i8[::1] kv_dt,
                  const i8[::1] act_dt, double[:, ::1] out_f, i8[:, ::1] out_bound,
                  unsigned char[::1] out_fits, long long[::1] out_maxb, int n_threads=1,
                  bint loop_decode=False):
    """Every point of the Cartesian grid of the axis value arrays (C order, last fastest).

    Point ``f`` of the flattened grid goes to column ``f`` of the outputs,
    which must be sized for the whole grid. Axis values must already be
    checked (``engine.core.dispatch.roofline_grid`` does).
    """
    cdef Grid g
    cdef Py_ssize_t total = 1
    cdef Py_ssize_t b, n_blocks, f0, f1
    sizes = [model_idx.shape[0], chip_idx.shape[0], tp.shape[0], pp.shape[0], batch.shape[0],
             prompt.shape[0], output.shape[0], w_dt.shape[0], kv_dt.shape[0], act_dt.shape[0]]
    for k, s in enumerate(sizes):
        if s < 1:
            raise ValueError(f"grid axis {k} must have at least one value")
        g.size[k] = s
        total *= s
    _check_tables(mt, ct, db)
    _check_out(out_f, out_bound, out_fits, out_maxb, total)
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    g.model = &model_idx[0]
    g.chip = &chip_idx[0]
    g.tp = &tp[0]
    g.pp = &pp[0]
    g.batch = &batch[0]
    g.prompt = &prompt[0]
    g.output = &output[0]
    g.w = &w_dt[0]
    g.kv = &kv_dt[0]
    g.act = &act_dt[0]
    cdef const double* mp = &mt[0, 0]
    cdef const double* cp = &ct[0, 0]
    cdef const double* dp = &db[0]
    cdef double* of = &out_f[0, 0]
    cdef i8* ob = &out_bound[0, 0]
    cdef unsigned char* ofits = &out_fits[0]
    cdef long long* omb = &out_maxb[0]
    cdef Py_ssize_t ostride = out_f.shape[1]
    n_blocks = (total + GRID_BLOCK - 1) // GRID_BLOCK
    with nogil:
        for b in prange(n_blocks, num_threads=n_threads, schedule="static"):
            f0 = b * GRID_BLOCK
            f1 = f0 + GRID_BLOCK
            if f1 > total:
                f1 = total
            _grid_block(&g, mp, cp, dp, f0, f1, loop_decode, of, ostride, ob, ofits, omb)


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
               output.shape[0], w_dt.shape[0], kv_dt.shape[0], act_dt.shape[0]]
    if any(length != n for length in lengths):
        raise ValueError("all arrays must have the same length")
    _check_out(out_f, out_bound, out_fits, out_maxb, n)
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
