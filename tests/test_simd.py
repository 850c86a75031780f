"""The C kernel's instruction-set copies and its vector expm1 (ext/roofline_simd.h).

The body of the C kernel is compiled once per instruction set (AVX-512, AVX2,
baseline) and the best copy this CPU has runs; ``INFERCAST_SIMD`` selects a lower
one. Every copy must give bit-identical outputs (IEEE arithmetic lane by lane,
-ffp-contract=off; the sign and payload of a NaN where two NaNs meet, possible only
with non-finite table values the API refuses, are not part of that), and the branch-free expm1 of MoE lanes must stay within
2 ulp of numpy.expm1 (the NumPy reference uses numpy.expm1).
"""
from __future__ import annotations

import numpy as np
import pytest

from engine._ext import _roofline
from .simd_copies import run_copy

ULP = np.finfo(np.float64).eps


def _kernel_expm1(x):
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty_like(x)
    _roofline._expm1_nonpos(x, out)
    return out


def test_expm1_within_two_ulp_of_numpy():
    rng = np.random.default_rng(20261122)
    x = -np.concatenate([
        10.0 ** rng.uniform(-320, 3, 400_000),       # every scale, subnormal to -1000
        rng.uniform(0.0, 1.0, 200_000),              # |x| < 1: k in {-1, 0}
        rng.uniform(59.0, 61.0, 10_000),             # around the clamp at -60
        rng.uniform(36.0, 60.0, 100_000),            # where the result rounds to -1
        [0.0, 5e-324, 1e-300, 0.5 * np.log(2), np.log(2), 37.5, 60.0, 1e300, np.inf],
    ])
    got, ref = _kernel_expm1(x), np.expm1(x)
    assert np.all(np.isfinite(got))
    rel = np.abs(got - ref) / np.maximum(np.abs(ref), np.finfo(np.float64).tiny)
    assert rel.max() <= 2 * ULP, (x[np.argmax(rel)], got[np.argmax(rel)], ref[np.argmax(rel)])
    np.testing.assert_array_equal(got[x == 0.0], 0.0)
    np.testing.assert_array_equal(got[x <= -60.0], -1.0)
    # the kernel skips the prefill expm1 where every MoE lane has x <= -40 and
    # uses -1 instead: that must be the function's own result there
    assert _roofline.EXPM1_SATURATED == -40.0
    np.testing.assert_array_equal(got[x <= _roofline.EXPM1_SATURATED], -1.0)


def test_expm1_rejects_positive_input_and_length_mismatch():
    with pytest.raises(ValueError, match=r"x\[1\] = 0.5"):
        _roofline._expm1_nonpos(np.array([-1.0, 0.5]), np.empty(2))
    with pytest.raises(ValueError, match="out has 3"):
        _roofline._expm1_nonpos(np.array([-1.0, -2.0]), np.empty(3))


_CHILD = r"""
import json, sys
import numpy as np
sys.path.insert(0, {root!r})
from benchmarks.bench_roofline import make_points
from engine.core import dispatch
from engine._ext import _roofline
mt, ct, db, a = make_points(4099, seed=5)   # not a multiple of the lane count
rng = np.random.default_rng(11)
n = len(a["tp"])
# every activation format each chip has a rate for, pipelines, wide tensor parallelism
ok = np.isfinite(ct[:, :7])[a["chip_idx"]]
a["act_dt"] = np.argmax(rng.random((n, 7)) * ok, axis=1).astype(np.int8)
a["pp"] = rng.integers(1, 9, n).astype(np.int32)
a["tp"] = rng.choice(np.array([1, 2, 4, 8, 16, 32, 64], dtype=np.int32), n)
a["output"][::5] = 1                        # groups mixing single-token outputs
out = dispatch.roofline(mt, ct, db, **a, backend="cython", n_threads=1)
loop = dispatch.roofline(mt, ct, db, **a, backend="cython", n_threads=1, loop_decode=True)
x = -np.concatenate([10.0 ** np.linspace(-20, 2, 1001), [0.0]])
e = np.empty_like(x)
_roofline._expm1_nonpos(x, e)
print(json.dumps({{"isa": _roofline.simd_isa(),
                   "f": out.out_f.tobytes().hex(), "b": out.out_bound.tobytes().hex(),
                   "loop": loop.out_f.tobytes().hex(),
                   "fits": out.fits.tobytes().hex(), "mb": out.max_batch.tobytes().hex(),
                   "e": e.tobytes().hex()}}))
"""


def _run_copy(isa):
    return run_copy(_CHILD, isa)


def test_every_instruction_set_copy_gives_identical_bits():
    best = _run_copy(None)
    assert best["isa"] == _roofline.simd_isa()
    seen = {best["isa"]}
    for isa in ("avx2", "baseline"):
        got = _run_copy(isa)
        seen.add(got["isa"])
        for key in ("f", "b", "fits", "mb", "e", "loop"):
            assert got[key] == best[key], (isa, got["isa"], key)
    # the override picks the baseline copy on every CPU; on a CPU without AVX-512
    # only the 4-lane copies are compared
    assert "baseline" in seen


def test_point_result_does_not_depend_on_its_group():
    """Work skipped when every lane of a group lacks it (a decode segment, network
    terms) must not change any lane's result, even with a non-finite rate (which
    the public API refuses, but the kernel must still treat lane by lane)."""
    from benchmarks.bench_roofline import make_points
    from engine.core import dispatch

    mt, ct, db, a = make_points(64, seed=3)
    ct = ct.copy()
    a = {k: v.copy() for k, v in a.items()}
    ct[a["chip_idx"][0], a["act_dt"][0]] = np.nan   # no rate for point 0's format
    a["chip_idx"][:] = a["chip_idx"][0]
    a["output"][:] = 1                       # no decode step anywhere ...
    a["output"][5] = 300                     # ... except in point 5 (same 8-lane group)
    a["pp"][9] = 3
    together = dispatch.roofline(mt, ct, db, **a, backend="cython", n_threads=1,
                                 check_ranges=False)
    for i in range(16):
        alone = dispatch.roofline(mt, ct, db, **{k: v[i:i + 1] for k, v in a.items()},
                                  backend="cython", n_threads=1, check_ranges=False)
        np.testing.assert_array_equal(alone.out_f[:, 0], together.out_f[:, i], err_msg=str(i))
        np.testing.assert_array_equal(alone.out_bound[:, 0], together.out_bound[:, i])


def test_many_table_rows_give_the_same_bits():
    """With at most 16 models and chips the 8-lane copy looks table columns up by
    permute; with more it transposes rows. Both must give the same bits: the
    same points against tables repeated past 16 rows (indices moved into the
    copies) for the point kernel and the grid walk."""
    from benchmarks.bench_roofline import make_points
    from engine.core import dispatch
    from engine.core import layout as L
    from engine.dtypes import DTYPES

    mt, ct, db, a = make_points(4099, seed=5)
    # a scale-up domain of 4 chips and a scale-out link, so every chip column counts
    ct = ct.copy()
    ct[:, L.C_SCALEUP_DOMAIN] = 4.0
    ct[:, L.C_INV_SCALEOUT_BW] = 1.0 / 50e9
    ct[:, L.C_SCALEOUT_LATENCY] = 5e-6
    reps_m, reps_c = -(-17 // len(mt)), -(-17 // len(ct))
    mt_big, ct_big = np.tile(mt, (reps_m + 1, 1)), np.tile(ct, (reps_c + 1, 1))
    assert len(mt_big) > 16 and len(ct_big) > 16
    moved = dict(a, model_idx=(a["model_idx"] + reps_m * len(mt)).astype(np.int32),
                 chip_idx=(a["chip_idx"] + reps_c * len(ct)).astype(np.int32))
    small = dispatch.roofline(mt, ct, db, **a, backend="cython", n_threads=1)
    big = dispatch.roofline(mt_big, ct_big, db, **moved, backend="cython", n_threads=1)
    for name in ("out_f", "out_bound", "fits", "max_batch"):
        assert getattr(small, name).tobytes() == getattr(big, name).tobytes(), name
    # tables of exactly 16 rows (the permute path's last) and 17, every index moved
    # to the highest row with the same contents, so the permute's upper half is read
    for nm, nc in [(16, 16), (16, 17), (17, 16)]:
        mt_k, ct_k = mt[np.arange(nm) % len(mt)], ct[np.arange(nc) % len(ct)]

        def top(i, n, k):
            return (i + k * ((n - 1 - i) // k)).astype(np.int32)
        hi_rows = dict(a, model_idx=top(a["model_idx"], nm, len(mt)),
                       chip_idx=top(a["chip_idx"], nc, len(ct)))
        assert hi_rows["model_idx"].max() == nm - 1 and hi_rows["chip_idx"].max() == nc - 1
        got = dispatch.roofline(mt_k, ct_k, db, **hi_rows, backend="cython", n_threads=1)
        for name in ("out_f", "out_bound", "fits", "max_batch"):
            assert getattr(small, name).tobytes() == getattr(got, name).tobytes(), (nm, nc, name)

    bf16 = DTYPES["bf16"][0]
    axes = dict(model_idx=np.arange(len(mt), dtype=np.int32),
                chip_idx=np.arange(len(ct), dtype=np.int32),
                tp=np.array([1, 2, 8], np.int32), pp=np.array([1, 3], np.int32),
                batch=np.array([1, 7, 64], np.int32), prompt=np.array([1, 100, 5000], np.int32),
                output=np.array([1, 17, 300], np.int32), w_dt=np.array([bf16], np.int8),
                kv_dt=np.array([bf16], np.int8), act_dt=np.array([bf16], np.int8))
    axes_big = dict(axes, model_idx=axes["model_idx"] + np.int32(reps_m * len(mt)),
                    chip_idx=axes["chip_idx"] + np.int32(reps_c * len(ct)))
    g_small = dispatch.roofline_grid(mt, ct, db, axes, backend="cython", n_threads=1)
    g_big = dispatch.roofline_grid(mt_big, ct_big, db, axes_big, backend="cython", n_threads=1)
    for name in ("out_f", "out_bound", "fits", "max_batch"):
        assert getattr(g_small, name).tobytes() == getattr(g_big, name).tobytes(), name
    assert g_small.fits.any() and not g_small.fits.all()


def test_prefill_expm1_skip_does_not_depend_on_the_group():
    """The prefill expm1 is skipped only where every MoE lane of a group has
    B P log_keep <= EXPM1_SATURATED. A point just past that threshold, alone (its
    group padded with copies of it) or among points on the other side, must give
    the same bits, which holds only if the function is exactly -1 there."""
    from benchmarks.bench_roofline import make_points
    from engine.core import dispatch

    mt, ct, db, a = make_points(64, seed=3)
    a = {k: v.copy() for k, v in a.items()}
    moe = int(np.flatnonzero(mt[:, 13] > 0)[0])     # layout.M_EXPERTS
    log_keep = mt[moe, 15]                            # layout.M_LOG_KEEP
    a["model_idx"][:] = moe
    a["batch"][:] = 1
    # prompts putting B P log_keep on both sides of the threshold and far past it
    x = np.array([-36.5, -37.5, -39.5, -40.5, -45.0, -80.0, -20.0, -38.9] * 8)
    a["prompt"][:] = np.maximum(1, np.round(x / log_keep)).astype(np.int32)
    xs = a["prompt"] * log_keep
    assert (xs > _roofline.EXPM1_SATURATED).any() and (xs <= _roofline.EXPM1_SATURATED).any()
    together = dispatch.roofline(mt, ct, db, **a, backend="cython", n_threads=1,
                                 check_ranges=False)
    for i in range(16):
        alone = dispatch.roofline(mt, ct, db, **{k: v[i:i + 1] for k, v in a.items()},
                                  backend="cython", n_threads=1, check_ranges=False)
        assert alone.out_f[:, 0].tobytes() == together.out_f[:, i].tobytes(), i
