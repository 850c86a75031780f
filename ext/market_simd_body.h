/*
 * Body of the SIMD market kernel, included once per instruction set by
 * market_simd.h with MK_SFX and MK_W set (no include guard on purpose). Every
 * function name gets the suffix, so each copy is compiled whole for its
 * target and dispatched at run time (see market_simd.h).
 */
#ifndef MK_SFX
#error "include market_simd.h, not this file"
#endif
#ifndef MK_W
#error "MK_W (lanes per vector) must be defined"
#endif
#if MK_W != 4 && MK_W != 8
#error "MK_W must be 4 or 8"
#endif
#define MK_F3(n, s) n##s
#define MK_F2(n, s) MK_F3(n, s)
#define MK_F(n) MK_F2(n, MK_SFX)
#define mk_vd MK_F(mk_vd)
#define mk_vl MK_F(mk_vl)
#define mk_b MK_F(mk_b)
#define mk_sel MK_F(mk_sel)
#define mk_min MK_F(mk_min)
#define mk_max MK_F(mk_max)
#define mk_st MK_F(mk_st)
#define mk_seli MK_F(mk_seli)
#define mk_bins_isa MK_F(mk_bins_isa)
#define mk_sums_isa MK_F(mk_sums_isa)
#define mk_sums_groups MK_F(mk_sums_groups)
#define mk_v4d MK_F(mk_v4d)
#define mk_v4l MK_F(mk_v4l)
#define mk_exp MK_F(mk_exp)
#define mk_rsqrt MK_F(mk_rsqrt)
#define mk_log MK_F(mk_log)
#define mk_pow_pos MK_F(mk_pow_pos)
#define mk_load_inputs MK_F(mk_load_inputs)
#define mk_log_array_isa MK_F(mk_log_array_isa)
#define mk_pow_array_isa MK_F(mk_pow_array_isa)
#define mk_eval MK_F(mk_eval)
#define mk_ctx MK_F(mk_ctx)
#define mk_chunk MK_F(mk_chunk)
#define mk_fleet MK_F(mk_fleet)
#define mk_setup MK_F(mk_setup)
#define mk_pass1 MK_F(mk_pass1)
#define mk_pass2 MK_F(mk_pass2)
#define MK_S_YEAR MK_F(MK_S_YEAR)
#define MK_S_DAY MK_F(MK_S_DAY)
#define MK_J_KWH MK_F(MK_J_KWH)
#define mk_block_isa MK_F(mk_block_isa)
#define mk_exp_array_isa MK_F(mk_exp_array_isa)
#define mk_rsqrt_array_isa MK_F(mk_rsqrt_array_isa)

typedef double mk_vd __attribute__((vector_size(8 * MK_W)));
typedef int64_t mk_vl __attribute__((vector_size(8 * MK_W)));

MK_INLINE mk_vd mk_b(double c) {
    mk_vd v;
    for (int l = 0; l < MK_W; l++) v[l] = c;
    return v;
}
MK_INLINE mk_vd mk_sel(mk_vl m, mk_vd a, mk_vd b) {
    return (mk_vd)(((mk_vl)a & m) | ((mk_vl)b & ~m));
}
/* a < b ? a : b and a > b ? a : b (b where a is NaN or both are zeros): the
 * semantics of the x86 MINPD / MAXPD instructions, so the AVX2 and AVX-512 copies
 * use them (one instruction instead of a compare and a three-operation select,
 * which is what GCC makes of mk_sel), and the same values as the selects that
 * the baseline copy and the scalar twins write. */
MK_INLINE mk_vd mk_min(mk_vd a, mk_vd b) {
#if MK_ISA == 2
    return (mk_vd)_mm512_min_pd((__m512d)a, (__m512d)b);
#elif MK_ISA == 1
    return (mk_vd)_mm256_min_pd((__m256d)a, (__m256d)b);
#else
    return mk_sel(a < b, a, b);
#endif
}
MK_INLINE mk_vd mk_max(mk_vd a, mk_vd b) {
#if MK_ISA == 2
    return (mk_vd)_mm512_max_pd((__m512d)a, (__m512d)b);
#elif MK_ISA == 1
    return (mk_vd)_mm256_max_pd((__m256d)a, (__m256d)b);
#else
    return mk_sel(a > b, a, b);
#endif
}
MK_INLINE void mk_st(double* p, mk_vd v) { memcpy(p, &v, sizeof v); }
MK_INLINE mk_vl mk_seli(mk_vl m, mk_vl a, mk_vl b) { return (a & m) | (b & ~m); }

/* exp(x), every double x (overflow to +inf above 709.78, gradual underflow to
 * subnormals and 0 below -708.4, NaN stays NaN), branch-free.
 * Reduction x = k ln2 + r, |r| <= ln2/2, k = round(x / ln2) by the 1.5 * 2^52
 * rounding trick, with the Cody-Waite two-part ln2 of fdlibm's e_exp.c (k ln2_hi
 * is exact for |k| < 2^21); exp(r) = 1 + expm1(r), expm1(r) by its Taylor series
 * to r^13 (truncation < 2^-57 relative on |r| <= ln2/2); then 2^k in two factors
 * 2^(k/2) 2^(k - k/2), each a normal double, so results that round to a
 * subnormal are rounded once, like libm's. Within 2 ulp of numpy.exp (tested in
 * tests/test_market_simd.py).
 * Reference: Muller, "Elementary Functions", 3rd ed., ch. 11 (range
 * reduction); Sun Microsystems fdlibm 5.3, e_exp.c. */
MK_INLINE mk_vd mk_exp(mk_vd x) {
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    const double inv_ln2 = 1.44269504088896338700e+00, round_c = 6755399441055744.0;
    mk_vd xc = mk_min(mk_b(710.0), x);                    /* x > 710 ? 710 : x */
    xc = mk_max(mk_b(-746.0), xc);                        /* NaN lanes: fixed below */
    mk_vd bk = xc * inv_ln2 + round_c;                    /* mantissa holds round(x / ln2) */
    mk_vd k = bk - round_c;
    mk_vd r = (xc - k * ln2_hi) - k * ln2_lo;
    const double c2 = 1.0 / 2, c3 = 1.0 / 6, c4 = 1.0 / 24, c5 = 1.0 / 120, c6 = 1.0 / 720,
                 c7 = 1.0 / 5040, c8 = 1.0 / 40320, c9 = 1.0 / 362880, c10 = 1.0 / 3628800,
                 c11 = 1.0 / 39916800, c12 = 1.0 / 479001600, c13 = 1.0 / 6227020800.0;
    /* q = sum c_j r^(j-2) by Estrin's scheme (Knuth, TAOCP vol. 2, 4.6.4): depth 8
     * operations instead of Horner's 22, so the exponentials of several years overlap */
    mk_vd r2 = r * r;
    mk_vd r4 = r2 * r2;
    mk_vd a0 = c2 + c3 * r, a1 = c4 + c5 * r, a2 = c6 + c7 * r;
    mk_vd a3 = c8 + c9 * r, a4 = c10 + c11 * r, a5 = c12 + c13 * r;
    mk_vd b0 = a0 + a1 * r2, b1 = a2 + a3 * r2, b2 = a4 + a5 * r2;
    mk_vd q = b0 + r4 * (b1 + r4 * b2);
    mk_vd e = 1.0 + (r + r2 * q);
    mk_vl kbits = (mk_vl)bk - (mk_vl)mk_b(round_c);      /* k, -1077 <= k <= 1025 */
    mk_vl k1 = kbits >> 1;
    mk_vd s1 = (mk_vd)((k1 + 1023) << 52);
    mk_vd s2 = (mk_vd)((kbits - k1 + 1023) << 52);
    mk_vd y = (e * s1) * s2;
    return mk_sel(x != x, x, y);
}

/* 1 / sqrt(u) for u >= 1 (u = +inf gives 0, NaN stays NaN), without a division
 * or square root: the bit-pattern first guess with the double-precision
 * constant 0x5FE6EB50C7B537A9 (Robertson 2012, "A Brief History of InvSqrt",
 * after Lomont 2003, "Fast inverse square root"; relative error < 3.5e-2), then
 * four Newton-Raphson steps y <- y (3/2 - (u/2) y^2) for 1/y^2 - u = 0 (each
 * takes the relative error e to about 1.5 e^2: 1.8e-3, 5.1e-6, 3.9e-11, then
 * rounding), (u/2) y evaluated first so that y^2 never underflows. Within
 * 2.5 ulp of the exact 1 / sqrt(u) (a review measured 2.15 against long double;
 * tests/test_market_simd.py checks 2.5 ulp against a long-double reference).
 * Reference: Muller, "Elementary Functions", 3rd ed., sec. 5.2 (Newton-Raphson
 * iterations for the reciprocal square root). */
MK_INLINE mk_vd mk_rsqrt(mk_vd u) {
    mk_vd y = (mk_vd)((mk_vl)mk_b(0.0) + 0x5FE6EB50C7B537A9LL - ((mk_vl)u >> 1));
    mk_vd h = 0.5 * u;
    y = y * (1.5 - (h * y) * y);
    y = y * (1.5 - (h * y) * y);
    y = y * (1.5 - (h * y) * y);
    y = y * (1.5 - (h * y) * y);
    return mk_sel(u == __builtin_inf(), mk_b(0.0), y);
}

/* log(x), every double x (0 gives -inf, negative or NaN gives NaN, +inf stays
 * +inf, subnormals are scaled by 2^54 first), branch-free. The method and
 * constants of fdlibm's e_log.c: x = 2^k m with sqrt(2)/2 <= m < sqrt(2),
 * f = m - 1, s = f / (2 + f), log(1 + f) = f - hfsq + s (hfsq + R(s^2)) with
 * hfsq = f^2 / 2 and R fdlibm's minimax polynomial Lg1..Lg7 (|error| < 2^-58.45),
 * and ln2 split in two parts as in mk_exp. Within 2 ulp of numpy.log (tested).
 * Reference: Sun Microsystems fdlibm 5.3, e_log.c; Muller, "Elementary
 * Functions", 3rd ed., ch. 11. */
MK_INLINE mk_vd mk_log(mk_vd x) {
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    const double Lg1 = 6.666666666666735130e-01, Lg2 = 3.999999999940941908e-01,
                 Lg3 = 2.857142874366239149e-01, Lg4 = 2.222219843214978396e-01,
                 Lg5 = 1.818357216161805012e-01, Lg6 = 1.531383769920937332e-01,
                 Lg7 = 1.479819860511658591e-01;
    mk_vl sub = x < 2.2250738585072014e-308;              /* subnormal (or <= 0, NaN: fixed below) */
    mk_vd xs = mk_sel(sub, x * 18014398509481984.0, x);    /* 2^54 */
    mk_vl bits = (mk_vl)xs;
    mk_vl k = (bits >> 52) - 1023 - (sub & 54);
    mk_vl mbits = (bits & 0x000FFFFFFFFFFFFFLL) | 0x3FF0000000000000LL;   /* m in [1, 2) */
    mk_vl big = mbits > 0x3FF6A09E667F3BCCLL;              /* m > sqrt(2): halve it */
    mbits = mbits - (big & 0x0010000000000000LL);
    k = k - big;                                           /* big is -1 where true */
    mk_vd f = (mk_vd)mbits - 1.0;
    mk_vd dk = __builtin_convertvector(k, mk_vd);
    mk_vd s = f / (2.0 + f);
    mk_vd z = s * s;
    mk_vd w = z * z;
    mk_vd t1 = w * (Lg2 + w * (Lg4 + w * Lg6));
    mk_vd t2 = z * (Lg1 + w * (Lg3 + w * (Lg5 + w * Lg7)));
    mk_vd R = t2 + t1;
    mk_vd hfsq = 0.5 * f * f;
    mk_vd y = dk * ln2_hi - ((hfsq - (s * (hfsq + R) + dk * ln2_lo)) - f);
    y = mk_sel(x == __builtin_inf(), x, y);
    y = mk_sel(x == 0.0, mk_b(-__builtin_inf()), y);
    return mk_sel((x < 0.0) | (x != x), mk_b(__builtin_nan("")), y);
}

/* q^y for q > 0 as exp(y log q) (mk_exp, mk_log); y = 0 gives 1. The relative
 * error is that of the two functions plus |y log q| 2^-53 from rounding the
 * product (Muller, "Elementary Functions", 3rd ed., sec. 2.2); tested against
 * numpy.power within that bound. */
MK_INLINE mk_vd mk_pow_pos(mk_vd q, double y) {
    if (y == 0.0) return mk_b(1.0);
    return mk_exp(y * mk_log(q));
}

/* Columns 0 .. MK_N_IN-1 of the MK_W rows rp[0 .. MK_W-1] as MK_N_IN vectors: one
 * MK_W-double load per row and block and an MK_W x MK_W transpose in registers
 * (the shuffles of rf_load_cols in roofline_simd_body.h) instead of one load
 * per value; the last block starts at MK_N_IN - MK_W and overlaps the one
 * before it. */
MK_INLINE void mk_load_inputs(const double* const* rp, mk_vd* col) {
    for (int c0 = 0; c0 < MK_N_IN; c0 += MK_W) {
        int c = c0 + MK_W <= MK_N_IN ? c0 : MK_N_IN - MK_W;
        mk_vd r[MK_W];
        for (int l = 0; l < MK_W; l++) memcpy(&r[l], rp[l] + c, sizeof(mk_vd));
#if MK_W == 4
        mk_vd t0 = __builtin_shuffle(r[0], r[1], (mk_vl){0, 4, 2, 6});
        mk_vd t1 = __builtin_shuffle(r[0], r[1], (mk_vl){1, 5, 3, 7});
        mk_vd t2 = __builtin_shuffle(r[2], r[3], (mk_vl){0, 4, 2, 6});
        mk_vd t3 = __builtin_shuffle(r[2], r[3], (mk_vl){1, 5, 3, 7});
        col[c + 0] = __builtin_shuffle(t0, t2, (mk_vl){0, 1, 4, 5});
        col[c + 1] = __builtin_shuffle(t1, t3, (mk_vl){0, 1, 4, 5});
        col[c + 2] = __builtin_shuffle(t0, t2, (mk_vl){2, 3, 6, 7});
        col[c + 3] = __builtin_shuffle(t1, t3, (mk_vl){2, 3, 6, 7});
#else
        mk_vd t[8], u[8];
        for (int k = 0; k < 8; k += 2) {      /* pairs of rows: even and odd columns */
            t[k] = __builtin_shuffle(r[k], r[k + 1], (mk_vl){0, 8, 2, 10, 4, 12, 6, 14});
            t[k + 1] = __builtin_shuffle(r[k], r[k + 1], (mk_vl){1, 9, 3, 11, 5, 13, 7, 15});
        }
        for (int k = 0; k < 8; k += 4) {      /* quads of rows */
            u[k] = __builtin_shuffle(t[k], t[k + 2], (mk_vl){0, 1, 8, 9, 4, 5, 12, 13});
            u[k + 1] = __builtin_shuffle(t[k], t[k + 2], (mk_vl){2, 3, 10, 11, 6, 7, 14, 15});
            u[k + 2] = __builtin_shuffle(t[k + 1], t[k + 3], (mk_vl){0, 1, 8, 9, 4, 5, 12, 13});
            u[k + 3] = __builtin_shuffle(t[k + 1], t[k + 3], (mk_vl){2, 3, 10, 11, 6, 7, 14, 15});
        }
        /* u[0..3] hold rows 0-3 of columns (0,4), (2,6), (1,5), (3,7); u[4..7] rows 4-7 */
        static const int col_of[4] = {0, 2, 1, 3};
        for (int k = 0; k < 4; k++) {
            col[c + col_of[k]] = __builtin_shuffle(u[k], u[k + 4], (mk_vl){0, 1, 2, 3, 8, 9, 10, 11});
            col[c + col_of[k] + 4] = __builtin_shuffle(u[k], u[k + 4], (mk_vl){4, 5, 6, 7, 12, 13, 14, 15});
        }
#endif
    }
}

/* The state of MK_W draws through the years (mk_eval): inputs and set-up values the
 * years read, and the recurrences of the first pass. */
typedef struct {
    mk_vd D0, gdec, P0, pdec, eps, rs_max, rm, as_max, ac, eff, util, hw, p2a, othg, runsg;
    mk_vd cdec, tutil, pfac, gprior, pue, sdec, mk, keep, inv_ceiling, er_step, ea_step;
    mk_vd inv_mix0, inv_life_s, inv_s_tutil, energy_cost, tps_per_day, r0, r1, r2, r3;
    mk_vd er, ea, w0, w1, w2, w3, lam, B, Lam, gstep, swf, hwf, sstep, oth, train, cstep;
} mk_ctx;
/* the first pass's values of a chunk of years that the second pass reads */
typedef struct {
    mk_vd tok[MK_TCH], cinf[MK_TCH], ctr[MK_TCH], invf[MK_TCH], cp[MK_TCH];
    mk_vd price[MK_TCH], w0[MK_TCH], w1[MK_TCH], w2[MK_TCH], w3[MK_TCH];
} mk_chunk;
/* the installed fleet (second pass) */
typedef struct { mk_vd cap_inf, cap_tr, chips, power_w; } mk_fleet;

static const double MK_S_YEAR = 31557600.0, MK_S_DAY = 86400.0, MK_J_KWH = 3.6e6;

/* inputs of the MK_W rows rp and the values before the first year */
MK_INLINE void mk_setup(mk_ctx* s, mk_fleet* f, const double* const* rp, const double* yp, int T) {
    mk_vd in[MK_N_IN];
    mk_load_inputs(rp, in);
    mk_vd g1 = in[1], p1 = in[4], rs_mid = in[8], rs_k = in[9], as_mid = in[12], as_k = in[13];
    mk_vd sw = in[17], oth0 = in[20], runs0 = in[22], cpr0 = in[24], cprg = in[25], ptm = in[27];
    mk_vd life = in[30], elec = in[33], ceiling = in[42];
    s->D0 = in[0], s->gdec = in[2], s->P0 = in[3], s->pdec = in[5], s->eps = in[6];
    s->rs_max = in[7], s->rm = in[10], s->as_max = in[11], s->ac = in[14];
    s->eff = in[15], s->util = in[16], s->hw = in[18], s->p2a = in[19], s->othg = in[21];
    s->runsg = in[23], s->cdec = in[26], s->tutil = in[28], s->pfac = in[29];
    s->gprior = in[31], s->pue = in[32], s->sdec = in[43], s->mk = in[44];
    s->keep = 1.0 - 1.0 / life;
    s->inv_ceiling = 1.0 / ceiling;
    double y0 = yp[0];
    mk_vd er = mk_exp(-rs_k * (y0 - rs_mid));
    s->er_step = mk_exp(-rs_k);
    mk_vd ea = mk_exp(-as_k * (y0 - as_mid));
    s->ea_step = mk_exp(-as_k);
    mk_vd mix0 = (1.0 + s->rs_max / (1.0 + er) * (s->rm - 1.0)) * (1.0 + s->as_max / (1.0 + ea) * (s->ac - 1.0));
    s->er = er, s->ea = ea;
    s->inv_mix0 = 1.0 / mix0;
    s->inv_life_s = 1.0 / (life * MK_S_YEAR);
    s->inv_s_tutil = 1.0 / (MK_S_YEAR * s->tutil);
    s->energy_cost = s->pue * elec * (1.0 / MK_J_KWH);
    s->tps_per_day = s->p2a * (1.0 / MK_S_DAY);
    double inv_tpr = T > 1 ? 1.0 / (T - 1) : 0.0;
    s->w0 = in[34], s->w1 = in[36], s->w2 = in[38], s->w3 = in[40];
    s->r0 = mk_pow_pos(in[35] / s->w0, inv_tpr);
    s->r1 = mk_pow_pos(in[37] / s->w1, inv_tpr);
    s->r2 = mk_pow_pos(in[39] / s->w2, inv_tpr);
    s->r3 = mk_pow_pos(in[41] / s->w3, inv_tpr);
    s->lam = mk_log(p1);
    s->B = mk_b(1.0), s->Lam = mk_b(0.0);
    s->gstep = g1 - 1.0;
    s->swf = mk_b(1.0), s->hwf = mk_b(1.0);
    s->sstep = sw - 1.0;
    s->oth = oth0 * yp[2];
    s->train = runs0 * cpr0 * ptm;
    s->cstep = cprg - 1.0;
    f->cap_inf = f->cap_tr = f->chips = f->power_w = mk_b(0.0);
}

/* First pass over years t0 .. t1-1 (one chunk): what does not depend on the installed
 * fleet (demand, price, cost, needs: independent across years but for cheap products,
 * so the exponentials of several years overlap) into ch, price and cost into o. */
MK_INLINE void mk_pass1(mk_ctx* s, mk_chunk* ch, const double* yp, int t0, int t1, double* o,
                        int64_t stride, int64_t ts) {
    mk_vd B = s->B, Lam = s->Lam, lam = s->lam, gstep = s->gstep, er = s->er, ea = s->ea;
    mk_vd swf = s->swf, hwf = s->hwf, sstep = s->sstep, oth = s->oth, train = s->train;
    mk_vd cstep = s->cstep, w0 = s->w0, w1 = s->w1, w2 = s->w2, w3 = s->w3;
    for (int t = t0; t < t1; t++) {
        const double* row = yp + t * MK_N_YP;
        int c = t - t0;
        if (t > 0) {
            B = B * (1.0 + gstep);
            gstep = gstep * s->gdec;
            Lam = Lam + lam;
            lam = lam * s->pdec;
            er = er * s->er_step;
            ea = ea * s->ea_step;
            swf = swf * (1.0 + sstep);
            sstep = sstep * s->sdec;
            oth = oth * s->othg;
            train = train * s->runsg * (1.0 + cstep);
            cstep = cstep * s->cdec;
            w0 = w0 * s->r0;
            w1 = w1 * s->r1;
            w2 = w2 * s->r2;
            w3 = w3 * s->r3;
            if (row[5] > yp[(t - 1) * MK_N_YP + 5]) hwf = hwf * s->hw;   /* same for every lane */
        }
        mk_vd mix = (1.0 + s->rs_max / (1.0 + er) * (s->rm - 1.0)) * (1.0 + s->as_max / (1.0 + ea) * (s->ac - 1.0));
        mk_vd theta = row[1] * hwf * s->eff * s->util * swf;
        mk_vd inv_theta = 1.0 / theta;
        mk_vd flops = row[2] * hwf;
        mk_vd inv_flops = 1.0 / flops;
        mk_vd chip_price = row[3] * s->pfac;
        double watts = row[4];
        mk_vd cost_s = chip_price * s->inv_life_s + watts * s->energy_cost;
        mk_vd cost_mtok = cost_s * s->p2a * inv_theta * 1e6;
        mk_vd price = s->P0 * mk_exp(-Lam);
        mk_vd cap_price = s->mk * cost_mtok;
        price = mk_min(cap_price, price);
        mk_vd tokens_day = s->D0 * B * mk_exp(s->eps * Lam) * (mix * s->inv_mix0);
        mk_vd chips_llm = tokens_day * s->tps_per_day * inv_theta;
        ch->cinf[c] = chips_llm * flops + oth;
        ch->ctr[c] = train * s->inv_s_tutil;
        ch->tok[c] = tokens_day;
        ch->invf[c] = inv_flops;
        ch->cp[c] = chip_price;
        ch->price[c] = price;
        ch->w0[c] = w0;
        ch->w1[c] = w1;
        ch->w2[c] = w2;
        ch->w3[c] = w3;
        mk_st(o + (int64_t)t * stride + ts, price);
        mk_st(o + (int64_t)t * stride + 2 * ts, cost_mtok);
    }
    s->B = B, s->Lam = Lam, s->lam = lam, s->gstep = gstep, s->er = er, s->ea = ea;
    s->swf = swf, s->hwf = hwf, s->sstep = sstep, s->oth = oth, s->train = train;
    s->cstep = cstep, s->w0 = w0, s->w1 = w1, s->w2 = w2, s->w3 = w3;
}

/* Second pass, year t (chunk slot c): the fleet recursion and the outputs that depend
 * on it. The chain from one year's fleet to the next is long (retirement, the budget
 * ratio, the four dependent 1/sqrt Newton steps, the new capacity), so mk_eval runs two
 * vectors' recursions side by side, one's chain overlapping the other's (measured faster
 * than one vector at a time in the split harness, benchmarks/market_stage_split.c). */
MK_INLINE void mk_pass2(const mk_ctx* s, const mk_chunk* ch, mk_fleet* fl, const double* yp, int t,
                        int c, double* o, int64_t stride, int64_t ts) {
    const mk_vd zero = mk_b(0.0);
    double watts = yp[t * MK_N_YP + 4];
    mk_vd keep = s->keep;
    mk_vd c_inf = ch->cinf[c], c_tr = ch->ctr[c], inv_flops = ch->invf[c], chip_price = ch->cp[c];
    mk_vd cap_inf = fl->cap_inf, cap_tr = fl->cap_tr, chips = fl->chips, power_w = fl->power_w;
    if (t == 0) {
        cap_inf = c_inf / s->gprior;
        cap_tr = c_tr / s->gprior;
        chips = (cap_inf + cap_tr) * inv_flops;
        power_w = chips * watts;
    }
    mk_vd ret_inf = cap_inf * keep;
    mk_vd ret_tr = cap_tr * keep;
    mk_vd d_inf = c_inf - ret_inf, d_tr = c_tr - ret_tr;
    mk_vd want_inf = mk_max(d_inf, zero);      /* NaN gives 0 */
    mk_vd want_tr = mk_max(d_tr, zero);
    mk_vd xr = (want_inf + want_tr) * inv_flops * chip_price * s->inv_ceiling;
    mk_vd f = mk_rsqrt(1.0 + xr * xr);
    mk_vd new_inf = want_inf * f;
    mk_vd new_tr = want_tr * f;
    cap_inf = ret_inf + new_inf;
    cap_tr = ret_tr + new_tr;
    mk_vd use_inf = mk_min(c_inf, cap_inf);
    mk_vd use_tr = mk_min(c_tr, cap_tr);
    mk_vd bought_inf = new_inf * inv_flops;
    mk_vd bought_tr = new_tr * inv_flops;
    mk_vd shipped = bought_inf + bought_tr;
    mk_vd spend_inf = bought_inf * chip_price;
    mk_vd spend_tr = bought_tr * chip_price;
    mk_vd spend = spend_inf + spend_tr;
    chips = chips * keep + shipped;
    power_w = power_w * keep + shipped * watts;
    fl->cap_inf = cap_inf, fl->cap_tr = cap_tr, fl->chips = chips, fl->power_w = power_w;
    mk_vd served = ch->tok[c] * (use_inf / c_inf);
    mk_vd spend_per_w = spend / (ch->w0[c] + ch->w1[c] + ch->w2[c] + ch->w3[c]);
    /* each output stored where it is computed: an array v[MK_N_OUT] stored in a
     * loop was kept on the stack and copied (a third of the kernel's instructions) */
    double* ot = o + (int64_t)t * stride;
    mk_st(ot, served);
    mk_st(ot + 3 * ts, served * 365.25 * ch->price[c] * 1e-6);
    mk_st(ot + 4 * ts, use_inf);
    mk_st(ot + 5 * ts, use_tr * (MK_S_YEAR * s->tutil));
    mk_st(ot + 6 * ts, use_inf / (use_inf + use_tr));
    mk_st(ot + 7 * ts, chips);
    mk_st(ot + 8 * ts, shipped);
    mk_st(ot + 9 * ts, power_w * s->pue * 1e-9);
    mk_st(ot + 10 * ts, spend_inf);
    mk_st(ot + 11 * ts, spend_tr);
    mk_st(ot + 12 * ts, spend);
    mk_st(ot + 13 * ts, spend_inf / spend);
    mk_st(ot + 14 * ts, ch->w0[c] * spend_per_w);
    mk_st(ot + 15 * ts, ch->w1[c] * spend_per_w);
    mk_st(ot + 16 * ts, ch->w2[c] * spend_per_w);
    mk_st(ot + 17 * ts, ch->w3[c] * spend_per_w);
}

/* Every output of nv (1 or 2, a constant after inlining) vectors of MK_W draws (rows
 * rp[v MK_W .. v MK_W + MK_W-1], vector v) for all T years; output k of year t of lane
 * l of vector v goes to o[(k T + t) stride + v MK_W + l]. The operations and their
 * order are those of _draw in numba_kernel.py and of reference.py. Years in chunks of
 * MK_TCH, each in two passes (mk_pass1, mk_pass2), the second with the vectors' fleet
 * recursions interleaved (independent draws: the same values as one vector at a
 * time). Every value is the same expression as in the one-pass scalar twins. */
MK_INLINE void mk_eval(const double* const* rp, const double* yp, int T, double* o,
                       int64_t stride, const int nv) {
    const int64_t ts = (int64_t)T * stride;     /* from output k to k + 1 */
    mk_ctx s0, s1;
    mk_chunk c0, c1;
    mk_fleet f0, f1;
    mk_setup(&s0, &f0, rp, yp, T);
    if (nv == 2) mk_setup(&s1, &f1, rp + MK_W, yp, T);
    for (int t0 = 0; t0 < T; t0 += MK_TCH) {
        int t1 = T - t0 < MK_TCH ? T : t0 + MK_TCH;
        mk_pass1(&s0, &c0, yp, t0, t1, o, stride, ts);
        if (nv == 2) mk_pass1(&s1, &c1, yp, t0, t1, o + MK_W, stride, ts);
        for (int t = t0; t < t1; t++) {
            mk_pass2(&s0, &c0, &f0, yp, t, t - t0, o, stride, ts);
            if (nv == 2) mk_pass2(&s1, &c1, &f1, yp, t, t - t0, o + MK_W, stride, ts);
        }
    }
}

/* Draws 0 .. n-1 of x into o[(k T + t) stride + i], two vectors (2 MK_W draws) per
 * mk_eval while the second one has a draw, then one; the last vector's padding lanes
 * repeat draw n-1 and are written up to n rounded up to MK_W <= stride. */
static void mk_block_isa(const double* x, int64_t n, const double* yp, int T, double* o,
                         int64_t stride) {
    int64_t i = 0;
    for (; i + MK_W < n; i += 2 * MK_W) {       /* the second vector has a draw */
        const double* rp[2 * MK_W];
        for (int l = 0; l < 2 * MK_W; l++) rp[l] = x + (i + l < n ? i + l : n - 1) * MK_N_IN;
        mk_eval(rp, yp, T, o + i, stride, 2);
    }
    for (; i < n; i += MK_W) {
        const double* rp[MK_W];
        for (int l = 0; l < MK_W; l++) rp[l] = x + (i + l < n ? i + l : n - 1) * MK_N_IN;
        mk_eval(rp, yp, T, o + i, stride, 1);
    }
}

/* Histogram bins of v[0 .. n-1] (the layout of engine/market/kernels/layout.py:
 * the exponent and top MK_HIST_MANTISSA_BITS mantissa bits of |v|, mirrored for
 * negative values, magnitudes below 2^HIST_EXP_MIN in the zero bin) into idx.
 * Widens [*lo, *hi] to the bins seen and returns 1 when some value is clamped, inf
 * or NaN (exponent field >= that of 2^HIST_EXP_MAX: its bin is out of range, so the
 * widened span is, and the caller takes the exact path), else 0. Written as a scalar
 * loop of integer operations with min / max reductions, which GCC vectorises for
 * each copy's instruction set (explicit vector selects compiled to three-operation
 * chains on lo / hi); integer arithmetic, so every copy gives the same result. The
 * bin is ZERO + s(1 + max(m, -1)) with m = key - KEY_LO and s the sign,
 * s(a) = (a ^ s) - s. */
static int64_t mk_bins_isa(const double* restrict v, int64_t n, int32_t* restrict idx, int64_t* lo_io,
                           int64_t* hi_io) {
    /* the bin depends only on the high 32 bits of the double (MK_HIST_SHIFT >= 32), so
     * the arithmetic is on int32: twice the lanes per vector of 64-bit integers */
    int32_t lo = (int32_t)*lo_io, hi = (int32_t)*hi_io;
    for (int64_t i = 0; i < n; i++) {
        uint64_t bits;
        memcpy(&bits, v + i, sizeof bits);
        int32_t top = (int32_t)(uint32_t)(bits >> 32);
        int32_t key = (top & 0x7FFFFFFF) >> (MK_HIST_SHIFT - 32);
        int32_t m = key - MK_HIST_KEY_LO;
        int32_t sgn = top >> 31;                       /* 0 or -1 */
        int32_t mm = m < -1 ? -1 : m;                  /* below the range: the zero bin */
        int32_t j = MK_HIST_ZERO + (((1 + mm) ^ sgn) - sgn);
        idx[i] = j;
        lo = j < lo ? j : lo;
        hi = j > hi ? j : hi;
    }
    *lo_io = lo;
    *hi_io = hi;
    /* m >= HALF puts j above ZERO + HALF (positive) or below ZERO - HALF (negative); the
     * span passed in is empty (HIST_BINS, -1) or inside the range, so this tests only
     * this call's values (a flag instead of a count: one compare and add fewer per value) */
    return lo < MK_HIST_ZERO - MK_HIST_HALF || hi > MK_HIST_ZERO + MK_HIST_HALF;
}

/* Running sums of the nser series v[q stride + i] (q < nser, i < n) into acc[q],
 * each adding its values one at a time in draw order: the additions of a
 * sequential loop, with four series per 4-lane vector (the lanes are series, so
 * every lane still adds its own series' draws in order) and three such vectors
 * in flight so that the add latency does not serialise them. Each step loads
 * four draws of four series and transposes them in registers (the shuffles of
 * mk_load_inputs). Series left over after whole groups of four, and draws after
 * the last whole group of four, are added by a scalar loop. The same additions
 * in the same order on every copy: bit-identical sums. */
typedef double mk_v4d __attribute__((vector_size(32)));
typedef int64_t mk_v4l __attribute__((vector_size(32)));
/* ng (1 or 3, a constant after inlining) groups of four series from v */
MK_INLINE void mk_sums_groups(const double* restrict v, int64_t stride, int64_t n, int ng,
                              double* restrict acc) {
    mk_v4d a[3];
    for (int g = 0; g < ng; g++) memcpy(&a[g], acc + 4 * g, sizeof(mk_v4d));
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        for (int g = 0; g < ng; g++) {
            const double* p = v + 4 * g * stride + i;
            mk_v4d r0, r1, r2, r3;
            memcpy(&r0, p, sizeof r0);
            memcpy(&r1, p + stride, sizeof r1);
            memcpy(&r2, p + 2 * stride, sizeof r2);
            memcpy(&r3, p + 3 * stride, sizeof r3);
            mk_v4d t0 = __builtin_shuffle(r0, r1, (mk_v4l){0, 4, 2, 6});
            mk_v4d t1 = __builtin_shuffle(r0, r1, (mk_v4l){1, 5, 3, 7});
            mk_v4d t2 = __builtin_shuffle(r2, r3, (mk_v4l){0, 4, 2, 6});
            mk_v4d t3 = __builtin_shuffle(r2, r3, (mk_v4l){1, 5, 3, 7});
            a[g] = a[g] + __builtin_shuffle(t0, t2, (mk_v4l){0, 1, 4, 5});     /* draw i */
            a[g] = a[g] + __builtin_shuffle(t1, t3, (mk_v4l){0, 1, 4, 5});     /* i + 1 */
            a[g] = a[g] + __builtin_shuffle(t0, t2, (mk_v4l){2, 3, 6, 7});     /* i + 2 */
            a[g] = a[g] + __builtin_shuffle(t1, t3, (mk_v4l){2, 3, 6, 7});     /* i + 3 */
        }
    }
    for (int g = 0; g < ng; g++) memcpy(acc + 4 * g, &a[g], sizeof(mk_v4d));
    for (int q = 0; q < 4 * ng; q++)
        for (int64_t j = i; j < n; j++) acc[q] += v[q * stride + j];
}

static void mk_sums_isa(const double* restrict v, int64_t stride, int64_t n, int nser,
                        double* restrict acc) {
    int q = 0;
    for (; nser - q >= 12; q += 12) mk_sums_groups(v + q * stride, stride, n, 3, acc + q);
    for (; nser - q >= 4; q += 4) mk_sums_groups(v + q * stride, stride, n, 1, acc + q);
    for (; q < nser; q++) {
        double s = acc[q];
        for (int64_t j = 0; j < n; j++) s += v[q * stride + j];
        acc[q] = s;
    }
}

/* mk_exp, mk_rsqrt, mk_log and mk_pow_pos over an array (tests compare them
 * with NumPy); a short tail is padded with the first element. */
#define MK_ARRAY_FN(name, expr)                                                     \
    static void name(const double* x, double* y, int64_t n, double p) {            \
        (void)p;                                                                    \
        for (int64_t i = 0; i < n; i += MK_W) {                                     \
            double buf[MK_W];                                                       \
            int m = (int)(n - i < MK_W ? n - i : MK_W);                             \
            for (int l = 0; l < MK_W; l++) buf[l] = x[i + (l < m ? l : 0)];         \
            mk_vd v;                                                                \
            memcpy(&v, buf, sizeof v);                                              \
            v = expr;                                                               \
            memcpy(buf, &v, sizeof v);                                              \
            for (int l = 0; l < m; l++) y[i + l] = buf[l];                          \
        }                                                                           \
    }
MK_ARRAY_FN(mk_exp_array_isa, mk_exp(v))
MK_ARRAY_FN(mk_rsqrt_array_isa, mk_rsqrt(v))
MK_ARRAY_FN(mk_log_array_isa, mk_log(v))
MK_ARRAY_FN(mk_pow_array_isa, mk_pow_pos(v, p))
#undef MK_ARRAY_FN

#undef mk_vd
#undef mk_vl
#undef mk_b
#undef mk_sel
#undef mk_min
#undef mk_max
#undef mk_st
#undef mk_seli
#undef mk_bins_isa
#undef mk_sums_isa
#undef mk_sums_groups
#undef mk_v4d
#undef mk_v4l
#undef mk_exp
#undef mk_rsqrt
#undef mk_log
#undef mk_pow_pos
#undef mk_load_inputs
#undef mk_log_array_isa
#undef mk_pow_array_isa
#undef mk_eval
#undef mk_ctx
#undef mk_chunk
#undef mk_fleet
#undef mk_setup
#undef mk_pass1
#undef mk_pass2
#undef MK_S_YEAR
#undef MK_S_DAY
#undef MK_J_KWH
#undef mk_block_isa
#undef mk_exp_array_isa
#undef mk_rsqrt_array_isa
#undef MK_F
#undef MK_F2
#undef MK_F3
