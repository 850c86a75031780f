# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Cython backend of the per-point roofline kernel.

Design
------
* The physics is ``ext/roofline_simd.h``: the formulas of
  ``engine.core.reference`` (the specification) evaluated eight (AVX-512) or
  four (AVX2, baseline) points at a time with GCC vector extensions, one copy
  per instruction set, the best one picked at the first call;
  ``engine.core.numba_kernels`` is the numba twin. This module validates,
  threads and feeds it tiles of points.
* :func:`roofline` runs over struct-of-arrays points; :func:`roofline_grid`
  over a Cartesian grid, where each thread walks a contiguous block of flat
  indices with an odometer that fills 256-point tiles, so a sweep never
  materialises its input columns.
* Inputs are trusted: ``engine.core.dispatch`` coerces dtypes and layout,
  checks index ranges and allocates outputs before calling. The ``def``
  wrappers here check lengths and shapes (O(1)) but not index values: a call
  that bypasses the dispatch with an out-of-range index reads out of bounds.
  The dispatch also does not check that a chip's rate for a point's
  activation format is finite (the public API refuses such deployments);
  with a NaN rate the C kernel's selects and NumPy's ``max`` treat NaN
  differently.
* Threads are passed explicitly; without OpenMP ``prange`` runs serially
  (``openmp_enabled()`` says which).
"""
from cython.parallel cimport prange
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


def simd_isa():
    """Instruction set of the C kernel clone this CPU runs (avx512 = AVX-512 F/BW/CD/DQ/VL, avx2 or baseline)."""
    return infercast_isa_name().decode()


def max_threads():
    """Threads OpenMP would use by default (1 without OpenMP)."""
    return infercast_max_threads()


cdef extern from "roofline_simd.h" nogil:
    ctypedef struct rf_points:
        const int* model
        const int* chip
        const int* tp
        const int* pp
        const int* batch
        const int* prompt
        const int* output
        const signed char* w
        const signed char* kv
        const signed char* act
    const double RF_EXPM1_SAT
    ctypedef struct rf_tables:
        int perm
    void rf_tables_init(rf_tables* t, const double* mt, long long n_models, const double* ct,
                        long long n_chips, const double* db)
    const char* infercast_isa_name()
    void rf_expm1_array(const double* x, double* y, long long n)
    void rf_tile(const rf_tables* tabs, const rf_points* p, long long n, int loop_decode,
                 double* of, long long ostride, signed char* ob, unsigned char* ofits,
                 long long* omb, long long o0)

#: the C expm1 is exactly -1 at or below this argument; the kernel skips the
#: prefill's where every MoE lane is there (tests/test_simd.py)
EXPM1_SATURATED = RF_EXPM1_SAT

def _expm1_nonpos(const double[::1] x, double[::1] out):
    """out[i] = the C kernel's expm1(x[i]) for x[i] <= 0 (MoE experts touched),
    on the copy of the kernel this CPU runs; for tests against numpy.expm1."""
    cdef Py_ssize_t i, n = x.shape[0]
    if out.shape[0] != n:
        raise ValueError(f"_expm1_nonpos: out has {out.shape[0]} elements, x has {n}")
    for i in range(n):
        if not x[i] <= 0.0:
            raise ValueError(f"_expm1_nonpos: x[{i}] = {x[i]!r} must be <= 0")
    if n:
        rf_expm1_array(&x[0], &out[0], n)


#: points per call of the C tile function (per thread chunk of the point loop)
cdef Py_ssize_t TILE = 256


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
    cdef rf_points pts = _points_of(model_idx, chip_idx, tp, pp, batch, prompt, output,
                                    w_dt, kv_dt, act_dt)
    cdef const double* mp = &mt[0, 0]
    cdef const double* cp = &ct[0, 0]
    cdef const double* dp = &db[0]
    cdef rf_tables tabs
    rf_tables_init(&tabs, mp, mt.shape[0], cp, ct.shape[0], dp)
    cdef double* of = &out_f[0, 0]
    cdef i8* ob = &out_bound[0, 0]
    cdef unsigned char* ofits = &out_fits[0]
    cdef long long* omb = &out_maxb[0]
    cdef Py_ssize_t ostride = out_f.shape[1]
    cdef Py_ssize_t n_tiles = (n + TILE - 1) // TILE
    cdef Py_ssize_t t
    with nogil:
        for t in prange(n_tiles, num_threads=n_threads, schedule="static"):
            _point_tile(&pts, &tabs, t * TILE, min(TILE, n - t * TILE), loop_decode,
                        of, ostride, ob, ofits, omb, out_offset)


cdef rf_points _points_of(const int[::1] model_idx, const int[::1] chip_idx, const int[::1] tp,
                          const int[::1] pp, const int[::1] batch, const int[::1] prompt,
                          const int[::1] output, const i8[::1] w_dt, const i8[::1] kv_dt,
                          const i8[::1] act_dt):
    """Pointers to the ten input arrays (each non-empty) as the C kernel's struct."""
    cdef rf_points p
    p.model = &model_idx[0]
    p.chip = &chip_idx[0]
    p.tp = &tp[0]
    p.pp = &pp[0]
    p.batch = &batch[0]
    p.prompt = &prompt[0]
    p.output = &output[0]
    p.w = <const signed char*>&w_dt[0]
    p.kv = <const signed char*>&kv_dt[0]
    p.act = <const signed char*>&act_dt[0]
    return p


cdef void _point_tile(const rf_points* pts, const rf_tables* tabs, Py_ssize_t start,
                      Py_ssize_t count, bint loop_decode, double* of, Py_ssize_t ostride,
                      i8* ob, unsigned char* ofits, long long* omb,
                      Py_ssize_t out_offset) noexcept nogil:
    """Points start .. start + count - 1 into columns out_offset + start ...."""
    cdef rf_points p
    p.model = pts.model + start
    p.chip = pts.chip + start
    p.tp = pts.tp + start
    p.pp = pts.pp + start
    p.batch = pts.batch + start
    p.prompt = pts.prompt + start
    p.output = pts.output + start
    p.w = pts.w + start
    p.kv = pts.kv + start
    p.act = pts.act + start
    rf_tile(tabs, &p, count, loop_decode, of, ostride, <signed char*>ob, ofits, omb,
            out_offset + start)


cdef struct Grid:
    rf_points axes              # the value array of each axis
    Py_ssize_t size[10]
    Py_ssize_t inner[10]


ctypedef fused axis_t:
    int
    signed char


cdef inline void _fill_runs(axis_t* dst, const axis_t* vals, Py_ssize_t size,
                            Py_ssize_t inner, Py_ssize_t f0, Py_ssize_t k) noexcept nogil:
    """dst[j] = vals[((f0 + j) // inner) % size] for j < k, written run by run."""
    cdef Py_ssize_t q = f0 // inner
    cdef Py_ssize_t left = inner - (f0 - q * inner)   # points left in the current run
    cdef Py_ssize_t r = q % size                       # value index, wrapped by counting
    cdef Py_ssize_t j = 0
    cdef Py_ssize_t e
    cdef axis_t v
    if size == 1:                 # constant axis
        v = vals[0]
        for j in range(k):
            dst[j] = v
        return
    if inner == 1:                # the value changes every point: cycle through vals
        for j in range(k):
            dst[j] = vals[r]
            r += 1
            if r == size:
                r = 0
        return
    while j < k:
        v = vals[r]
        e = j + left
        if e > k:
            e = k
        while j < e:
            dst[j] = v
            j += 1
        r += 1
        if r == size:
            r = 0
        left = inner


cdef void _grid_block(const Grid* g, const rf_tables* tabs, Py_ssize_t f0, Py_ssize_t f1,
                      bint loop_decode, double* of, Py_ssize_t ostride, i8* ob,
                      unsigned char* ofits, long long* omb) noexcept nogil:
    """Points f0..f1-1 of the grid (C order), in 256-point tiles of point inputs.

    Axis ``a`` of the grid is constant over runs of ``inner[a]`` consecutive
    points, so each tile column is filled run by run (no per-point divisions).
    """
    cdef int tm[256]
    cdef int tc[256]
    cdef int ttp[256]
    cdef int tpp[256]
    cdef int tb[256]
    cdef int tpr[256]
    cdef int tou[256]
    cdef signed char tw[256]
    cdef signed char tkv[256]
    cdef signed char tac[256]
    cdef rf_points p
    cdef Py_ssize_t k, t0
    p.model = tm
    p.chip = tc
    p.tp = ttp
    p.pp = tpp
    p.batch = tb
    p.prompt = tpr
    p.output = tou
    p.w = tw
    p.kv = tkv
    p.act = tac
    t0 = f0
    while t0 < f1:
        k = f1 - t0
        if k > 256:
            k = 256
        _fill_runs(tm, g.axes.model, g.size[0], g.inner[0], t0, k)
        _fill_runs(tc, g.axes.chip, g.size[1], g.inner[1], t0, k)
        _fill_runs(ttp, g.axes.tp, g.size[2], g.inner[2], t0, k)
        _fill_runs(tpp, g.axes.pp, g.size[3], g.inner[3], t0, k)
        _fill_runs(tb, g.axes.batch, g.size[4], g.inner[4], t0, k)
        _fill_runs(tpr, g.axes.prompt, g.size[5], g.inner[5], t0, k)
        _fill_runs(tou, g.axes.output, g.size[6], g.inner[6], t0, k)
        _fill_runs(tw, g.axes.w, g.size[7], g.inner[7], t0, k)
        _fill_runs(tkv, g.axes.kv, g.size[8], g.inner[8], t0, k)
        _fill_runs(tac, g.axes.act, g.size[9], g.inner[9], t0, k)
        rf_tile(tabs, &p, k, loop_decode, of, ostride, <signed char*>ob, ofits, omb, t0)
        t0 += k


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
    g.inner[N_GRID_AXES - 1] = 1
    for k in range(N_GRID_AXES - 2, -1, -1):
        g.inner[k] = g.inner[k + 1] * g.size[k + 1]
    _check_tables(mt, ct, db)
    _check_out(out_f, out_bound, out_fits, out_maxb, total)
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    g.axes = _points_of(model_idx, chip_idx, tp, pp, batch, prompt, output, w_dt, kv_dt, act_dt)
    cdef const double* mp = &mt[0, 0]
    cdef const double* cp = &ct[0, 0]
    cdef const double* dp = &db[0]
    cdef rf_tables tabs
    rf_tables_init(&tabs, mp, mt.shape[0], cp, ct.shape[0], dp)
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
            _grid_block(&g, &tabs, f0, f1, loop_decode, of, ostride, ob, ofits, omb)


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
