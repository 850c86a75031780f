/*
 * Body of the SIMD sampling stage, included once per instruction set by
 * market_sample_simd.h with MK_SFX and MK_W set, after the market kernel's body
 * of the same suffix (whose vector types and mk_log it uses). No include guard
 * on purpose.
 */
#ifndef MK_SFX
#error "include market_sample_simd.h, not this file"
#endif
#define MK_F3(n, s) n##s
#define MK_F2(n, s) MK_F3(n, s)
#define MK_F(n) MK_F2(n, MK_SFX)
#define mk_vd MK_F(mk_vd)
#define mk_vl MK_F(mk_vl)
#define mk_b MK_F(mk_b)
#define mk_sel MK_F(mk_sel)
#define mk_log MK_F(mk_log)
#define ms_any MK_F(ms_any)
#define ms_bytes MK_F(ms_bytes)
#define ms_lane_bits MK_F(ms_lane_bits)
#define ms_sqrt MK_F(ms_sqrt)
#define ms_h8 MK_F(ms_h8)
#define ms_central MK_F(ms_central)
#define ms_tail MK_F(ms_tail)
#define ms_two_pass MK_F(ms_two_pass)
#define ms_ndtri_p MK_F(ms_ndtri_p)
#define ms_ndtri_qr MK_F(ms_ndtri_qr)
#define ms_phi MK_F(ms_phi)
#define ms_transform_isa MK_F(ms_transform_isa)
#define ms_correlate_isa MK_F(ms_correlate_isa)
#define mk_exp MK_F(mk_exp)
#define ms_scores_isa MK_F(ms_scores_isa)
#define ms_ndtri_isa MK_F(ms_ndtri_isa)

/* The lanes of a mask (lanes 0 or -1) as MK_W bytes in an integer, byte l from lane l:
 * one narrowing conversion (VPMOVQB on AVX-512) instead of extracting the lanes one by
 * one, which is what GCC makes of a loop over m[l]. */
MK_INLINE uint64_t ms_bytes(mk_vl m) {
    typedef signed char ms_vc __attribute__((vector_size(MK_W)));
    ms_vc c = __builtin_convertvector(m, ms_vc);
    uint64_t b = 0;
    memcpy(&b, &c, sizeof c);
    return b;
}
/* some lane of the mask m is true */
MK_INLINE int ms_any(mk_vl m) { return ms_bytes(m) != 0; }
/* bit l set where lane l of the mask m is true: the low bit of each byte of ms_bytes
 * moved to bit 56 + l by one multiplication (every partial product lands on its own
 * bit, so none carries), then shifted down */
MK_INLINE unsigned ms_lane_bits(mk_vl m) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return (unsigned)(((ms_bytes(m) & 0x0101010101010101ULL) * 0x0102040810204080ULL) >> 56);
#else                   /* byte l is not at bits 8l: lane by lane */
    unsigned bits = 0;
    for (int l = 0; l < MK_W; l++) bits |= (unsigned)(m[l] & 1) << l;
    return bits;
#endif
}

/* lane-wise correctly rounded sqrt: the vector square-root instruction of the copy's
 * target (GCC does not vectorise __builtin_sqrt under -fmath-errno, the build's
 * default); the portable fallback is per lane. */
MK_INLINE mk_vd ms_sqrt(mk_vd x) {
#if MK_HAS_CLONES && MK_W == 8
    return (mk_vd)_mm512_sqrt_pd((__m512d)x);
#elif MK_HAS_CLONES && defined(__AVX__)
    return (mk_vd)_mm256_sqrt_pd((__m256d)x);
#elif defined(__SSE2__)
    __m128d lo = _mm_sqrt_pd((__m128d){x[0], x[1]}), hi = _mm_sqrt_pd((__m128d){x[2], x[3]});
    return (mk_vd){lo[0], lo[1], hi[0], hi[1]};
#else
    mk_vd y = x;
    for (int l = 0; l < MK_W; l++) y[l] = __builtin_sqrt(x[l]);
    return y;
#endif
}

/* c[0] + c[1] r + ... + c[7] r^7 in Horner's order (AS 241's) */
MK_INLINE mk_vd ms_h8(const double* c, mk_vd r) {
    return ((((((c[7] * r + c[6]) * r + c[5]) * r + c[4]) * r + c[3]) * r + c[2]) * r + c[1]) * r + c[0];
}

/* AS 241's central region: Phi^-1(1/2 + q) for |q| <= 0.425 */
MK_INLINE mk_vd ms_central(mk_vd q) {
    mk_vd c = 0.180625 - q * q;
    return q * ms_h8(MS_AS241_A, c) / ms_h8(MS_AS241_B, c);
}

/* AS 241's tails: Phi^-1(1/2 + q) for |q| > 0.425 given r = min(1/2 + q, 1/2 - q)
 * (exact); r = 0 gives -inf or +inf (the sign of q), r < 0 or NaN gives NaN. The
 * far tail (s > 5) only for vectors with such a lane. */
MK_INLINE mk_vd ms_tail(mk_vd q, mk_vd r) {
    mk_vl pos = r > 0.0;
    mk_vd s = ms_sqrt(-mk_log(mk_sel(pos, r, mk_b(0.5))));   /* 0.5: a harmless value */
    mk_vd t = s - 1.6;
    mk_vd xt = ms_h8(MS_AS241_C, t) / ms_h8(MS_AS241_D, t);
    mk_vl far = (s > 5.0) & pos;
    if (ms_any(far)) {
        mk_vd t5 = s - 5.0;
        xt = mk_sel(far, ms_h8(MS_AS241_E, t5) / ms_h8(MS_AS241_F, t5), xt);
    }
    xt = mk_sel(pos, xt, mk_sel(r == 0.0, mk_b(__builtin_inf()), mk_b(__builtin_nan(""))));
    return mk_sel(q < 0.0, -xt, xt);
}

/* z[i] = Phi^-1 of in[i], i < n, in blocks of MS_BLOCK values and two passes: the
 * central rational function for every value (full vectors), then the tails for
 * the values outside the centre, gathered into full vectors (15 % of uniform
 * values, but a tail lane in 73 % of 8-lane vectors: compaction does the tail
 * work once per tail value instead of once per vector). from_uniform: in[i] is a
 * uniform u on the 2^-53 grid, q = (u - 1/2) + 2^-54 and r = 1/2 - |q| (the cell
 * midpoint); else in[i] is p, q = p - 1/2, r = p below 1/2, else 1 - p. z may be
 * in. Values are lane-wise, so they do not depend on the grouping. */
MK_INLINE void ms_two_pass(const double* in, double* z, int64_t n, int from_uniform) {
    double qb[MS_BLOCK + MK_W], rb[MS_BLOCK + MK_W];
    int32_t idx[MS_BLOCK + MK_W];     /* the compaction writes up to MK_W - 1 past the last kept */
    for (int64_t i0 = 0; i0 < n; i0 += MS_BLOCK) {
        int m = (int)(n - i0 < MS_BLOCK ? n - i0 : MS_BLOCK);
        int nt = 0;
        for (int i = 0; i < m; i += MK_W) {
            mk_vd v;
            int w = m - i < MK_W ? m - i : MK_W;
            if (w == MK_W) memcpy(&v, in + i0 + i, sizeof v);
            else for (int l = 0; l < MK_W; l++) v[l] = l < w ? in[i0 + i + l] : 0.5;
            mk_vd q, r;
            if (from_uniform) {
                q = (v - 0.5) + 0x1p-54;
                r = 0.5 - (mk_vd)((mk_vl)q & 0x7FFFFFFFFFFFFFFFLL);
            } else {
                q = v - 0.5;
                r = mk_sel(q < 0.0, v, 1.0 - v);
            }
            mk_vd y = ms_central(q);
            mk_vl tail = ~((mk_vd)((mk_vl)q & 0x7FFFFFFFFFFFFFFFLL) <= 0.425);   /* NaN too */
            memcpy(qb + i, &q, sizeof q);      /* qb, rb have room for a whole last vector */
            memcpy(rb + i, &r, sizeof r);
            unsigned bits = ms_lane_bits(tail) & ((1u << w) - 1u);
            for (int l = 0; l < MK_W; l++) {   /* branch-free compaction: every lane written, */
                idx[nt] = i + l;               /* kept where it is a tail lane */
                nt += (bits >> l) & 1u;
            }
            if (w == MK_W) memcpy(z + i0 + i, &y, sizeof y);
            else for (int l = 0; l < w; l++) z[i0 + i + l] = y[l];
        }
        for (int j = 0; j < nt; j += MK_W) {
            int w = nt - j < MK_W ? nt - j : MK_W;
            mk_vd q, r;
            for (int l = 0; l < MK_W; l++) {
                int k = idx[j + (l < w ? l : 0)];
                q[l] = qb[k];
                r[l] = rb[k];
            }
            mk_vd y = ms_tail(q, r);
            for (int l = 0; l < w; l++) z[i0 + idx[j + l]] = y[l];
        }
    }
}

/* scores of uniforms on the 2^-53 grid (cell midpoints), i < n */
static void ms_scores_isa(const double* u, double* z, int64_t n) { ms_two_pass(u, z, n, 1); }

/* Phi^-1(p[i]), i < n */
static void ms_ndtri_isa(const double* p, double* z, int64_t n) { ms_two_pass(p, z, n, 0); }

/* Phi^-1(1/2 + q) given r = min(1/2 + q, 1/2 - q): the central rational function,
 * the tails for vectors with a lane outside the centre (NaN too; the values of
 * _ndtri_qr in sample_kernel.py) */
MK_INLINE mk_vd ms_ndtri_qr(mk_vd q, mk_vd r) {
    mk_vd y = ms_central(q);
    mk_vl tail = ~((mk_vd)((mk_vl)q & 0x7FFFFFFFFFFFFFFFLL) <= 0.425);
    if (ms_any(tail)) y = mk_sel(tail, ms_tail(q, r), y);
    return y;
}

/* Phi^-1(p), p-form (the values of _ndtri in sample_kernel.py) */
MK_INLINE mk_vd ms_ndtri_p(mk_vd p) {
    mk_vd q = p - 0.5;
    return ms_ndtri_qr(q, mk_sel(q < 0.0, p, 1.0 - p));
}

/* standard normal CDF erfc(-z / sqrt 2) / 2, lane by lane with libm's erfc (the
 * scalar twin calls the same function) */
MK_INLINE mk_vd ms_phi(mk_vd z) {
    mk_vd y = z;
    for (int l = 0; l < MK_W; l++) y[l] = 0.5 * erfc(-z[l] * 0.7071067811865476);
    return y;
}

/* The inverse transforms of _fast_from_scores (sample_kernel.py) on MK_W rows at a
 * time: for each column, MK_W values gathered from z (stride nz) or u (stride nu),
 * transformed as vectors, scattered into x (stride MK_N_IN); the rows of a block of
 * z, u and x stay in L1. A short last block repeats row n - 1 in its padding lanes
 * and stores only the rows it has. Codes and parameters: see _fast_from_scores.
 * References: triangular inverse CDF, Vose, D. (2008), "Risk Analysis", 3rd ed., Wiley;
 * inverse transform from a uniform, Devroye, L. (1986), "Non-Uniform Random Variate
 * Generation", sec. II.2; truncated normal by the inverse CDF of the truncated base,
 * Johnson, Kotz and Balakrishnan (1994), "Continuous Univariate Distributions" vol. 1,
 * sec. 10.1; ndtri, Wichura (1988), AS 241 (market_sample_simd.h). */
static void ms_transform_isa(const double* z, int64_t nz, const double* u, int64_t nu,
                             const int64_t* cols, const int64_t* ocols, const int64_t* codes,
                             const double* params, int64_t k, double* x, int64_t n) {
    for (int64_t i0 = 0; i0 < n; i0 += MK_W) {
        int m = (int)(n - i0 < MK_W ? n - i0 : MK_W);
        int64_t row[MK_W];
        for (int l = 0; l < MK_W; l++) row[l] = i0 + (l < m ? l : m - 1);
        for (int64_t c = 0; c < k; c++) {
            int64_t code = codes[c], j = cols[c], oc = ocols[c];
            const double* pr = params + c * MS_N_PARAMS;
            double p0 = pr[0], p1 = pr[1], p2 = pr[2];
            mk_vd v, y;
            if (code == MS_FIXED) {
                for (int l = 0; l < m; l++) x[(i0 + l) * MK_N_IN + oc] = p0;
                continue;
            }
            if (MS_READS_U(code))
                for (int l = 0; l < MK_W; l++) v[l] = u[row[l] * nu + j];
            else
                for (int l = 0; l < MK_W; l++) v[l] = z[row[l] * nz + j];
            if (code == MS_UNIFORM || code == MS_TRIANGULAR) v = ms_phi(v);
            if (code == MS_U_UNIFORM || code == MS_UNIFORM) {
                double w = p1 - p0;
                y = p0 + w * v;
            } else if (code == MS_U_TRIANGULAR || code == MS_TRIANGULAR) {
                double fc = (p1 - p0) / (p2 - p0);
                double a_l = (p2 - p0) * (p1 - p0), a_r = (p2 - p0) * (p2 - p1);
                mk_vl left = v < fc;
                mk_vd s = ms_sqrt(mk_sel(left, v * a_l, (1.0 - v) * a_r));
                y = mk_sel(left, p0 + s, p2 - s);
            } else if (code == MS_NORMAL) {
                y = p0 + p1 * v;
            } else if (code == MS_LOGNORMAL) {
                y = mk_exp(p0 + p1 * v);
            } else {                                  /* truncated (7-10) */
                double p3 = pr[3], lo = pr[4], hi = pr[5];
                mk_vd t;
                if (MS_READS_U(code)) {
                    /* u's cell midpoint m = u + 2^-54 (exact below 1/2) and 1 - m = (1 - u) - 2^-54
                     * (exact from 1/2): p = F(a) + w m; r = p below 1/2, else 1 - p = (1 - F(b)) +
                     * w (1 - m), with 1 - F(b) = (1 - F(a)) - w clamped at 0; so u = 0 and the top of
                     * the grid give finite values inside the support (never the bound F(a) or 1) */
                    double fbc = (1.0 - p2) - p3;
                    fbc = fbc > 0.0 ? fbc : 0.0;
                    mk_vd p = p2 + p3 * (v + 0x1p-54);
                    mk_vd q = p - 0.5;
                    t = ms_ndtri_qr(q, mk_sel(q < 0.0, p, fbc + p3 * ((1.0 - v) - 0x1p-54)));
                } else {
                    t = ms_ndtri_p(p2 + p3 * ms_phi(v));
                }
                y = code == MS_TRUNC_LOGNORMAL || code == MS_U_TRUNC_LOGNORMAL ? mk_exp(p0 + p1 * t) : p0 + p1 * t;
                y = mk_sel(y < lo, mk_b(lo), y);
                y = mk_sel(y > hi, mk_b(hi), y);
            }
            for (int l = 0; l < m; l++) x[(i0 + l) * MK_N_IN + oc] = y[l];
        }
    }
}

/* z[:, cols] <- z[:, cols] @ factor.T for rows 0 .. n-1 (z has nz columns), MK_W rows
 * at a time: each output is 0 + f[a][0] t[0] + f[a][1] t[1] + ..., the order of
 * _correlate_columns (sample_kernel.py), lane by lane. k <= MS_MAX_CORR; a short last
 * block repeats row n - 1 in its padding lanes and stores only its rows. */
static void ms_correlate_isa(double* z, int64_t nz, const int64_t* cols, int64_t k, const double* f,
                             int64_t n) {
    mk_vd t[MS_MAX_CORR];
    for (int64_t i0 = 0; i0 < n; i0 += MK_W) {
        int m = (int)(n - i0 < MK_W ? n - i0 : MK_W);
        int64_t row[MK_W];
        for (int l = 0; l < MK_W; l++) row[l] = i0 + (l < m ? l : m - 1);
        for (int64_t b = 0; b < k; b++)
            for (int l = 0; l < MK_W; l++) t[b][l] = z[row[l] * nz + cols[b]];
        for (int64_t a = 0; a < k; a++) {
            mk_vd acc = mk_b(0.0);
            for (int64_t b = 0; b < k; b++) acc = acc + f[a * k + b] * t[b];
            for (int l = 0; l < m; l++) z[(i0 + l) * nz + cols[a]] = acc[l];
        }
    }
}

#undef mk_vd
#undef mk_vl
#undef mk_b
#undef mk_sel
#undef mk_log
#undef ms_any
#undef ms_bytes
#undef ms_lane_bits
#undef ms_sqrt
#undef ms_h8
#undef ms_central
#undef ms_tail
#undef ms_two_pass
#undef ms_ndtri_p
#undef ms_ndtri_qr
#undef ms_phi
#undef ms_transform_isa
#undef ms_correlate_isa
#undef mk_exp
#undef ms_scores_isa
#undef ms_ndtri_isa
#undef MK_F
#undef MK_F2
#undef MK_F3
