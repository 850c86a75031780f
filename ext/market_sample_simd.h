/*
 * SIMD sampling stage of the market Monte Carlo (the Cython backend's): the inverse
 * normal CDF that turns the uniform variates of the "normal" stream into standard
 * normal scores (ms_scores), the Gaussian copula (ms_correlate) and the closed-form
 * inverse transforms of the input columns (ms_transform).
 *
 * Design
 * ------
 * * ndtri is Wichura's AS 241 (PPND16): a rational function of degree 7 in
 *   0.180625 - q^2 (q = p - 1/2) for |q| <= 0.425 (ms_central), else of
 *   s = sqrt(-log r), r = min(p, 1 - p) (one for s <= 5, one beyond), negated below
 *   1/2 (ms_tail), with the coefficients and Horner order of the paper. The scalar
 *   twins are in engine/market/kernels/sample_kernel.py (`_ndtri_central_q`,
 *   `_ndtri_tail`, `_fast_from_scores`, `_correlate_columns`): the same IEEE
 *   operations in the same order; the log and exp are the market kernel's mk_log
 *   and mk_exp (ext/market_simd_body.h, twins numba_kernel._log and _exp), erfc is
 *   libm's in both, so the numba and Cython backends draw bit-identical inputs.
 * * Scores in blocks of MS_BLOCK values and two passes: the central rational
 *   function for every value, then the tails (log, sqrt, a second rational
 *   function) for the values outside the centre, gathered into full vectors (the
 *   far tail, s > 5 or p < 1.4e-11, only for vectors with such a lane; selects
 *   merge). Every operation is lane-wise IEEE arithmetic (-ffp-contract=off), so
 *   every copy gives the same bits and a value does not depend on its neighbours.
 * * Scores from uniforms: numpy's Generator.random gives u = k 2^-53, k in
 *   [0, 2^53). The score is Phi^-1 of the cell midpoint p = (k + 1/2) 2^-53, which
 *   is never 0 or 1 and is symmetric (the score of k is minus that of
 *   2^53 - 1 - k). p itself is not a double above 1/2, but AS 241 needs only
 *   q = p - 1/2 = (u - 1/2) + 2^-54 and r = 1/2 - |q|, both exact. (u + 2^-54
 *   would round half of the upper half of the grid onto its neighbours and the
 *   largest u to 1, whose score is +inf.)
 * * Transforms and copula work on MK_W rows at a time: a column's MK_W values are
 *   gathered from the row-major stream (stride nz or nu), transformed as one
 *   vector, scattered into the row-major input matrix (stride MK_N_IN). (Loading
 *   whole rows by register transposes and storing them back the same way was
 *   measured no faster on the 2-core EPYC VM.)
 * * The same body is compiled for the baseline, AVX2 and AVX-512 targets as the
 *   market kernel (market_simd.h, simd_isa.h) and the copy is chosen by the same
 *   rule (infercast_isa). Square roots are the target's vector square-root
 *   instruction (ms_sqrt; correctly rounded, as the scalar twin's math.sqrt).
 *
 * Reference: Wichura, M. J. (1988), "Algorithm AS 241: The percentage points of
 * the normal distribution", Applied Statistics 37(3), 477-484.
 */
#ifndef INFERCAST_MARKET_SAMPLE_SIMD_H
#define INFERCAST_MARKET_SAMPLE_SIMD_H

#include "market_simd.h"

#if defined(__x86_64__) || defined(__SSE2__)
#include <immintrin.h>
#endif

/* AS 241 (PPND16) numerators and denominators, lowest degree first, as printed. */
static const double MS_AS241_A[8] = {
    3.3871328727963666080e0, 1.3314166789178437745e+2, 1.9715909503065514427e+3,
    1.3731693765509461125e+4, 4.5921953931549871457e+4, 6.7265770927008700853e+4,
    3.3430575583588128105e+4, 2.5090809287301226727e+3};
static const double MS_AS241_B[8] = {
    1.0, 4.2313330701600911252e+1, 6.8718700749205790830e+2, 5.3941960214247511077e+3,
    2.1213794301586595867e+4, 3.9307895800092710610e+4, 2.8729085735721942674e+4,
    5.2264952788528545610e+3};
static const double MS_AS241_C[8] = {
    1.42343711074968357734e0, 4.63033784615654529590e0, 5.76949722146069140550e0,
    3.64784832476320460504e0, 1.27045825245236838258e0, 2.41780725177450611770e-1,
    2.27238449892691845833e-2, 7.74545014278341407640e-4};
static const double MS_AS241_D[8] = {
    1.0, 2.05319162663775882187e0, 1.67638483018380384940e0, 6.89767334985100004550e-1,
    1.48103976427480074590e-1, 1.51986665636164571966e-2, 5.47593808499534494600e-4,
    1.05075007164441684324e-9};
static const double MS_AS241_E[8] = {
    6.65790464350110377720e0, 5.46378491116411436990e0, 1.78482653991729133580e0,
    2.96560571828504891230e-1, 2.65321895265761230930e-2, 1.24266094738807843860e-3,
    2.71155556874348757815e-5, 2.01033439929228813265e-7};
static const double MS_AS241_F[8] = {
    1.0, 5.99832206555887937690e-1, 1.36929880922735805310e-1, 1.48753612908506148525e-2,
    7.86869131145613259100e-4, 1.84631831751005468180e-5, 1.42151175831644588870e-7,
    2.04426310338993978564e-15};

/* values per block of the two-pass loop (ms_two_pass); most correlated columns (ms_correlate) */
enum { MS_BLOCK = 256, MS_MAX_CORR = 64 };

/* The stream codes of ms_transform. The table is declared once, in
 * engine/market/kernels/sample_checks.py (CODES, U_CODES, N_PARAMS); this is the C copy,
 * which _market.sample_codes() returns so that tests/test_market_sample.py checks both
 * agree. */
enum {
    MS_FIXED = 0, MS_NORMAL = 1, MS_LOGNORMAL = 2, MS_UNIFORM = 3, MS_TRIANGULAR = 4,
    MS_U_UNIFORM = 5, MS_U_TRIANGULAR = 6, MS_TRUNC_NORMAL = 7, MS_TRUNC_LOGNORMAL = 8,
    MS_U_TRUNC_NORMAL = 9, MS_U_TRUNC_LOGNORMAL = 10,
    MS_N_CODES = 11,
    MS_N_PARAMS = 6,           /* parameters per column */
    /* bit c set: code c reads a uniform variate u (the others but MS_FIXED a normal score) */
    MS_U_CODE_MASK = (1 << MS_U_UNIFORM) | (1 << MS_U_TRIANGULAR) | (1 << MS_U_TRUNC_NORMAL)
                     | (1 << MS_U_TRUNC_LOGNORMAL)
};
#define MS_READS_U(code) ((MS_U_CODE_MASK >> (code)) & 1)

#define MK_SFX _base
#define MK_W 4
#include "market_sample_simd_body.h"
#undef MK_W
#undef MK_SFX

#if MK_HAS_CLONES
#pragma GCC push_options
#pragma GCC target("avx2")
#define MK_SFX _avx2
#define MK_W 4
#include "market_sample_simd_body.h"
#undef MK_W
#undef MK_SFX
#pragma GCC pop_options
#pragma GCC push_options
INFERCAST_TARGET_V4
#define MK_SFX _v4
#define MK_W 8
#include "market_sample_simd_body.h"
#undef MK_W
#undef MK_SFX
#pragma GCC pop_options
#endif

/* Standard normal scores z[i] of the uniforms u[i] = k 2^-53 (cell midpoints, see
 * above), i < n; z may be u (in place). */
static void ms_scores(const double* u, double* z, int64_t n) {
#if MK_HAS_CLONES
    int k = infercast_isa();
    if (k == 2) { ms_scores_isa_v4(u, z, n); return; }
    if (k == 1) { ms_scores_isa_avx2(u, z, n); return; }
#endif
    ms_scores_isa_base(u, z, n);
}

/* z[i] = Phi^-1(p[i]) (AS 241; 0 and 1 give -inf and +inf, p outside [0, 1] or
 * NaN gives NaN), i < n; z may be p. */
static void ms_ndtri(const double* p, double* z, int64_t n) {
#if MK_HAS_CLONES
    int k = infercast_isa();
    if (k == 2) { ms_ndtri_isa_v4(p, z, n); return; }
    if (k == 1) { ms_ndtri_isa_avx2(p, z, n); return; }
#endif
    ms_ndtri_isa_base(p, z, n);
}

/* The closed-form inverse transforms of the input columns (codes 0-10 of
 * engine/market/kernels/sample_kernel.py's _fast_from_scores, whose scalar twin this
 * is): row i of z (nz columns), u (nu columns) into row i of x (MK_N_IN columns),
 * i < n; column c of the k reads z[:, cols[c]] or u[:, cols[c]] and writes
 * x[:, ocols[c]] with params[c * 6 .. c * 6 + 5]. The caller has validated
 * everything (codes, column indices, shapes). */
static void ms_transform(const double* z, int64_t nz, const double* u, int64_t nu, const int64_t* cols,
                         const int64_t* ocols, const int64_t* codes, const double* params, int64_t k,
                         double* x, int64_t n) {
#if MK_HAS_CLONES
    int isa = infercast_isa();
    if (isa == 2) { ms_transform_isa_v4(z, nz, u, nu, cols, ocols, codes, params, k, x, n); return; }
    if (isa == 1) { ms_transform_isa_avx2(z, nz, u, nu, cols, ocols, codes, params, k, x, n); return; }
#endif
    ms_transform_isa_base(z, nz, u, nu, cols, ocols, codes, params, k, x, n);
}

/* Gaussian copula: z[:, cols] <- z[:, cols] @ f.T (f is k x k, row-major), rows
 * 0 .. n-1 of z (nz columns); the vector twin of _correlate_columns
 * (sample_kernel.py), the same sums in the same order. The caller has validated
 * everything (k <= MS_MAX_CORR, distinct columns inside z). */
static void ms_correlate(double* z, int64_t nz, const int64_t* cols, int64_t k, const double* f, int64_t n) {
#if MK_HAS_CLONES
    int isa = infercast_isa();
    if (isa == 2) { ms_correlate_isa_v4(z, nz, cols, k, f, n); return; }
    if (isa == 1) { ms_correlate_isa_avx2(z, nz, cols, k, f, n); return; }
#endif
    ms_correlate_isa_base(z, nz, cols, k, f, n);
}

#endif
