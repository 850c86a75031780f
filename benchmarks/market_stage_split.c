/*
 * Time split of the Cython fused summaries kernel (ext/_market.pyx, market_summaries):
 * the C model kernel (mk_block), bin indices (mk_bins), running sums (mk_sums) and
 * histogram counts, in TSC ticks per draw, minimum over batches. Built and run by
 * `python benchmarks/bench_market.py --split` (which writes the inputs); compiled with
 * setup.py's flags. x86-64 only (rdtsc); the TSC rate is measured against
 * CLOCK_MONOTONIC over 0.1 s.
 *
 * The loop is a replica of market_summaries' common path (groups of GROUP series, four
 * histogram rows at a time, two indices per load; uint16 counters), with rdtsc between
 * the stages; it leaves out the exact path (clamped or non-finite values: the default
 * scenario has none; it stops with exit status 4 and a message if it meets one), so
 * keep it in step with the .pyx when that loop changes.
 *
 * usage: market_stage_split INPUTS YEAR_PARAMS N_DRAWS N_YEARS REPS
 */
#include "market_simd.h"

#include <stdio.h>
#include <time.h>
#include <x86intrin.h>

enum { SUB = 128, GROUP = 12 };

static void count4(uint16_t* h0, int64_t hs, const int32_t* i0, int64_t is, int64_t mn) {
    uint16_t *h1 = h0 + hs, *h2 = h1 + hs, *h3 = h2 + hs;
    const int32_t *i1 = i0 + is, *i2 = i1 + is, *i3 = i2 + is;
    int64_t i = 0;
    for (; i + 2 <= mn; i += 2) {
        uint64_t p0, p1, p2, p3;
        memcpy(&p0, i0 + i, 8);
        memcpy(&p1, i1 + i, 8);
        memcpy(&p2, i2 + i, 8);
        memcpy(&p3, i3 + i, 8);
        h0[(uint32_t)p0]++, h1[(uint32_t)p1]++, h2[(uint32_t)p2]++, h3[(uint32_t)p3]++;
        h0[p0 >> 32]++, h1[p1 >> 32]++, h2[p2 >> 32]++, h3[p3 >> 32]++;
    }
    if (i < mn) h0[i0[i]]++, h1[i1[i]]++, h2[i2[i]]++, h3[i3[i]]++;
}

static double tsc_ghz(void) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    uint64_t t0 = __rdtsc();
    double ns;
    do {
        clock_gettime(CLOCK_MONOTONIC, &b);
        ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
    } while (ns < 1e8);
    return (__rdtsc() - t0) / ns;
}

static double* read_doubles(const char* path, int64_t n) {
    double* p = malloc((size_t)n * sizeof(double));
    FILE* f = fopen(path, "rb");
    if (p == NULL || f == NULL || fread(p, sizeof(double), (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "cannot read %lld doubles from %s\n", (long long)n, path);
        exit(2);
    }
    fclose(f);
    return p;
}

int main(int argc, char** argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s INPUTS YEAR_PARAMS N_DRAWS N_YEARS REPS\n", argv[0]);
        return 2;
    }
    int64_t n = atoll(argv[3]);
    int T = atoi(argv[4]), reps = atoi(argv[5]);
    double ghz = tsc_ghz();
    int64_t ns = (int64_t)MK_N_OUT * T;
    double* x = read_doubles(argv[1], n * MK_N_IN);
    double* yp = read_doubles(argv[2], (int64_t)T * MK_N_YP);
    uint16_t* hist = calloc((size_t)(ns * MK_HIST_BINS), sizeof(uint16_t));
    int64_t* span = malloc((size_t)ns * 2 * sizeof(int64_t));
    double* sums = calloc((size_t)ns, sizeof(double));
    char* bufraw = malloc((size_t)(ns * SUB) * sizeof(double) + 64);   /* 64-byte aligned, as market_summaries' */
    double* buf = (double*)(((uintptr_t)bufraw + 63) & ~(uintptr_t)63);
    int32_t* idx = malloc((size_t)(GROUP * SUB) * sizeof(int32_t));
    if (!hist || !span || !sums || !bufraw || !idx) return 3;
    for (int64_t s = 0; s < ns; s++) span[2 * s] = MK_HIST_BINS, span[2 * s + 1] = -1;
    uint64_t best[5] = {~0ull, ~0ull, ~0ull, ~0ull, ~0ull};
    for (int r = 0; r <= reps; r++) {       /* round 0 warms caches and page mappings */
        if ((r + 1) % 8 == 0) memset(hist, 0, (size_t)(ns * MK_HIST_BINS) * sizeof(uint16_t));
        uint64_t t[5] = {0, 0, 0, 0, 0}, t0 = __rdtsc();
        for (int64_t start = 0; start < n; start += SUB) {
            int64_t mn = n - start < SUB ? n - start : SUB, mnp = (mn + 7) & ~7;
            uint64_t a = __rdtsc();
            mk_block(x + start * MK_N_IN, mn, yp, T, buf, mnp);
            t[1] += __rdtsc() - a;
            for (int64_t s0 = 0; s0 < ns; s0 += GROUP) {
                int64_t g = ns - s0 < GROUP ? ns - s0 : GROUP;
                uint64_t b0 = __rdtsc();
                for (int64_t q = 0; q < g; q++) {
                    int64_t lo = span[2 * (s0 + q)], hi = span[2 * (s0 + q) + 1];
                    if (mk_bins(buf + (s0 + q) * mnp, mn, idx + q * mnp, &lo, &hi) != 0) {
                        /* a clamped, infinite or NaN value: its bin index is outside the row, and
                         * the exact path that handles it is not replicated here */
                        fprintf(stderr, "series %lld has a clamped or non-finite value in draws %lld-%lld: "
                                "the split harness times only the common path; use inputs without such "
                                "values\n", (long long)(s0 + q), (long long)start, (long long)(start + mn - 1));
                        return 4;
                    }
                    span[2 * (s0 + q)] = lo, span[2 * (s0 + q) + 1] = hi;
                }
                uint64_t b1 = __rdtsc();
                mk_sums(buf + s0 * mnp, mnp, mn, (int)g, sums + s0);
                uint64_t b2 = __rdtsc();
                int64_t q = 0;
                for (; q + 4 <= g; q += 4)
                    count4(hist + (s0 + q) * MK_HIST_BINS, MK_HIST_BINS, idx + q * mnp, mnp, mn);
                for (; q < g; q++)
                    for (int64_t i = 0; i < mn; i++) hist[(s0 + q) * MK_HIST_BINS + idx[q * mnp + i]]++;
                uint64_t b3 = __rdtsc();
                t[2] += b1 - b0, t[3] += b2 - b1, t[4] += b3 - b2;
            }
        }
        t[0] = __rdtsc() - t0;
        if (r > 0)
            for (int k = 0; k < 5; k++) best[k] = t[k] < best[k] ? t[k] : best[k];
    }
    static const char* names[5] = {"total", "model kernel (mk_block)", "bin indices (mk_bins)",
                                   "running sums (mk_sums)", "histogram counts"};
    printf("%s copy, %lld draws x %d batches, %lld series: ns per draw, minimum per stage\n",
           infercast_isa_name(), (long long)n, reps, (long long)ns);
    for (int k = 0; k < 5; k++) printf("  %-28s %7.1f\n", names[k], best[k] / ghz / (double)n);
    printf("checksum %.17g\n", sums[0]);
    return 0;
}
