"""Every compiled backend equals the NumPy reference; the closed form equals the per-token loop."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.core import dispatch
from engine.core import layout as L
from engine.core.reference import decode_profile_reference, roofline_reference
from engine.dtypes import DTYPES, bytes_table
from engine.tables import build_tables

from .strategies import chips, models, scenario_set, valid_tps

COMPILED = [b for b in ("cython", "numba") if b in dispatch.available_backends()]
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def test_both_compiled_backends_are_built():
    # CI builds the extension and installs numba: a missing backend is a build failure
    assert COMPILED == ["cython", "numba"]


def test_cython_layout_matches_python_layout():
    from engine._ext import _roofline
    py = L.as_dict()
    for k, v in _roofline.layout().items():
        assert py[k] == v, k


def _run(backend, ms, cs, arrays, threads, loop=False):
    mt, ct = build_tables(ms, cs)
    return dispatch.roofline(mt, ct, bytes_table(), **arrays, backend=backend, n_threads=threads,
                             loop_decode=loop)


def _assert_same(got, ref):
    np.testing.assert_array_equal(got.fits, ref.fits)
    np.testing.assert_array_equal(got.max_batch, ref.max_batch)
    np.testing.assert_array_equal(got.out_bound, ref.out_bound)
    np.testing.assert_allclose(got.out_f, ref.out_f, rtol=1e-12, atol=0, equal_nan=True)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("threads", [1, 2])
@SETTINGS
@given(data=scenario_set())
def test_backend_equals_reference(backend, threads, data):
    ms, cs, arrays = data
    ref = _run("numpy", ms, cs, arrays, 1)
    _assert_same(_run(backend, ms, cs, arrays, threads), ref)


@pytest.mark.parametrize("backend", COMPILED)
@SETTINGS
@given(data=scenario_set(max_output=4096))
def test_closed_form_equals_per_token_loop(backend, data):
    ms, cs, arrays = data
    closed = _run(backend, ms, cs, arrays, 1)
    loop = _run(backend, ms, cs, arrays, 2, loop=True)
    _assert_same(loop, closed)


@SETTINGS
@given(data=scenario_set(max_points=4, max_output=3000))
def test_closed_form_equals_physics_written_per_token(data):
    """Decode total from the per-token physics (reference profile) = closed form."""
    ms, cs, arrays = data
    mt, ct = build_tables(ms, cs)
    db = bytes_table()
    out_f, _, fits, _ = roofline_reference(mt, ct, db, **arrays)
    for i in range(len(arrays["batch"])):
        if not fits[i] or arrays["output"][i] < 2:
            continue
        steps = decode_profile_reference(
            mt[arrays["model_idx"][i]], ct[arrays["chip_idx"][i]], db, int(arrays["tp"][i]),
            int(arrays["pp"][i]), int(arrays["batch"][i]), int(arrays["prompt"][i]),
            int(arrays["output"][i]), int(arrays["w_dt"][i]), int(arrays["kv_dt"][i]),
            int(arrays["act_dt"][i]))
        decode_total = out_f[L.O_E2E, i] - out_f[L.O_TTFT, i]
        np.testing.assert_allclose(steps.sum(), decode_total, rtol=1e-12)
        np.testing.assert_allclose(steps.mean(), out_f[L.O_TPOT, i], rtol=1e-12)


@st.composite
def grid_set(draw):
    """A few models and chips and small value lists for every grid axis."""
    ms = draw(st.lists(models(), min_size=1, max_size=2))
    cs = draw(st.lists(chips(), min_size=1, max_size=2))
    tps = sorted(set.intersection(*(set(valid_tps(m)) for m in ms)))
    pick = lambda xs, k=3: draw(st.lists(st.sampled_from(xs), min_size=1, max_size=k,  # noqa: E731
                                         unique=True))
    acts = sorted(set.intersection(*(set(c.supported_compute_dtypes()) for c in cs)))
    axes = dict(
        model_idx=np.arange(len(ms), dtype=np.int32), chip_idx=np.arange(len(cs), dtype=np.int32),
        tp=np.asarray(pick(tps), np.int32),
        pp=np.asarray(pick(list(range(1, min(m.n_layers for m in ms) + 1))[:4], 2), np.int32),
        batch=np.asarray(draw(st.lists(st.integers(1, 1024), min_size=1, max_size=3)), np.int32),
        prompt=np.asarray(draw(st.lists(st.integers(1, 32768), min_size=1, max_size=3)), np.int32),
        output=np.asarray(draw(st.lists(st.integers(1, 4096), min_size=1, max_size=3)), np.int32),
        w_dt=np.asarray([DTYPES[d][0] for d in pick(list(DTYPES), 2)], np.int8),
        kv_dt=np.asarray([DTYPES[d][0] for d in pick(list(DTYPES), 2)], np.int8),
        act_dt=np.asarray([DTYPES[d][0] for d in pick(acts, 2)], np.int8))
    return ms, cs, axes


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("threads", [1, 2])
@SETTINGS
@given(data=grid_set())
def test_grid_kernel_equals_reference_on_expanded_grid(backend, threads, data):
    ms, cs, axes = data
    mt, ct = build_tables(ms, cs)
    mesh = np.meshgrid(*(axes[k] for k in L.GRID_AXES), indexing="ij")
    arrays = {k: np.ascontiguousarray(m.ravel()) for k, m in zip(L.GRID_AXES, mesh)}
    ref = dispatch.roofline(mt, ct, bytes_table(), **arrays, backend="numpy")
    got = dispatch.roofline_grid(mt, ct, bytes_table(), axes, backend=backend, n_threads=threads)
    _assert_same(got, ref)


def test_grid_axes_are_validated():
    mt, ct, arrays = _valid_inputs()
    axes = {k: arrays[k][:1].copy() for k in L.GRID_AXES}
    axes["chip_idx"] = np.array([0, 3], np.int32)
    with pytest.raises(ValueError, match="chip_idx values must be in \\[0, 0\\], got \\[0, 3\\]"):
        dispatch.roofline_grid(mt, ct, bytes_table(), axes)
    axes["chip_idx"] = np.array([], np.int32)
    with pytest.raises(ValueError, match="grid axis chip_idx must have at least one value"):
        dispatch.roofline_grid(mt, ct, bytes_table(), axes)
    axes["chip_idx"] = np.array([0], np.int64)
    with pytest.raises(TypeError, match="chip_idx must have dtype int32"):
        dispatch.roofline_grid(mt, ct, bytes_table(), axes)


def _catalog_points(n, seed=0):
    """Random points over catalog models (dense, MoE, MLA) and chips, pp up to 4."""
    import engine
    ms = [engine.get_model(m) for m in ("llama-3.1-8b", "llama-3.1-70b", "mixtral-8x7b",
                                        "deepseek-v3")]
    cs = [engine.get_chip(c) for c in ("h100-sxm", "b200", "mi300x")]
    mt, ct = build_tables(ms, cs)
    rng = np.random.default_rng(seed)
    dts = np.array([DTYPES["bf16"][0], DTYPES["fp8"][0]], np.int8)
    arrays = dict(model_idx=rng.integers(0, len(ms), n, dtype=np.int32),
                  chip_idx=rng.integers(0, len(cs), n, dtype=np.int32),
                  tp=(2 ** rng.integers(0, 4, n)).astype(np.int32),
                  pp=rng.integers(1, 5, n, dtype=np.int32),
                  batch=rng.integers(1, 1025, n, dtype=np.int32),
                  prompt=rng.integers(1, 32769, n, dtype=np.int32),
                  output=rng.integers(1, 4097, n, dtype=np.int32),
                  w_dt=rng.choice(dts, n), kv_dt=rng.choice(dts, n),
                  act_dt=np.full(n, DTYPES["bf16"][0], np.int8))
    return mt, ct, arrays


@pytest.mark.skipif("numba" not in COMPILED, reason="numba not installed")
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("n", [1, 7, 127, 128, 129, 1000])
def test_numba_blocks_of_any_length_equal_reference(n, threads):
    """The numba kernel works in blocks of BLOCK points: full, partial and single ones."""
    mt, ct, arrays = _catalog_points(n)
    ref = dispatch.roofline(mt, ct, bytes_table(), **arrays, backend="numpy")
    _assert_same(dispatch.roofline(mt, ct, bytes_table(), **arrays, backend="numba",
                                   n_threads=threads), ref)


@pytest.mark.skipif("numba" not in COMPILED, reason="numba not installed")
def test_numba_empty_input_writes_nothing():
    from engine.core import numba_kernels
    mt, ct, arrays = _catalog_points(0)
    out = dispatch.KernelOutput.empty(3)
    out.out_f[:] = 7.0
    numba_kernels.roofline(mt, ct, bytes_table(), *(arrays[k] for k in L.GRID_AXES), out.out_f,
                           out.out_bound, out.fits, out.max_batch, n_threads=2)
    assert (out.out_f == 7.0).all()


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("offset", [0, 3])
def test_large_output_at_unaligned_offset_equals_reference(backend, offset):
    """A large random output (one part per thread, many blocks each) written from an
    unaligned column equals the reference."""
    n = (1 << 16) + 77
    mt, ct, arrays = _catalog_points(n, seed=1)
    ref = dispatch.roofline(mt, ct, bytes_table(), **arrays, backend="numpy")
    out = dispatch.KernelOutput.empty(n + offset)
    dispatch.roofline(mt, ct, bytes_table(), **arrays, backend=backend, n_threads=2, out=out,
                      out_offset=offset)
    sl = slice(offset, offset + n)
    got = dispatch.KernelOutput(out.out_f[:, sl], out.out_bound[:, sl], out.fits[sl],
                                out.max_batch[sl])
    _assert_same(got, ref)


@pytest.mark.skipif("numba" not in COMPILED, reason="numba not installed")
def test_numba_expert_memo_collisions_equal_reference():
    """Two MoE models whose (model row, batch) pairs share memo slots, interleaved in one
    block, with unsaturated prefill and decode steps: each lane gets its own model's value."""
    import engine
    from engine.core import numba_kernels
    ms = ([engine.get_model("deepseek-v3")] + [engine.get_model("llama-3.1-8b")] * 7
          + [engine.get_model("mixtral-8x7b")])      # rows 0 and 8: slots coincide
    cs = [engine.get_chip("h100-sxm"), engine.get_chip("b200")]
    mt, ct = build_tables(ms, cs)
    assert numba_kernels._memo_slot(0, 5) == numba_kernels._memo_slot(8, 5)
    n = 3 * numba_kernels.BLOCK + 5
    rng = np.random.default_rng(3)
    bf = DTYPES["bf16"][0]
    arrays = dict(model_idx=np.where(np.arange(n) % 2 == 0, 0, 8).astype(np.int32),
                  chip_idx=rng.integers(0, 2, n, dtype=np.int32),
                  tp=(2 ** rng.integers(0, 4, n)).astype(np.int32),
                  pp=rng.integers(1, 3, n, dtype=np.int32),
                  batch=rng.integers(1, 9, n, dtype=np.int32),
                  prompt=rng.integers(1, 5, n, dtype=np.int32),
                  output=rng.integers(1, 300, n, dtype=np.int32),
                  w_dt=np.full(n, bf, np.int8), kv_dt=np.full(n, bf, np.int8),
                  act_dt=np.full(n, bf, np.int8))
    ref = dispatch.roofline(mt, ct, bytes_table(), **arrays, backend="numpy")
    one = dispatch.roofline(mt, ct, bytes_table(), **arrays, backend="numba", n_threads=1)
    _assert_same(one, ref)
    two = dispatch.roofline(mt, ct, bytes_table(), **arrays, backend="numba", n_threads=2)
    np.testing.assert_array_equal(two.out_f, one.out_f)
    np.testing.assert_array_equal(two.out_bound, one.out_bound)


@pytest.mark.skipif("numba" not in COMPILED, reason="numba not installed")
@pytest.mark.parametrize("threads", [1, 2])
def test_numba_points_sorted_by_deployment_equal_reference(threads):
    """Blocks of one deployment take the shared-constants path; a block where any one of
    the seven deployment columns differs at a single point must not."""
    from engine.core import numba_kernels
    mt, ct, arrays = _catalog_points(9 * numba_kernels.BLOCK, seed=2)
    for k in ("model_idx", "chip_idx", "tp", "pp", "w_dt", "kv_dt", "act_dt"):
        arrays[k][:] = arrays[k][0]
    bf, fp8 = DTYPES["bf16"][0], DTYPES["fp8"][0]
    changed = {"model_idx": 3, "chip_idx": 2, "tp": arrays["tp"][0] * 2,
               "pp": arrays["pp"][0] + 1, "w_dt": fp8 if arrays["w_dt"][0] == bf else bf,
               "kv_dt": fp8 if arrays["kv_dt"][0] == bf else bf, "act_dt": fp8}
    for b, (k, v) in enumerate(changed.items(), start=1):   # block 0 and 8 stay uniform
        arrays[k][b * numba_kernels.BLOCK + b * 17 % numba_kernels.BLOCK] = v
    ref = dispatch.roofline(mt, ct, bytes_table(), **arrays, backend="numpy")
    _assert_same(dispatch.roofline(mt, ct, bytes_table(), **arrays, backend="numba",
                                   n_threads=threads), ref)


@pytest.mark.parametrize("backend", COMPILED)
def test_grid_blocks_sharing_one_deployment_equal_reference(backend):
    """Sweep-shaped grid: most blocks share model, chip, tp, pp and dtypes, some straddle."""
    mt, ct, _ = _catalog_points(0)
    bf = DTYPES["bf16"][0]
    axes = dict(model_idx=np.array([0, 2], np.int32), chip_idx=np.array([1, 2], np.int32),
                tp=np.array([1, 2], np.int32), pp=np.array([1, 3], np.int32),
                batch=np.arange(1, 301, 7, dtype=np.int32),
                prompt=np.array([1, 100, 4096, 30000], np.int32),
                output=np.array([1, 2, 513], np.int32), w_dt=np.array([bf], np.int8),
                kv_dt=np.array([bf], np.int8), act_dt=np.array([bf], np.int8))
    mesh = np.meshgrid(*(axes[k] for k in L.GRID_AXES), indexing="ij")
    arrays = {k: np.ascontiguousarray(m.ravel()) for k, m in zip(L.GRID_AXES, mesh)}
    ref = dispatch.roofline(mt, ct, bytes_table(), **arrays, backend="numpy")
    for threads in (1, 2):
        _assert_same(dispatch.roofline_grid(mt, ct, bytes_table(), axes, backend=backend,
                                            n_threads=threads), ref)


@pytest.mark.parametrize("backend", COMPILED + ["numpy"])
def test_result_independent_of_chunking_and_threads(backend):
    import engine
    kw = dict(models=["llama-3.1-8b", "mixtral-8x7b"], chips=["h100-sxm", "mi300x"], tp=[1, 2],
              batch=[1, 7, 64, 300], prompt_tokens=[17, 2048], output_tokens=[1, 2, 333],
              kv_dtype=["bf16", "fp8"], backend=backend)
    a = engine.sweep(**kw, n_threads=1, chunk_size=1 << 20)
    b = engine.sweep(**kw, n_threads=2, chunk_size=37)
    for col in L.FLOAT_OUTPUTS + ("fits", "max_batch"):
        np.testing.assert_array_equal(a[col], b[col], err_msg=col)


# ---------------------------------------------------------------- bad input
def _valid_inputs(n=4):
    import engine
    ms = [engine.get_model("llama-3.1-8b")]
    cs = [engine.get_chip("h100-sxm")]
    mt, ct = build_tables(ms, cs)
    arrays = dict(model_idx=np.zeros(n, np.int32), chip_idx=np.zeros(n, np.int32),
                  tp=np.ones(n, np.int32), pp=np.ones(n, np.int32), batch=np.ones(n, np.int32),
                  prompt=np.full(n, 128, np.int32), output=np.full(n, 16, np.int32),
                  w_dt=np.ones(n, np.int8), kv_dt=np.ones(n, np.int8), act_dt=np.ones(n, np.int8))
    return mt, ct, arrays


@pytest.mark.parametrize("backend", COMPILED + ["numpy"])
@pytest.mark.parametrize("field,bad,match", [
    ("batch", np.ones(4, np.int64), "batch must have dtype int32"),
    ("prompt", np.ones(3, np.int32), "prompt must have length 4"),
    ("model_idx", np.array([0, 0, 5, 0], np.int32), "model_idx must be in \\[0, 0\\], got 5 at index 2"),
    ("chip_idx", np.array([0, -1, 0, 0], np.int32), "chip_idx must be in \\[0, 0\\], got -1"),
    ("act_dt", np.array([1, 1, 1, 9], np.int8), "act_dt must be in \\[0, 6\\], got 9"),
    ("tp", np.array([1, 0, 1, 1], np.int32), "tp must be in >= 1, got 0"),
    ("output", np.ones((2, 2), np.int32), "output must be 1-dimensional"),
    ("w_dt", [1, 1, 1, 1], "w_dt must be a numpy array"),
])
def test_low_level_bad_arrays_raise_clear_errors(backend, field, bad, match):
    mt, ct, arrays = _valid_inputs()
    arrays[field] = bad
    with pytest.raises((TypeError, ValueError), match=match):
        dispatch.roofline(mt, ct, bytes_table(), **arrays, backend=backend)


def test_low_level_bad_tables_and_buffers():
    mt, ct, arrays = _valid_inputs()
    with pytest.raises(ValueError, match=f"model_table must have {L.N_MODEL_COLS} columns"):
        dispatch.roofline(mt[:, :3].copy(), ct, bytes_table(), **arrays)
    with pytest.raises(ValueError, match="C-contiguous"):
        dispatch.roofline(np.asfortranarray(np.vstack([mt, mt])), ct, bytes_table(), **arrays)
    with pytest.raises(ValueError, match="out buffers must be sized for 4 points"):
        dispatch.roofline(mt, ct, bytes_table(), **arrays, out=dispatch.KernelOutput.empty(3))
    with pytest.raises(ValueError, match="from out_offset=2"):
        dispatch.roofline(mt, ct, bytes_table(), **arrays, out=dispatch.KernelOutput.empty(5),
                          out_offset=2)
    with pytest.raises(ValueError, match="backend must be one of"):
        dispatch.roofline(mt, ct, bytes_table(), **arrays, backend="fortran")
    with pytest.raises(ValueError, match="n_threads must be >= 1"):
        dispatch.roofline(mt, ct, bytes_table(), **arrays, n_threads=0)


def test_raw_cython_checks_lengths_itself():
    from engine._ext import _roofline
    mt, ct, a = _valid_inputs()
    out = dispatch.KernelOutput.empty(4)
    with pytest.raises(ValueError, match="out_f must have shape"):
        _roofline.roofline(mt, ct, bytes_table(), a["model_idx"], a["chip_idx"], a["tp"], a["pp"],
                           a["batch"], a["prompt"], a["output"], a["w_dt"], a["kv_dt"],
                           a["act_dt"], out.out_f, out.out_bound, out.fits.view(np.uint8),
                           out.max_batch, out_offset=1)
    with pytest.raises(ValueError, match="prompt must have length 4, got 2"):
        _roofline.roofline(mt, ct, bytes_table(), a["model_idx"], a["chip_idx"], a["tp"], a["pp"],
                           a["batch"], a["prompt"][:2], a["output"], a["w_dt"], a["kv_dt"],
                           a["act_dt"], out.out_f, out.out_bound, out.fits.view(np.uint8),
                           out.max_batch)
    with pytest.raises(ValueError, match="Buffer dtype mismatch"):
        _roofline.roofline(mt, ct, bytes_table(), a["model_idx"].astype(np.int64), a["chip_idx"],
                           a["tp"], a["pp"], a["batch"], a["prompt"], a["output"], a["w_dt"],
                           a["kv_dt"], a["act_dt"], out.out_f, out.out_bound,
                           out.fits.view(np.uint8), out.max_batch)


@pytest.mark.parametrize("backend", COMPILED + ["numpy"])
def test_overlapping_buffers_are_refused(backend):
    """Outputs that alias each other or an input are refused before any kernel runs."""
    mt, ct, arrays = _valid_inputs(8)
    out = dispatch.KernelOutput.empty(8)
    raw = np.zeros(8 * 8, np.int8)          # max_batch's bytes seen as int8 outputs
    alias = dispatch.KernelOutput(out.out_f, raw[:16].reshape(2, 8), out.fits,
                                  raw.view(np.int64))
    with pytest.raises(ValueError, match="out.out_bound may overlap out.max_batch"):
        dispatch.roofline(mt, ct, bytes_table(), **arrays, backend=backend, out=alias)
    out.max_batch[:] = (1 << 32) + 1        # seen as int32: batch 1 everywhere
    arrays["batch"] = out.max_batch.view(np.int32)[:8]
    with pytest.raises(ValueError, match="out.max_batch may overlap batch"):
        dispatch.roofline(mt, ct, bytes_table(), **arrays, backend=backend, out=out)
    axes = {k: v[:1].copy() for k, v in _valid_inputs(1)[2].items()}
    in_table = dispatch.KernelOutput(mt.reshape(-1)[:L.N_FLOAT_OUT].reshape(L.N_FLOAT_OUT, 1),
                                     *[x[..., :1].copy() for x in (out.out_bound, out.fits,
                                                                   out.max_batch)])
    with pytest.raises(ValueError, match="out.out_f may overlap model_table"):
        dispatch.roofline_grid(mt, ct, bytes_table(), axes, backend=backend, out=in_table)


def test_out_buffers_are_used_in_place():
    mt, ct, arrays = _valid_inputs()
    out = dispatch.KernelOutput.empty(4)
    got = dispatch.roofline(mt, ct, bytes_table(), **arrays, out=out)
    assert got is out and np.isfinite(out.out_f[L.O_TTFT]).all()
