/*
 * Body of the SIMD roofline kernel, included once per instruction set by
 * roofline_simd.h with RF_SFX set (no include guard on purpose). Every
 * function name gets the suffix, so each copy is compiled whole for its
 * target and dispatched at run time (see roofline_simd.h).
 */
#ifndef RF_SFX
#error "include roofline_simd.h, not this file"
#endif
#define RF_F3(n, s) n##s
#define RF_F2(n, s) RF_F3(n, s)
#define RF_F(n) RF_F2(n, RF_SFX)
#define rf_b RF_F(rf_b)
#define rf_l RF_F(rf_l)
#define rf_sel RF_F(rf_sel)
#define rf_min RF_F(rf_min)
#define rf_max RF_F(rf_max)
#define rf_floor RF_F(rf_floor)
#define rf_ceil RF_F(rf_ceil)
#define rf_series RF_F(rf_series)
#define rf_sum_max_affine RF_F(rf_sum_max_affine)
#define rf_bound RF_F(rf_bound)
#define rf_expm1_nonpos RF_F(rf_expm1_nonpos)
#define rf_gather RF_F(rf_gather)
#define rf_deploy RF_F(rf_deploy)
#define rf_network RF_F(rf_network)
#define rf_store RF_F(rf_store)
#define rf_eval RF_F(rf_eval)
#define rf_tile_isa RF_F(rf_tile_isa)
#define rf_expm1_array_isa RF_F(rf_expm1_array_isa)
#ifndef RF_W
#error "RF_W (lanes per vector) must be defined"
#endif
#if RF_W != 4 && RF_W != 8
#error "RF_W must be 4 or 8"
#endif
#define rf_vd RF_F(rf_vd)
#define rf_vl RF_F(rf_vl)
#define rf_vi RF_F(rf_vi)
#define rf_vc RF_F(rf_vc)
#define rf_dep RF_F(rf_dep)
#define rf_load_cols RF_F(rf_load_cols)
#define rf_dtype_bytes RF_F(rf_dtype_bytes)
#define rf_dtype_table RF_F(rf_dtype_table)
#define rf_any RF_F(rf_any)
#define rf_perm16 RF_F(rf_perm16)
#define rf_andnot RF_F(rf_andnot)
#define rf_ones RF_F(rf_ones)
#define rf_or RF_F(rf_or)
#define rf_and RF_F(rf_and)
#define rf_eq_l RF_F(rf_eq_l)
#define rf_eq RF_F(rf_eq)
#define rf_ge RF_F(rf_ge)
#define rf_gt RF_F(rf_gt)
#define rf_le RF_F(rf_le)
#define rf_lt RF_F(rf_lt)
#define rf_vm RF_F(rf_vm)

/* RF_W lanes per vector (4 or 8, set by roofline_simd.h per copy). */
typedef double rf_vd __attribute__((vector_size(8 * RF_W)));
typedef int64_t rf_vl __attribute__((vector_size(8 * RF_W)));
typedef int32_t rf_vi __attribute__((vector_size(4 * RF_W)));
typedef signed char rf_vc __attribute__((vector_size(RF_W)));

/* Per-deployment constants of RF_W lanes (see _deploy in the scalar twins). */
typedef struct {
    rf_vd wb, kb, ab, inv_f, inv_bw, inv_link, lat, ovh, layers, hidden, w, kv_full, kv_win;
    rf_vd n_exp, log_keep, kv_frac, inv_chips, inv_tp, tp, pp, weight_bytes, room;
    rf_vd kv_seq_unit, kv_tok_bytes, act_tok_bytes, wread_unit, flop_lin, flop_head;
    rf_vd attn_full, attn_win, p_read, p_exp, hourly, tdp, n_chips;
    rf_vd tp_inv_link, tp_lat, inv_out, lat_out, within, cross;
    /* network terms some lane has: 1 tensor-parallel ring, 2 hand-offs inside the
     * domain, 4 hand-offs across it (rf_network skips the others: they select 0) */
    int net_terms;
} rf_dep;



RF_INLINE rf_vd rf_b(double c) {
    rf_vd v;
    for (int l = 0; l < RF_W; l++) v[l] = c;
    return v;
}
RF_INLINE rf_vl rf_l(int64_t c) {
    rf_vl v;
    for (int l = 0; l < RF_W; l++) v[l] = c;
    return v;
}
/* Lane masks. The AVX-512 copy keeps them in mask registers (__mmask8) and
 * spells compare, select, min and max with the instructions GCC did not find
 * on its own in this kernel: from the vector-extension form it made each mask
 * a vector and each select two XORs, and min/max a compare plus that select.
 * The predicates are the quiet forms of C's <, <=, >, >=, == (false on NaN,
 * like the operators); vminpd/vmaxpd compute exactly `a < b ? a : b` and
 * `a > b ? a : b` (the second operand on equality or NaN). So every copy
 * gives the same bits. The other copies keep the portable vector form. */
#if RF_W == 8
typedef __mmask8 rf_vm;
RF_INLINE rf_vm rf_lt(rf_vd a, rf_vd b) { return _mm512_cmp_pd_mask((__m512d)a, (__m512d)b, _CMP_LT_OQ); }
RF_INLINE rf_vm rf_le(rf_vd a, rf_vd b) { return _mm512_cmp_pd_mask((__m512d)a, (__m512d)b, _CMP_LE_OQ); }
RF_INLINE rf_vm rf_gt(rf_vd a, rf_vd b) { return _mm512_cmp_pd_mask((__m512d)a, (__m512d)b, _CMP_GT_OQ); }
RF_INLINE rf_vm rf_ge(rf_vd a, rf_vd b) { return _mm512_cmp_pd_mask((__m512d)a, (__m512d)b, _CMP_GE_OQ); }
RF_INLINE rf_vm rf_eq(rf_vd a, rf_vd b) { return _mm512_cmp_pd_mask((__m512d)a, (__m512d)b, _CMP_EQ_OQ); }
RF_INLINE rf_vm rf_eq_l(rf_vl a, rf_vl b) { return _mm512_cmpeq_epi64_mask((__m512i)a, (__m512i)b); }
RF_INLINE rf_vm rf_and(rf_vm a, rf_vm b) { return (rf_vm)(a & b); }
RF_INLINE rf_vm rf_or(rf_vm a, rf_vm b) { return (rf_vm)(a | b); }
RF_INLINE rf_vm rf_andnot(rf_vm a, rf_vm b) { return (rf_vm)(a & ~b); }
RF_INLINE int rf_any(rf_vm m) { return m != 0; }
RF_INLINE rf_vd rf_sel(rf_vm m, rf_vd a, rf_vd b) {
    return (rf_vd)_mm512_mask_blend_pd(m, (__m512d)b, (__m512d)a);
}
RF_INLINE rf_vd rf_min(rf_vd a, rf_vd b) { return (rf_vd)_mm512_min_pd((__m512d)a, (__m512d)b); }
RF_INLINE rf_vd rf_max(rf_vd a, rf_vd b) { return (rf_vd)_mm512_max_pd((__m512d)a, (__m512d)b); }
#else
typedef rf_vl rf_vm;
RF_INLINE rf_vm rf_lt(rf_vd a, rf_vd b) { return a < b; }
RF_INLINE rf_vm rf_le(rf_vd a, rf_vd b) { return a <= b; }
RF_INLINE rf_vm rf_gt(rf_vd a, rf_vd b) { return a > b; }
RF_INLINE rf_vm rf_ge(rf_vd a, rf_vd b) { return a >= b; }
RF_INLINE rf_vm rf_eq(rf_vd a, rf_vd b) { return a == b; }
RF_INLINE rf_vm rf_eq_l(rf_vl a, rf_vl b) { return a == b; }
RF_INLINE rf_vm rf_and(rf_vm a, rf_vm b) { return a & b; }
RF_INLINE rf_vm rf_or(rf_vm a, rf_vm b) { return a | b; }
RF_INLINE rf_vm rf_andnot(rf_vm a, rf_vm b) { return a & ~b; }
RF_INLINE int rf_any(rf_vm m) {
    int64_t any = 0;
    for (int l = 0; l < RF_W; l++) any |= m[l];
    return any != 0;
}
RF_INLINE rf_vd rf_sel(rf_vm m, rf_vd a, rf_vd b) {
    return (rf_vd)(((rf_vl)a & m) | ((rf_vl)b & ~m));
}
RF_INLINE rf_vd rf_min(rf_vd a, rf_vd b) { return rf_sel(a < b, a, b); }
RF_INLINE rf_vd rf_max(rf_vd a, rf_vd b) { return rf_sel(a > b, a, b); }
#endif
/* 1 in the lanes of m, else 0 (int64 lanes) */
#if RF_W == 8
RF_INLINE rf_vl rf_ones(rf_vm m) { return (rf_vl)rf_sel(m, (rf_vd)rf_l(1), (rf_vd)rf_l(0)); }
#else
RF_INLINE rf_vl rf_ones(rf_vm m) { return m & 1; }
#endif
/* floor for 0 <= x < 2^52 (callers clamp first) */
RF_INLINE rf_vd rf_floor(rf_vd x) {
    const double two52 = 4503599627370496.0;
    rf_vd t = (x + two52) - two52;
    return t - rf_sel(rf_gt(t, x), rf_b(1.0), rf_b(0.0));
}
RF_INLINE rf_vd rf_ceil(rf_vd x) {           /* for 0 <= x < 2^52 */
    rf_vd f = rf_floor(x);
    return f + rf_sel(rf_lt(f, x), rf_b(1.0), rf_b(0.0));
}

/* Sum of a + b c over integers c in [lo, hi] (0 when hi < lo). */
RF_INLINE rf_vd rf_series(rf_vd a, rf_vd b, rf_vd lo, rf_vd hi) {
    rf_vd n = rf_max(hi - lo + 1.0, rf_b(0.0));
    return n * a + b * (lo + hi) * n * 0.5;
}

/* Exact sum over integer c in [lo, hi] of max(a1 + b1 c, a2 + b2 c): contexts
 * below m = floor(clamp(c*, lo - 1, hi)) + 1 take the line that wins below the
 * crossover c* = (a2 - a1) / (b1 - b2), the rest the other one; parallel lines
 * take the higher one everywhere. */
RF_INLINE rf_vd rf_sum_max_affine(rf_vd a1, rf_vd b1, rf_vd a2, rf_vd b2, rf_vd lo, rf_vd hi) {
    rf_vd d = b1 - b2;
    rf_vm par = rf_eq(d, rf_b(0.0));
    rf_vd q = (a2 - a1) / rf_sel(par, rf_b(1.0), d);
    rf_vd m = rf_floor(rf_min(rf_max(q, lo - 1.0), hi)) + 1.0;
    m = rf_sel(par, lo, m);
    rf_vm up1 = rf_or(rf_gt(d, rf_b(0.0)), rf_and(par, rf_ge(a1, a2)));
    rf_vd au = rf_sel(up1, a1, a2), bu = rf_sel(up1, b1, b2);
    rf_vd al = rf_sel(up1, a2, a1), bl = rf_sel(up1, b2, b1);
    return rf_series(al, bl, lo, m - 1.0) + rf_series(au, bu, m, hi);
}

/* expm1(x) for x <= 0 (inputs below -60 give -1, as expm1 does in double).
 * Reduction x = k ln2 + r, |r| <= ln2/2, with k = round(x / ln2) (the
 * 1.5 * 2^52 rounding trick) and the Cody-Waite split of ln2 from fdlibm's
 * e_exp.c / s_expm1.c; expm1(r) by its Taylor series to r^14 (truncation
 * < 2^-60 relative on |r| <= ln2/2; evaluated by Estrin's scheme); then expm1(x) = 2^k expm1(r) + (2^k - 1).
 * Tested against numpy.expm1 to 2 ulp (tests/test_simd.py); k <= 0 and
 * |1 - 2^k| >= 1/2 when k != 0, so the last sum does not cancel.
 * Reference: Muller, "Elementary Functions", 3rd ed., ch. 11 (range
 * reduction); Sun Microsystems fdlibm 5.3, s_expm1.c. */
RF_INLINE rf_vd rf_expm1_nonpos(rf_vd x) {
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    const double inv_ln2 = 1.44269504088896338700e+00, round_c = 6755399441055744.0;
    x = rf_max(x, rf_b(-60.0));
    rf_vd bk = x * inv_ln2 + round_c;          /* mantissa holds round(x / ln2) */
    rf_vd k = bk - round_c;
    rf_vd r = (x - k * ln2_hi) - k * ln2_lo;
    static const double c[13] = {
        1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040, 1.0 / 40320,
        1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600, 1.0 / 6227020800.0,
        1.0 / 87178291200.0};
    /* q = sum c_i r^i by Estrin's scheme (pairs, then r^2, r^4, r^8 steps): 8
     * dependent operations instead of Horner's 24, so the out-of-order core
     * overlaps it with the rest of the point (Muller ch. 5.4) */
    rf_vd r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
    rf_vd p01 = c[0] + c[1] * r, p23 = c[2] + c[3] * r, p45 = c[4] + c[5] * r;
    rf_vd p67 = c[6] + c[7] * r, p89 = c[8] + c[9] * r, pab = c[10] + c[11] * r;
    rf_vd q03 = p01 + p23 * r2, q47 = p45 + p67 * r2, q8b = p89 + pab * r2;
    rf_vd q = (q03 + q47 * r4) + (q8b + c[12] * r4) * r8;
    rf_vd p = r + r2 * q;
    rf_vl kbits = (rf_vl)bk - (rf_vl)rf_b(round_c);
    rf_vd s = (rf_vd)((kbits + 1023) << 52);   /* 2^k */
    return p * s + (s - 1.0);
}

/* bound code: network when it exceeds both roofs, else compute/memory */
RF_INLINE rf_vl rf_bound(rf_vd t_comp, rf_vd t_mem, rf_vd t_net) {
    rf_vl code = (rf_vl)rf_sel(rf_ge(t_comp, t_mem), (rf_vd)rf_l(RF_BOUND_COMPUTE),
                               (rf_vd)rf_l(RF_BOUND_MEMORY));
    return (rf_vl)rf_sel(rf_gt(t_net, rf_max(t_comp, t_mem)), (rf_vd)rf_l(RF_BOUND_NETWORK),
                         (rf_vd)code);
}

/* Columns c0 .. c0 + RF_W - 1 of RF_W table rows as RF_W column vectors: one
 * RF_W-double load per row and an RF_W x RF_W transpose (8 shuffles for 4 x 4,
 * 24 for 8 x 8) instead of RF_W^2 scalar loads. The caller keeps
 * c0 + RF_W <= ncols. */
RF_INLINE void rf_load_cols(const double* tab, int ncols, const int* rows, int c0, rf_vd out[RF_W]) {
    rf_vd r[RF_W];
#define RF_ROW(l) memcpy(&r[l], tab + (int64_t)rows[l] * ncols + c0, sizeof(rf_vd))
    RF_ROW(0); RF_ROW(1); RF_ROW(2); RF_ROW(3);
#if RF_W == 8
    RF_ROW(4); RF_ROW(5); RF_ROW(6); RF_ROW(7);
#endif
#undef RF_ROW
#if RF_W == 4
    rf_vd t0 = __builtin_shuffle(r[0], r[1], (rf_vl){0, 4, 2, 6});
    rf_vd t1 = __builtin_shuffle(r[0], r[1], (rf_vl){1, 5, 3, 7});
    rf_vd t2 = __builtin_shuffle(r[2], r[3], (rf_vl){0, 4, 2, 6});
    rf_vd t3 = __builtin_shuffle(r[2], r[3], (rf_vl){1, 5, 3, 7});
    out[0] = __builtin_shuffle(t0, t2, (rf_vl){0, 1, 4, 5});
    out[1] = __builtin_shuffle(t1, t3, (rf_vl){0, 1, 4, 5});
    out[2] = __builtin_shuffle(t0, t2, (rf_vl){2, 3, 6, 7});
    out[3] = __builtin_shuffle(t1, t3, (rf_vl){2, 3, 6, 7});
#else
    rf_vd t[8], u[8];
    for (int k = 0; k < 8; k += 2) {      /* pairs of rows: even and odd columns */
        t[k] = __builtin_shuffle(r[k], r[k + 1], (rf_vl){0, 8, 2, 10, 4, 12, 6, 14});
        t[k + 1] = __builtin_shuffle(r[k], r[k + 1], (rf_vl){1, 9, 3, 11, 5, 13, 7, 15});
    }
    for (int k = 0; k < 8; k += 4) {      /* quads of rows */
        u[k] = __builtin_shuffle(t[k], t[k + 2], (rf_vl){0, 1, 8, 9, 4, 5, 12, 13});
        u[k + 1] = __builtin_shuffle(t[k], t[k + 2], (rf_vl){2, 3, 10, 11, 6, 7, 14, 15});
        u[k + 2] = __builtin_shuffle(t[k + 1], t[k + 3], (rf_vl){0, 1, 8, 9, 4, 5, 12, 13});
        u[k + 3] = __builtin_shuffle(t[k + 1], t[k + 3], (rf_vl){2, 3, 10, 11, 6, 7, 14, 15});
    }
    /* u[0..3] hold rows 0-3 of columns (0,4), (2,6), (1,5), (3,7); u[4..7] rows 4-7 */
    static const int col_of[4] = {0, 2, 1, 3};
    for (int k = 0; k < 4; k++) {
        out[col_of[k]] = __builtin_shuffle(u[k], u[k + 4], (rf_vl){0, 1, 2, 3, 8, 9, 10, 11});
        out[col_of[k] + 4] = __builtin_shuffle(u[k], u[k + 4], (rf_vl){4, 5, 6, 7, 12, 13, 14, 15});
    }
#endif
}

/* One column of RF_W table rows (per-lane loads). */
RF_INLINE rf_vd rf_gather(const double* tab, int ncols, const int* rows, const int* cols) {
    rf_vd v;
    for (int l = 0; l < RF_W; l++) v[l] = tab[(int64_t)rows[l] * ncols + cols[l]];
    return v;
}

/* Bytes per element of each lane's format code (codes checked < RF_N_DTYPE_CODES):
 * with 8 lanes the whole table sits in one register (`dtab`, built once per
 * tile by rf_dtype_table) and one permute looks it up. */
RF_INLINE rf_vd rf_dtype_table(const double* db) {
    rf_vd tab = rf_b(0.0);
#if RF_W == 8
    for (int k = 0; k < RF_N_DTYPE_CODES; k++) tab[k] = db[k];
#endif
    return tab;
}

RF_INLINE rf_vd rf_dtype_bytes(rf_vd dtab, const double* db, rf_vi code) {
#if RF_W == 8
    (void)db;
    return __builtin_shuffle(dtab, __builtin_convertvector(code, rf_vl));
#else
    (void)dtab;
    int zero[RF_W] = {0}, c[RF_W];
    memcpy(c, &code, sizeof c);
    return rf_gather(db, 0, zero, c);
#endif
}


/* Column `col` (RF_PERM_ROWS padded values) at each lane's row: one two-source
 * permute (vpermt2pd) in the 8-lane copy. */
RF_INLINE rf_vd rf_perm16(const double* col, rf_vl rows) {
    rf_vd lo, hi;
    memcpy(&lo, col, sizeof lo);
    memcpy(&hi, col + RF_W, sizeof hi);
    return __builtin_shuffle(lo, hi, rows);
}

RF_INLINE void rf_deploy(rf_dep* d, const rf_tables* T, rf_vd dtab, rf_vi mv, rf_vi cv,
                         rf_vd tp, rf_vd pp, rf_vi wd, rf_vi kd, rf_vi ad) {
    const double *mt = T->mt, *ct = T->ct, *db = T->db;
    int mi[RF_W], ci[RF_W];       /* table rows of the lanes, for the transposes and gathers */
    memcpy(mi, &mv, sizeof mi);
    memcpy(ci, &cv, sizeof ci);
    d->wb = rf_dtype_bytes(dtab, db, wd);
    d->kb = rf_dtype_bytes(dtab, db, kd);
    d->ab = rf_dtype_bytes(dtab, db, ad);
    /* model columns 0-15, chip columns 0-16 (4 lanes: 4-16), layout.py order (the
     * _Static_asserts in roofline_simd.h pin it) */
    rf_vd m[16], c[17];
#if RF_W == 8
    if (T->perm) {        /* <= 16 rows: one permute per column */
        rf_vl mr = __builtin_convertvector(mv, rf_vl), cr = __builtin_convertvector(cv, rf_vl);
        for (int k = 0; k < 16; k++) m[k] = rf_perm16(T->mt_cols[k], mr);
        for (int k = 0; k < 17; k++) c[k] = rf_perm16(T->ct_cols[k], cr);
    } else
#endif
    {                     /* RF_W-column blocks of RF_W rows, transposed */
        int lat_col[RF_W];
        for (int l = 0; l < RF_W; l++) lat_col[l] = RF_C_SCALEOUT_LATENCY;
        for (int c0 = 0; c0 < 16; c0 += RF_W) rf_load_cols(mt, RF_N_MODEL_COLS, mi, c0, m + c0);
        for (int c0 = RF_W == 8 ? 0 : 4; c0 < 16; c0 += RF_W)
            rf_load_cols(ct, RF_N_CHIP_COLS, ci, c0, c + c0);
        c[RF_C_SCALEOUT_LATENCY] = rf_gather(ct, RF_N_CHIP_COLS, ci, lat_col);
    }
#if RF_W == 8
    /* 1 / peak FLOP/s of each lane's activation format: columns 0-6 are in registers */
    {
        rf_vl a8 = __builtin_convertvector(ad, rf_vl);
        rf_vd f = c[RF_C_INV_FLOPS];
        for (int k = 1; k < RF_N_DTYPE_CODES; k++) f = rf_sel(rf_eq_l(a8, rf_l(k)), c[RF_C_INV_FLOPS + k], f);
        d->inv_f = f;
    }
#else
    {
        int finv[RF_W];
        memcpy(finv, &ad, sizeof finv);
        for (int l = 0; l < RF_W; l++) finv[l] += RF_C_INV_FLOPS;
        d->inv_f = rf_gather(ct, RF_N_CHIP_COLS, ci, finv);
    }
#endif
    d->layers = m[RF_M_LAYERS]; d->hidden = m[RF_M_HIDDEN];
    d->flop_lin = m[RF_M_FLOP_LIN]; d->flop_head = m[RF_M_FLOP_HEAD];
    d->attn_full = m[RF_M_ATTN_FULL]; d->attn_win = m[RF_M_ATTN_WIN]; d->w = m[RF_M_WINDOW];
    d->kv_full = m[RF_M_KV_FULL]; d->kv_win = m[RF_M_KV_WIN];
    rf_vd kv_split = m[RF_M_KV_SPLIT], resident = m[RF_M_PARAMS_RESIDENT];
    d->p_read = m[RF_M_PARAMS_READ];
    d->p_exp = m[RF_M_PARAMS_EXPERT]; d->n_exp = m[RF_M_EXPERTS]; d->log_keep = m[RF_M_LOG_KEEP];
    rf_vd usable = c[RF_C_USABLE_BYTES];
    d->inv_bw = c[RF_C_INV_MEM_BW]; d->inv_link = c[RF_C_INV_LINK_BW];
    d->lat = c[RF_C_LINK_LATENCY]; d->ovh = c[RF_C_STEP_OVERHEAD];
    d->hourly = c[RF_C_HOURLY_USD]; d->tdp = c[RF_C_TDP_W];
    rf_vd domain = c[RF_C_SCALEUP_DOMAIN];
    d->inv_out = c[RF_C_INV_SCALEOUT_BW];
    d->lat_out = c[RF_C_SCALEOUT_LATENCY];

    d->tp = tp;
    d->pp = pp;
    d->kv_frac = 1.0 / rf_min(tp, kv_split);
    d->inv_chips = 1.0 / (tp * pp);
    d->inv_tp = pp * d->inv_chips;
    d->weight_bytes = resident * d->wb * d->inv_chips;
    d->room = rf_max(usable - d->weight_bytes, rf_b(0.0));
    d->kv_seq_unit = d->kb * d->kv_frac;
    d->kv_tok_bytes = d->kb * d->kv_frac * (d->kv_full + d->kv_win);
    d->act_tok_bytes = 2.0 * d->layers * d->hidden * d->ab;
    d->wread_unit = d->wb * d->inv_tp;
    d->n_chips = tp * pp;
    /* tensor-parallel ring: scale-up link inside the domain, scale-out beyond */
    rf_vm inside = rf_le(tp, domain);
    d->tp_inv_link = rf_sel(inside, d->inv_link, d->inv_out);
    d->tp_lat = rf_sel(inside, d->lat, d->lat_out);
    /* pipeline hand-offs leaving a domain of floor(domain / tp) stages; an
     * unbounded domain (inf) leaves none. Values are clamped below 2^52. */
    if (rf_any(rf_gt(pp, rf_b(1.0)))) {
        rf_vd spd = rf_max(rf_floor(rf_min(domain / tp, rf_b(4503599627370495.0))), rf_b(1.0));
        d->cross = rf_max(rf_ceil(pp / spd) - 1.0, rf_b(0.0));
    } else {
        d->cross = rf_b(0.0);     /* pp = 1 in every lane: ceil(1 / spd) - 1 = 0 exactly */
    }
    d->within = pp - 1.0 - d->cross;
    rf_vd zero = rf_b(0.0);
    d->net_terms = (rf_any(rf_gt(tp, rf_b(1.0))) ? 1 : 0) | (rf_any(rf_gt(d->within, zero)) ? 2 : 0)
                   | (rf_any(rf_gt(d->cross, zero)) ? 4 : 0);
}

/* Two ring all-reduces per layer plus the stage hand-offs of one pass [s]. */
RF_INLINE rf_vd rf_network(rf_vd n_tok, const rf_dep* d) {
    rf_vd zero = rf_b(0.0);
    rf_vd t_ar = zero, t_in = zero, t_out = zero;
    if (d->net_terms == 0) return zero;
    rf_vd msg = n_tok * d->hidden * d->ab;
    if (d->net_terms & 1) {
        rf_vd ar = 2.0 * d->layers * (2.0 * (d->tp - 1.0) * d->inv_tp * msg * d->tp_inv_link
                                      + 2.0 * (d->tp - 1.0) * d->tp_lat);
        t_ar = rf_sel(rf_gt(d->tp, rf_b(1.0)), ar, zero);
    }
    if (d->net_terms & 2) t_in = rf_sel(rf_gt(d->within, zero), d->within * (msg * d->inv_link + d->lat), zero);
    if (d->net_terms & 4) t_out = rf_sel(rf_gt(d->cross, zero), d->cross * (msg * d->inv_out + d->lat_out), zero);
    return (t_ar + t_in) + t_out;
}

RF_INLINE void rf_store(double* dst, rf_vd v, int nvalid) {
    if (nvalid == RF_W) {
        memcpy(dst, &v, sizeof v);
    } else {
        double tmp[RF_W];
        memcpy(tmp, &v, sizeof v);
        for (int l = 0; l < nvalid; l++) dst[l] = tmp[l];
    }
}

/* Every output of RF_W points of deployments `d` with per-lane B, P, N into
 * columns o .. o + nvalid - 1. */
RF_INLINE void rf_eval(const rf_dep* d, rf_vd B, rf_vd P, rf_vd N, int loop_decode,
                       double* of, int64_t ostride, signed char* ob, unsigned char* ofits,
                       long long* omb, int64_t o, int nvalid) {
    rf_vd w = d->w;
    rf_vd nan = rf_b(NAN);
    /* memory per chip: each chip holds 1/pp of the layers for the pp micro-batches */
    rf_vd ctx_max = P + N;
    rf_vd kv_seq = d->kv_seq_unit * (d->kv_full * ctx_max + d->kv_win * rf_min(ctx_max, w));
    rf_vd mb = rf_floor(rf_min(d->room / kv_seq, rf_b(4503599627370495.0)));
    rf_vm fits = rf_le(B, mb);

    /* expected routed experts touched by n tokens: E (1 - (1 - k/E)^n) = -E expm1(n log_keep);
     * dense lanes take 0 */
    rf_vm moe = rf_gt(d->n_exp, rf_b(0.0));
    rf_vd zero = rf_b(0.0);
    rf_vd touched_pre = zero, touched_dec = zero;
    if (rf_any(moe)) {          /* skipped by groups of dense models only */
        /* rf_expm1_nonpos(x) is exactly -1 for x <= RF_EXPM1_SAT = -40 (k <= -58:
         * 2^k vanishes beside -1 in both of its last terms), so where every MoE lane of the
         * prefill is that far out, as it is for all but short prompts, the
         * function is skipped: E experts touched, the same bits */
        rf_vd x_pre = B * P * d->log_keep;
        if (rf_any(rf_andnot(moe, rf_le(x_pre, rf_b(RF_EXPM1_SAT)))))
            touched_pre = rf_sel(moe, -d->n_exp * rf_expm1_nonpos(x_pre), zero);
        else
            touched_pre = rf_sel(moe, -d->n_exp * rf_b(-1.0), zero);
        touched_dec = rf_sel(moe, -d->n_exp * rf_expm1_nonpos(B * d->log_keep), zero);
    }

    /* prefill: B x P tokens, causal attention */
    rf_vd n_pre = B * P;
    rf_vd tri = P * (P + 1.0) * 0.5;
    rf_vd win_keys = rf_sel(rf_le(P, w), tri, w * (w + 1.0) * 0.5 + (P - w) * w);
    rf_vd flops_pre = B * (d->flop_lin * P + d->flop_head + d->attn_full * tri
                           + d->attn_win * win_keys);
    rf_vd t_comp = flops_pre * d->inv_tp * d->inv_f;
    rf_vd t_mem = (d->wread_unit * (d->p_read + d->p_exp * touched_pre)
                   + n_pre * (d->kv_tok_bytes + d->act_tok_bytes)) * d->inv_bw;
    rf_vd t_net = rf_network(n_pre, d);
    rf_vd ttft = rf_max(t_comp, t_mem) + t_net + d->ovh;
    rf_vl bound_pre = rf_bound(t_comp, t_mem, t_net);

    /* decode: step j = 1..N-1 at context c = P + j */
    rf_vd cf = B * d->inv_tp * d->inv_f;
    rf_vd a1 = cf * (d->flop_lin + d->flop_head);
    rf_vd b1 = cf * d->attn_full;
    rf_vd g1 = cf * d->attn_win;
    rf_vd a2 = (d->wread_unit * (d->p_read + d->p_exp * touched_dec)
                + B * (d->kv_tok_bytes + d->act_tok_bytes)) * d->inv_bw;
    rf_vd kvb = B * d->kb * d->kv_frac * d->inv_bw;
    rf_vd b2 = kvb * d->kv_full;
    rf_vd g2 = kvb * d->kv_win;
    rf_vd lo = P + 1.0;
    rf_vd hi = P + N - 1.0;
    rf_vd h1 = rf_min(hi, w);
    rf_vd l2 = rf_max(lo, w + 1.0);
    rf_vd s_max, s_comp, s_mem;
    if (loop_decode) {
        double A1[RF_W], B1[RF_W], G1[RF_W], A2[RF_W], B2[RF_W], G2[RF_W], LO[RF_W], HI[RF_W],
            WW[RF_W], SM[RF_W], SC[RF_W], SE[RF_W];
        memcpy(A1, &a1, sizeof A1); memcpy(B1, &b1, sizeof B1); memcpy(G1, &g1, sizeof G1);
        memcpy(A2, &a2, sizeof A2); memcpy(B2, &b2, sizeof B2); memcpy(G2, &g2, sizeof G2);
        memcpy(LO, &lo, sizeof LO); memcpy(HI, &hi, sizeof HI); memcpy(WW, &w, sizeof WW);
        for (int l = 0; l < RF_W; l++) {
            double sm = 0.0, sc = 0.0, se = 0.0;
            for (double c = LO[l]; c <= HI[l]; c += 1.0) {
                double kw = c < WW[l] ? c : WW[l];
                double tc = A1[l] + B1[l] * c + G1[l] * kw;
                double tm = A2[l] + B2[l] * c + G2[l] * kw;
                sm += tc > tm ? tc : tm;
                sc += tc;
                se += tm;
            }
            SM[l] = sm; SC[l] = sc; SE[l] = se;
        }
        memcpy(&s_max, SM, sizeof SM); memcpy(&s_comp, SC, sizeof SC);
        memcpy(&s_mem, SE, sizeof SE);
    } else {
        /* contexts inside the window [lo, h1], then beyond it [l2, hi]. Where a
         * segment is empty in every lane, its sum of maxima (a crossover
         * division) is replaced by c + e of the same empty segment: both are
         * +-0 for finite lines and NaN for non-finite ones, exactly like the
         * skipped sum, so results do not depend on the other lanes of the
         * group. Models without a window (w = 0) never have the first segment. */
        int any1 = rf_any(rf_ge(h1, lo)), any2 = rf_any(rf_le(l2, hi));
        rf_vd c1 = rf_series(a1, b1 + g1, lo, h1);
        rf_vd e1 = rf_series(a2, b2 + g2, lo, h1);
        rf_vd c2 = rf_series(a1 + g1 * w, b1, l2, hi);
        rf_vd e2 = rf_series(a2 + g2 * w, b2, l2, hi);
        rf_vd m1 = any1 ? rf_sum_max_affine(a1, b1 + g1, a2, b2 + g2, lo, h1) : c1 + e1;
        rf_vd m2 = any2 ? rf_sum_max_affine(a1 + g1 * w, b1, a2 + g2 * w, b2, l2, hi) : c2 + e2;
        s_max = m1 + m2;
        s_comp = c1 + c2;
        s_mem = e1 + e2;
    }
    rf_vd n_steps = N - 1.0;
    rf_vd t_net_d = rf_network(B, d);
    rf_vd decode_total = s_max + n_steps * (t_net_d + d->ovh);
    rf_vm has_steps = rf_gt(n_steps, rf_b(0.0));
    rf_vl bound_dec = (rf_vl)rf_sel(has_steps, (rf_vd)rf_bound(s_comp, s_mem, n_steps * t_net_d),
                                    (rf_vd)rf_l(RF_BOUND_NONE));
    rf_vd e2e = ttft + decode_total;
    rf_vd tokens = d->pp * B * N;     /* pp micro-batches of B sequences finish per e2e */
    rf_vd inv_tokens = 1.0 / tokens;
    rf_vd tok_s = tokens / e2e;
    rf_vd tpot = rf_sel(has_steps, decode_total / rf_sel(has_steps, n_steps, rf_b(1.0)), nan);

    rf_store(of + 5 * ostride + o, d->weight_bytes, nvalid);
    rf_store(of + 6 * ostride + o, B * kv_seq, nvalid);
    rf_store(of + o, rf_sel(fits, ttft, nan), nvalid);
    rf_store(of + ostride + o, rf_sel(fits, tpot, nan), nvalid);
    rf_store(of + 2 * ostride + o, rf_sel(fits, e2e, nan), nvalid);
    rf_store(of + 3 * ostride + o, rf_sel(fits, tok_s, nan), nvalid);
    rf_store(of + 4 * ostride + o, rf_sel(fits, tok_s * d->inv_chips, nan), nvalid);
    rf_store(of + 7 * ostride + o,
             rf_sel(fits, d->hourly * d->n_chips * e2e * inv_tokens * (1e6 / 3600.0), nan), nvalid);
    rf_store(of + 8 * ostride + o, rf_sel(fits, d->tdp * d->n_chips * e2e * inv_tokens, nan),
             nvalid);
    rf_vl none = rf_l(RF_BOUND_NONE);
    rf_vl mbl = __builtin_convertvector(mb, rf_vl);
    rf_vc fit8 = __builtin_convertvector(rf_ones(fits), rf_vc);
    rf_vc bp8 = __builtin_convertvector((rf_vl)rf_sel(fits, (rf_vd)bound_pre, (rf_vd)none), rf_vc);
    rf_vc bd8 = __builtin_convertvector((rf_vl)rf_sel(fits, (rf_vd)bound_dec, (rf_vd)none), rf_vc);
    if (nvalid == RF_W) {
        memcpy(omb + o, &mbl, sizeof mbl);
        memcpy(ofits + o, &fit8, sizeof fit8);
        memcpy(ob + o, &bp8, sizeof bp8);
        memcpy(ob + ostride + o, &bd8, sizeof bd8);
    } else {
        for (int l = 0; l < nvalid; l++) {
            omb[o + l] = mbl[l];
            ofits[o + l] = (unsigned char)fit8[l];
            ob[o + l] = bp8[l];
            ob[ostride + o + l] = bd8[l];
        }
    }
}

/* n points (struct of arrays) into output columns o0 .. o0 + n - 1. */
static void rf_tile_isa(const rf_tables* T, const rf_points* p, int64_t n, int loop_decode,
                        double* of, int64_t ostride, signed char* ob, unsigned char* ofits,
                        long long* omb, int64_t o0) {
    /* Deployment indices of the previous group: sweeps walk the batch and length
     * axes innermost, so consecutive groups usually share every deployment and
     * the table gathers of rf_deploy are skipped. */
    rf_vi key[7], prev[7];
    int have_prev = 0;
    rf_dep d = {0};
    const rf_vd dtab = rf_dtype_table(T->db);
    for (int64_t i = 0; i < n; i += RF_W) {
        int nvalid = (int)(n - i < RF_W ? n - i : RF_W);
        rf_vi vb, vpr, vou;
        if (nvalid == RF_W) {
            memcpy(&key[0], p->model + i, sizeof key[0]);
            memcpy(&key[1], p->chip + i, sizeof key[1]);
            memcpy(&key[2], p->tp + i, sizeof key[2]);
            memcpy(&key[3], p->pp + i, sizeof key[3]);
            rf_vc w8, kv8, ac8;
            memcpy(&w8, p->w + i, sizeof w8);
            memcpy(&kv8, p->kv + i, sizeof kv8);
            memcpy(&ac8, p->act + i, sizeof ac8);
            key[4] = __builtin_convertvector(w8, rf_vi);
            key[5] = __builtin_convertvector(kv8, rf_vi);
            key[6] = __builtin_convertvector(ac8, rf_vi);
            memcpy(&vb, p->batch + i, sizeof vb);
            memcpy(&vpr, p->prompt + i, sizeof vpr);
            memcpy(&vou, p->output + i, sizeof vou);
        } else {                                    /* pad a short tail with its first point */
            for (int l = 0; l < RF_W; l++) {
                int64_t k = i + (l < nvalid ? l : 0);
                key[0][l] = p->model[k]; key[1][l] = p->chip[k];
                key[2][l] = p->tp[k]; key[3][l] = p->pp[k];
                key[4][l] = p->w[k]; key[5][l] = p->kv[k]; key[6][l] = p->act[k];
                vb[l] = p->batch[k]; vpr[l] = p->prompt[k]; vou[l] = p->output[k];
            }
        }
        if (!have_prev || memcmp(key, prev, sizeof key) != 0) {
            rf_deploy(&d, T, dtab, key[0], key[1], __builtin_convertvector(key[2], rf_vd),
                      __builtin_convertvector(key[3], rf_vd), key[4], key[5], key[6]);
            memcpy(prev, key, sizeof key);
            have_prev = 1;
        }
        rf_eval(&d, __builtin_convertvector(vb, rf_vd), __builtin_convertvector(vpr, rf_vd),
                __builtin_convertvector(vou, rf_vd), loop_decode, of, ostride, ob, ofits, omb,
                o0 + i, nvalid);
    }
}

/* rf_expm1_nonpos over an array (tests compare it with numpy.expm1). */
static void rf_expm1_array_isa(const double* x, double* y, int64_t n) {
    for (int64_t i = 0; i < n; i += RF_W) {
        double buf[RF_W];
        int m = (int)(n - i < RF_W ? n - i : RF_W);
        for (int l = 0; l < RF_W; l++) buf[l] = x[i + (l < m ? l : 0)];
        rf_vd v;
        memcpy(&v, buf, sizeof v);
        v = rf_expm1_nonpos(v);
        memcpy(buf, &v, sizeof v);
        for (int l = 0; l < m; l++) y[i + l] = buf[l];
    }
}

#undef rf_b
#undef rf_l
#undef rf_sel
#undef rf_min
#undef rf_max
#undef rf_floor
#undef rf_ceil
#undef rf_series
#undef rf_sum_max_affine
#undef rf_bound
#undef rf_expm1_nonpos
#undef rf_load_cols
#undef rf_dtype_bytes
#undef rf_dtype_table
#undef rf_any
#undef rf_perm16
#undef rf_andnot
#undef rf_ones
#undef rf_or
#undef rf_and
#undef rf_eq_l
#undef rf_eq
#undef rf_ge
#undef rf_gt
#undef rf_le
#undef rf_lt
#undef rf_vm
#undef rf_vd
#undef rf_vl
#undef rf_vi
#undef rf_vc
#undef rf_dep
#undef rf_gather
#undef rf_deploy
#undef rf_network
#undef rf_store
#undef rf_eval
#undef rf_tile_isa
#undef rf_expm1_array_isa
#undef RF_F
#undef RF_F2
#undef RF_F3
