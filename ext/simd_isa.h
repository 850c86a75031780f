/*
 * Which copy of a SIMD kernel body this CPU runs, shared by the roofline
 * (roofline_simd.h) and market (market_simd.h) kernels so both choose by one
 * rule: AVX-512 (F/BW/CD/DQ/VL and BMI2) if the CPU has it, else AVX2, else
 * the baseline of the build; the environment variable INFERCAST_SIMD
 * (avx2 or baseline) forces a lower copy for tests and benchmarks (other
 * values are ignored). __builtin_cpu_supports checks that the OS saves the
 * wider registers (XGETBV), so a copy never runs where it would fault.
 */
#ifndef INFERCAST_SIMD_ISA_H
#define INFERCAST_SIMD_ISA_H

/* GCC vector extensions (__builtin_shuffle, __builtin_convertvector) need GCC 9+;
 * clang spells the shuffle differently. Fail early with a clear message. */
#if !defined(__GNUC__) || defined(__clang__) || __GNUC__ < 9
#error "infercast's C kernels need GCC 9 or newer (GCC vector extensions); build with CC=gcc"
#endif

#include <stdlib.h>
#include <string.h>

/* 1 where the build compiles the AVX2 and AVX-512 copies (x86-64). */
#if defined(__x86_64__) && !defined(INFERCAST_NO_CLONES)
#define INFERCAST_HAS_CLONES 1
#else
#define INFERCAST_HAS_CLONES 0
#endif

/* The target of the AVX-512 copies, for `#pragma GCC push_options` regions:
 * x86-64-v4 (GCC 12+; its BMI/LZCNT/MOVBE measured ~5% faster than AVX-512
 * alone in the roofline kernel), else the same features listed (accepted since
 * GCC 5). infercast_isa_detect below runs that copy only where the CPU has them. */
#if __GNUC__ >= 12
#define INFERCAST_TARGET_V4 _Pragma("GCC target(\"arch=x86-64-v4\")")
#else
#define INFERCAST_TARGET_V4 \
    _Pragma("GCC target(\"avx512f,avx512bw,avx512cd,avx512dq,avx512vl,bmi,bmi2,lzcnt,movbe,popcnt\")")
#endif

static int infercast_isa_detect(void) {
    int best = 0;
#if INFERCAST_HAS_CLONES
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("bmi2"))
        best = 2;
    else if (__builtin_cpu_supports("avx2")) best = 1;
#endif
    const char* want = getenv("INFERCAST_SIMD");
    if (want != NULL) {
        if (strcmp(want, "baseline") == 0) return 0;
        if (strcmp(want, "avx2") == 0 && best >= 1) return 1;
    }
    return best;
}

/* The copy this CPU runs (0 baseline, 1 AVX2, 2 AVX-512), read once. */
static int infercast_isa(void) {
    static int isa = -1;                    /* benign race: every thread stores the same value */
    int k = __atomic_load_n(&isa, __ATOMIC_RELAXED);
    if (k < 0) {
        k = infercast_isa_detect();
        __atomic_store_n(&isa, k, __ATOMIC_RELAXED);
    }
    return k;
}

static const char* infercast_isa_name(void) {
    static const char* names[3] = {"baseline", "avx2", "avx512"};
    return names[infercast_isa()];
}

#endif
