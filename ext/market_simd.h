/*
 * SIMD twin of the per-draw market model: MK_W draws per operation (eight in
 * the AVX-512 copy, four in the AVX2 and baseline copies).
 *
 * Design
 * ------
 * The formulas are those of engine/market/kernels/reference.py (the
 * specification), in the operation order of the scalar twins
 * (engine/market/kernels/numba_kernel.py), written with GCC vector extensions
 * so that every operation runs on MK_W draws at once: portable C, no
 * intrinsics. The draws of a vector are independent Monte Carlo draws, so the
 * year recursion (serial within a draw) runs MK_W draws side by side and the
 * latency of its divisions and exponentials is shared.
 *
 * * The body (market_simd_body.h) is compiled once per instruction set
 *   (AVX-512 F/BW/CD/DQ/VL, AVX2, the build's baseline) and `mk_block` runs
 *   the best copy the CPU has; INFERCAST_SIMD=avx2|baseline picks a lower one
 *   (tests, benchmarks). The choice is read once.
 * * Every operation is lane-wise IEEE arithmetic (the build uses
 *   -ffp-contract=off: no fused multiply-add), and the only data-dependent
 *   choices are selects, so every copy gives bit-identical results
 *   (tests/test_market_simd.py) and a draw's result does not depend on the
 *   other draws of its vector or on the padding of a short tail.
 * * exp, log and pow (the per-draw set-up and two exponentials per year) are
 *   the branch-free vector functions mk_exp, mk_log and mk_pow_pos, and the
 *   reciprocal square root of the budget ceiling is the Newton iteration
 *   mk_rsqrt (no vector square root without -fno-math-errno); each is tested
 *   against NumPy (tests/test_market_simd.py): within 2 ulp, pow within the
 *   bound of its exp(y log q) evaluation.
 * * Outputs are written series-major: output k of year t of draw i goes to
 *   o[(k T + t) stride + i], the layout of the fused summaries kernel's
 *   sub-batch buffer, so MK_W draws are MK_W contiguous doubles.
 * * Layout constants are those of engine/market/kernels/layout.py (the Cython
 *   module repeats them and tests/test_market_kernels.py compares).
 */
#ifndef INFERCAST_MARKET_SIMD_H
#define INFERCAST_MARKET_SIMD_H

#include "simd_isa.h"

#include <math.h>
#if INFERCAST_HAS_CLONES
#include <immintrin.h>     /* MINPD / MAXPD in the AVX2 and AVX-512 copies (mk_min, mk_max) */
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { MK_N_IN = 45, MK_N_OUT = 18, MK_N_YP = 6, MK_MAX_W = 8 };
/* years per chunk of the two-pass year loop (mk_eval) */
enum { MK_TCH = 16 };
/* streaming histogram layout (engine/market/kernels/layout.py) */
enum {
    MK_HIST_MANTISSA_BITS = 7, MK_HIST_SHIFT = 52 - MK_HIST_MANTISSA_BITS,
    MK_HIST_KEY_LO = (1023 - 128) << MK_HIST_MANTISSA_BITS,
    MK_HIST_KEY_HI = (1023 + 128) << MK_HIST_MANTISSA_BITS,
    MK_HIST_HALF = MK_HIST_KEY_HI - MK_HIST_KEY_LO, MK_HIST_ZERO = MK_HIST_HALF,
    MK_HIST_BINS = 2 * MK_HIST_HALF + 1
};
_Static_assert(MK_HIST_SHIFT >= 32, "mk_bins reads the high 32 bits of each value only");

#define MK_INLINE static inline __attribute__((always_inline))

/* One copy of the body per instruction set, each compiled whole for its target
 * (as in roofline_simd.h): the baseline of the build (four lanes), AVX2 (four
 * lanes) and x86-64-v4 / AVX-512 (eight lanes). */
#define MK_SFX _base
#define MK_W 4
#define MK_ISA 0
#include "market_simd_body.h"
#undef MK_ISA
#undef MK_W
#undef MK_SFX

#if INFERCAST_HAS_CLONES
#define MK_HAS_CLONES 1
#pragma GCC push_options
#pragma GCC target("avx2")
#define MK_SFX _avx2
#define MK_W 4
#define MK_ISA 1
#include "market_simd_body.h"
#undef MK_ISA
#undef MK_W
#undef MK_SFX
#pragma GCC pop_options
#pragma GCC push_options
INFERCAST_TARGET_V4      /* x86-64-v4 or its feature list (simd_isa.h) */
#define MK_SFX _v4
#define MK_W 8
#define MK_ISA 2
#include "market_simd_body.h"
#undef MK_ISA
#undef MK_W
#undef MK_SFX
#pragma GCC pop_options
#else
#define MK_HAS_CLONES 0
#endif


/* Draws 0 .. n-1 (rows of x, MK_N_IN columns) into o[(k T + t) stride + i].
 * stride >= n rounded up to a multiple of MK_MAX_W: the last vector writes its
 * padding lanes (copies of draw n-1) up to there. */
static void mk_block(const double* x, int64_t n, const double* yp, int T, double* o,
                     int64_t stride) {
#if MK_HAS_CLONES
    int k = infercast_isa();
    if (k == 2) { mk_block_isa_v4(x, n, yp, T, o, stride); return; }
    if (k == 1) { mk_block_isa_avx2(x, n, yp, T, o, stride); return; }
#endif
    mk_block_isa_base(x, n, yp, T, o, stride);
}

/* Histogram bins of one series' values (mk_bins_isa) on the copy mk_block runs; 1 where a value is
 * clamped, inf or NaN, else 0. */
static int64_t mk_bins(const double* v, int64_t n, int32_t* idx, int64_t* lo, int64_t* hi) {
#if MK_HAS_CLONES
    int k = infercast_isa();
    if (k == 2) return mk_bins_isa_v4(v, n, idx, lo, hi);
    if (k == 1) return mk_bins_isa_avx2(v, n, idx, lo, hi);
#endif
    return mk_bins_isa_base(v, n, idx, lo, hi);
}

/* Running sums of nser series in draw order (mk_sums_isa) on the copy mk_block runs. */
static void mk_sums(const double* v, int64_t stride, int64_t n, int nser, double* acc) {
#if MK_HAS_CLONES
    int k = infercast_isa();
    if (k == 2) { mk_sums_isa_v4(v, stride, n, nser, acc); return; }
    if (k == 1) { mk_sums_isa_avx2(v, stride, n, nser, acc); return; }
#endif
    mk_sums_isa_base(v, stride, n, nser, acc);
}

/* Draws 0 .. n-1 into out[i, k, t] (shape (n, MK_N_OUT, T)), MK_MAX_W draws at a
 * time through a series-major buffer that stays in L1; 0, or -1 when the
 * buffer cannot be allocated. */
static int mk_values(const double* x, int64_t n, const double* yp, int T, double* out) {
    int64_t ns = (int64_t)MK_N_OUT * T;
    double* buf = (double*)malloc((size_t)(ns * MK_MAX_W) * sizeof(double));
    if (buf == NULL) return -1;
    for (int64_t i0 = 0; i0 < n; i0 += MK_MAX_W) {
        int64_t m = n - i0 < MK_MAX_W ? n - i0 : MK_MAX_W;
        mk_block(x + i0 * MK_N_IN, m, yp, T, buf, MK_MAX_W);
        double* dst = out + i0 * ns;
        if (m == MK_MAX_W) {        /* eight output rows written side by side */
            for (int64_t s = 0; s < ns; s++)
                for (int i = 0; i < MK_MAX_W; i++) dst[i * ns + s] = buf[s * MK_MAX_W + i];
        } else {
            for (int64_t s = 0; s < ns; s++)
                for (int64_t i = 0; i < m; i++) dst[i * ns + s] = buf[s * MK_MAX_W + i];
        }
    }
    free(buf);
    return 0;
}

/* The kernel's exp, 1/sqrt, log and pow over arrays (which: 0 exp, 1 rsqrt,
 * 2 log, 3 pow with exponent p), on the copy mk_block runs (tests compare them
 * with NumPy). */
typedef void (*mk_array_fn)(const double*, double*, int64_t, double);
static void mk_math_array(int which, const double* x, double* y, int64_t n, double p) {
    static const mk_array_fn base[4] = {mk_exp_array_isa_base, mk_rsqrt_array_isa_base,
                                        mk_log_array_isa_base, mk_pow_array_isa_base};
    const mk_array_fn* fns = base;
#if MK_HAS_CLONES
    static const mk_array_fn avx2[4] = {mk_exp_array_isa_avx2, mk_rsqrt_array_isa_avx2,
                                        mk_log_array_isa_avx2, mk_pow_array_isa_avx2};
    static const mk_array_fn v4[4] = {mk_exp_array_isa_v4, mk_rsqrt_array_isa_v4,
                                      mk_log_array_isa_v4, mk_pow_array_isa_v4};
    int k = infercast_isa();
    fns = k == 2 ? v4 : k == 1 ? avx2 : base;
#endif
    fns[which](x, y, n, p);
}

#endif
