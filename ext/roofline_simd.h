/*
 * SIMD twin of the per-point roofline physics: RF_W points per operation (eight
 * in the AVX-512 copy, four in the AVX2 and baseline copies).
 *
 * Design
 * ------
 * The formulas are those of engine/core/reference.py (the specification)
 * and of the scalar numba twin, written with GCC vector extensions so that
 * every operation runs on RF_W points at once: portable C, except that the
 * AVX-512 copy keeps lane masks in mask registers and spells compare, select,
 * min and max with <immintrin.h> (GCC made each portable select two XORs over
 * a mask vector there, and each min/max a compare plus such a select; see
 * rf_vm in the body).
 * The body (roofline_simd_body.h) is compiled once per instruction set
 * (AVX-512 F/BW/CD/DQ/VL, AVX2, the build's baseline) and `rf_tile` runs the best
 * copy the CPU has. IEEE arithmetic is lane-wise identical to scalar
 * arithmetic, and the build uses -ffp-contract=off, so every copy gives
 * bit-identical results (tests/test_simd.py), and the same bits as the scalar
 * twins except where MoE lanes use the vector expm1 (within 2 ulp). (Where two
 * different NaNs meet, which only non-finite table values can cause and the
 * public API refuses, the copies may return either one: NaN sign and payload
 * are not part of the promise.)
 *
 * * Data-dependent choices (which roofline line wins, tp > 1, fits) are
 *   selects, not branches; the only branches skip work whose result is known
 *   for every lane of a group (terms no lane has, the saturated expm1 below).
 * * floor() is only taken of clamped, non-negative values below 2^52, where
 *   (x + 2^52) - 2^52 rounds x to the nearest integer exactly; subtracting 1
 *   where that overshot gives floor(x).
 * * Table columns are looked up by one permute each (8 lanes, tables of at
 *   most 16 rows, see rf_tables), else table rows are loaded as 4- or 8-column
 *   blocks and transposed in registers; the bytes-per-element table is looked
 *   up by permute (8 lanes).
 * * expm1 (MoE experts touched) is a branch-free vector function, selected
 *   for MoE lanes (rf_expm1_nonpos; within 2 ulp of numpy.expm1, tested),
 *   and skipped for the prefill where every MoE lane's argument is <=
 *   RF_EXPM1_SAT (-40), where it is exactly -1 (tested).
 * * Layout constants are the kernel ABI of engine/core/layout.py (the
 *   Cython module exports them and tests/test_kernels.py compares).
 */
#ifndef INFERCAST_ROOFLINE_SIMD_H
#define INFERCAST_ROOFLINE_SIMD_H

#include "simd_isa.h"
#if INFERCAST_HAS_CLONES
#include <immintrin.h>     /* the AVX-512 copy's select, min and max */
#endif

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum {
    RF_M_LAYERS = 0, RF_M_HIDDEN = 1, RF_M_FLOP_LIN = 2, RF_M_FLOP_HEAD = 3, RF_M_ATTN_FULL = 4,
    RF_M_ATTN_WIN = 5, RF_M_WINDOW = 6, RF_M_KV_FULL = 7, RF_M_KV_WIN = 8, RF_M_KV_SPLIT = 9,
    RF_M_PARAMS_RESIDENT = 10, RF_M_PARAMS_READ = 11, RF_M_PARAMS_EXPERT = 12, RF_M_EXPERTS = 13,
    RF_M_EXPERTS_ACTIVE = 14, RF_M_LOG_KEEP = 15, RF_N_MODEL_COLS = 16,
    RF_C_INV_FLOPS = 0, RF_C_USABLE_BYTES = 7, RF_C_INV_MEM_BW = 8, RF_C_INV_LINK_BW = 9,
    RF_C_LINK_LATENCY = 10, RF_C_STEP_OVERHEAD = 11, RF_C_HOURLY_USD = 12, RF_C_TDP_W = 13,
    RF_C_SCALEUP_DOMAIN = 14, RF_C_INV_SCALEOUT_BW = 15, RF_C_SCALEOUT_LATENCY = 16,
    RF_N_CHIP_COLS = 17, RF_N_DTYPE_CODES = 7,
    RF_BOUND_NONE = -1, RF_BOUND_COMPUTE = 0, RF_BOUND_MEMORY = 1, RF_BOUND_NETWORK = 2
};

/* Struct-of-arrays inputs of a tile of points (indices already checked). */
typedef struct {
    const int *model, *chip, *tp, *pp, *batch, *prompt, *output;
    const signed char *w, *kv, *act;
} rf_points;

/* The tables of one call. Where it has at most RF_PERM_ROWS models and chips
 * (a sweep or an estimate names a few), each table column is also kept as 16
 * padded values, so the AVX-512 copy looks a column up for eight points with
 * one two-source permute instead of transposing eight rows (rf_deploy). */
#define RF_PERM_ROWS 16
typedef struct {
    const double *mt, *ct, *db;    /* row-major tables in the layout of layout.py */
    int perm;                      /* 1: the column copies below are filled */
    double mt_cols[RF_N_MODEL_COLS][RF_PERM_ROWS] __attribute__((aligned(64)));
    double ct_cols[RF_N_CHIP_COLS][RF_PERM_ROWS] __attribute__((aligned(64)));
} rf_tables;

static void rf_tables_init(rf_tables* t, const double* mt, int64_t n_models, const double* ct,
                           int64_t n_chips, const double* db) {
    t->mt = mt;
    t->ct = ct;
    t->db = db;
    t->perm = n_models <= RF_PERM_ROWS && n_chips <= RF_PERM_ROWS;
    memset(t->mt_cols, 0, sizeof t->mt_cols);
    memset(t->ct_cols, 0, sizeof t->ct_cols);
    if (!t->perm) return;
    for (int64_t r = 0; r < n_models; r++)
        for (int c = 0; c < RF_N_MODEL_COLS; c++) t->mt_cols[c][r] = mt[r * RF_N_MODEL_COLS + c];
    for (int64_t r = 0; r < n_chips; r++)
        for (int c = 0; c < RF_N_CHIP_COLS; c++) t->ct_cols[c][r] = ct[r * RF_N_CHIP_COLS + c];
}

#define RF_INLINE static inline __attribute__((always_inline))

/* rf_expm1_nonpos(x) is exactly -1 for every x <= RF_EXPM1_SAT (tests/test_simd.py
 * reads this value from the extension) */
#define RF_EXPM1_SAT (-40.0)

/* rf_deploy reads model columns 0-15 and chip columns 0-15 in 4- or 8-column
 * blocks, and the chip's column 16 on its own: the layout must not move. */
_Static_assert(RF_M_LAYERS == 0 && RF_M_HIDDEN == 1 && RF_M_FLOP_LIN == 2 && RF_M_FLOP_HEAD == 3 &&
               RF_M_ATTN_FULL == 4 && RF_M_ATTN_WIN == 5 && RF_M_WINDOW == 6 &&
               RF_M_KV_FULL == 7 && RF_M_KV_WIN == 8 && RF_M_KV_SPLIT == 9 &&
               RF_M_PARAMS_RESIDENT == 10 && RF_M_PARAMS_READ == 11 &&
               RF_M_PARAMS_EXPERT == 12 && RF_M_EXPERTS == 13 && RF_M_LOG_KEEP == 15 &&
               RF_N_MODEL_COLS == 16, "model table layout changed: update rf_deploy");
_Static_assert(RF_N_DTYPE_CODES <= 8, "the 8-lane copy keeps the dtype table in one register");
_Static_assert(RF_C_USABLE_BYTES == 7 && RF_C_INV_MEM_BW == 8 && RF_C_INV_LINK_BW == 9 &&
               RF_C_LINK_LATENCY == 10 && RF_C_STEP_OVERHEAD == 11 && RF_C_HOURLY_USD == 12 &&
               RF_C_TDP_W == 13 && RF_C_SCALEUP_DOMAIN == 14 && RF_C_INV_SCALEOUT_BW == 15 &&
               RF_N_CHIP_COLS == 17, "chip table layout changed: update rf_deploy");


/* One copy of the kernel body per instruction set, each compiled whole for its
 * target (a `#pragma GCC target` region), so that GCC lowers the vector code
 * for that target: AVX-512 (F/BW/CD/DQ/VL: eight lanes, one register per vector,
 * mask-register selects), AVX2 (four lanes) and the baseline of the build (four
 * lanes, two registers per vector). Eight lanes on AMD Zen 4, which runs 512-bit
 * operations as two 256-bit halves, took the per-point physics from 5.5e7 to
 * 7.5e7 points/s per thread (sorted points, 2026-11-22), because a vector holds
 * two independent groups; in the AVX2 copy GCC lowered some 8-lane selects lane
 * by lane (3x slower), so that copy keeps four.
 * (Function-level target_clones were tried: GCC lowered the inlined
 * helpers' selects for the baseline target before cloning, lane by lane.) */
#define RF_SFX _base
#define RF_W 4
#include "roofline_simd_body.h"
#undef RF_W
#undef RF_SFX

#if INFERCAST_HAS_CLONES
#define RF_HAS_CLONES 1
#pragma GCC push_options
#pragma GCC target("avx2")
#define RF_SFX _avx2
#define RF_W 4
#include "roofline_simd_body.h"
#undef RF_W
#undef RF_SFX
#pragma GCC pop_options
#pragma GCC push_options
INFERCAST_TARGET_V4      /* x86-64-v4 or its feature list (simd_isa.h) */
#define RF_SFX _v4
#define RF_W 8
#include "roofline_simd_body.h"
#undef RF_W
#undef RF_SFX
#pragma GCC pop_options
#else
#define RF_HAS_CLONES 0
#endif

typedef void (*rf_tile_fn)(const rf_tables*, const rf_points*, int64_t, int, double*, int64_t,
                           signed char*, unsigned char*, long long*, int64_t);


/* n points (struct of arrays) into output columns o0 .. o0 + n - 1, on the
 * best copy of the kernel for this CPU. */
static void rf_tile(const rf_tables* tabs, const rf_points* p,
                    int64_t n, int loop_decode, double* of, int64_t ostride, signed char* ob,
                    unsigned char* ofits, long long* omb, int64_t o0) {
    rf_tile_fn f = rf_tile_isa_base;
#if RF_HAS_CLONES
    int k = infercast_isa();
    f = k == 2 ? rf_tile_isa_v4 : k == 1 ? rf_tile_isa_avx2 : rf_tile_isa_base;
#endif
    f(tabs, p, n, loop_decode, of, ostride, ob, ofits, omb, o0);
}

/* The kernel's expm1 for x <= 0 over an array, on the same copy as rf_tile. */
static void rf_expm1_array(const double* x, double* y, int64_t n) {
#if RF_HAS_CLONES
    int k = infercast_isa();
    if (k == 2) { rf_expm1_array_isa_v4(x, y, n); return; }
    if (k == 1) { rf_expm1_array_isa_avx2(x, y, n); return; }
#endif
    rf_expm1_array_isa_base(x, y, n);
}

#endif
