"""Explicit backend registry and the validated low-level entry point.

``backend=`` picks one of :data:`BACKENDS`; ``None`` means the fastest one
available (Cython, then numba, then the NumPy reference). Nothing is chosen
by reloading modules: each backend is a function in the registry.

:func:`roofline` is the low-level kernel call: it checks dtypes, shapes,
contiguity and index ranges of struct-of-arrays inputs (so no call can read
out of bounds), allocates outputs unless ``out=`` buffers are passed, and
runs the chosen backend with an explicit thread count.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from . import layout as L

BACKENDS = ("cython", "numba", "numpy")

_INT_INPUTS = ("model_idx", "chip_idx", "tp", "pp", "batch", "prompt", "output")
_CODE_INPUTS = ("w_dt", "kv_dt", "act_dt")


def _cython_module():
    try:
        from .._ext import _roofline
    except ImportError:
        return None
    return _roofline


def _numba_module():
    try:
        from . import numba_kernels
    except ImportError:  # numba missing or broken
        return None
    return numba_kernels


def available_backends() -> tuple[str, ...]:
    out = []
    if _cython_module() is not None:
        out.append("cython")
    if _numba_module() is not None:
        out.append("numba")
    out.append("numpy")
    return tuple(out)


def resolve_backend(backend: str | None) -> str:
    """Name of the backend to run; ``None`` = fastest available."""
    avail = available_backends()
    if backend is None:
        return avail[0]
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend not in avail:
        raise ValueError(f"backend {backend!r} is not available here (available: "
                         f"{', '.join(avail)}); see engine.show_config()")
    return backend


def default_threads() -> int:
    """Threads used when none are given: ``INFERCAST_NUM_THREADS`` or the core count."""
    env = os.environ.get("INFERCAST_NUM_THREADS")
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"INFERCAST_NUM_THREADS must be a positive integer, got {env!r}") from None
        if n < 1:
            raise ValueError(f"INFERCAST_NUM_THREADS must be a positive integer, got {env!r}")
        return n
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@dataclass
class KernelOutput:
    """Output buffers of the roofline kernel."""

    out_f: np.ndarray       # (N_FLOAT_OUT, n) float64
    out_bound: np.ndarray   # (2, n) int8
    fits: np.ndarray        # (n,) bool
    max_batch: np.ndarray   # (n,) int64

    @classmethod
    def empty(cls, n: int) -> "KernelOutput":
        return cls(np.empty((L.N_FLOAT_OUT, n)), np.empty((2, n), dtype=np.int8),
                   np.empty(n, dtype=np.bool_), np.empty(n, dtype=np.int64))

    def __len__(self) -> int:
        return self.fits.shape[0]


def _check_array(name, a, dtype, ndim=1):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array of {np.dtype(dtype)}, got {type(a).__name__}")
    if a.dtype != dtype:
        raise TypeError(f"{name} must have dtype {np.dtype(dtype)}, got {a.dtype}")
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {a.shape}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")


def validate_kernel_inputs(model_table, chip_table, dtype_bytes, arrays: dict,
                           check_ranges: bool = True) -> int:
    """Check tables and per-point arrays; return the number of points."""
    _check_array("model_table", model_table, np.float64, 2)
    _check_array("chip_table", chip_table, np.float64, 2)
    _check_array("dtype_bytes", dtype_bytes, np.float64, 1)
    if model_table.shape[1] != L.N_MODEL_COLS:
        raise ValueError(f"model_table must have {L.N_MODEL_COLS} columns, got {model_table.shape[1]}")
    if chip_table.shape[1] != L.N_CHIP_COLS:
        raise ValueError(f"chip_table must have {L.N_CHIP_COLS} columns, got {chip_table.shape[1]}")
    if dtype_bytes.shape[0] != L.N_DTYPE_CODES:
        raise ValueError(f"dtype_bytes must have {L.N_DTYPE_CODES} entries, got {dtype_bytes.shape[0]}")
    n = None
    for name in _INT_INPUTS + _CODE_INPUTS:
        if name not in arrays:
            raise ValueError(f"missing kernel input {name!r}")
        a = arrays[name]
        _check_array(name, a, np.int32 if name in _INT_INPUTS else np.int8)
        if n is None:
            n = a.shape[0]
        elif a.shape[0] != n:
            raise ValueError(f"{name} must have length {n} like model_idx, got {a.shape[0]}")
    if check_ranges and n:
        bounds = {"model_idx": (0, model_table.shape[0] - 1), "chip_idx": (0, chip_table.shape[0] - 1),
                  "tp": (1, None), "pp": (1, None), "batch": (1, None), "prompt": (1, None),
                  "output": (1, None), "w_dt": (0, L.N_DTYPE_CODES - 1),
                  "kv_dt": (0, L.N_DTYPE_CODES - 1), "act_dt": (0, L.N_DTYPE_CODES - 1)}
        for name, (lo, hi) in bounds.items():
            a = arrays[name]
            amin, amax = int(a.min()), int(a.max())
            if amin < lo or (hi is not None and amax > hi):
                bad = amin if amin < lo else amax
                i = int(np.flatnonzero(a == bad)[0])
                rng = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
                raise ValueError(f"{name} must be in {rng}, got {bad} at index {i}")
    return n or 0


def _check_out(out: KernelOutput, n: int, offset: int, inputs: dict):
    _check_array("out.out_f", out.out_f, np.float64, 2)
    _check_array("out.out_bound", out.out_bound, np.int8, 2)
    _check_array("out.fits", out.fits, np.bool_, 1)
    _check_array("out.max_batch", out.max_batch, np.int64, 1)
    m = out.fits.shape[0]
    if out.out_f.shape != (L.N_FLOAT_OUT, m) or out.out_bound.shape != (2, m) \
            or out.max_batch.shape != (m,):
        raise ValueError("out buffers must all be sized for the same number of points")
    if offset < 0 or offset + n > m:
        raise ValueError(f"out buffers must be sized for {n} points from out_offset={offset}, "
                         f"got {m}")
    # the compiled kernels write the outputs while reading the inputs (numba passes the
    # output rows as noalias): no buffer may overlap another or an input
    outs = [("out.out_f", out.out_f), ("out.out_bound", out.out_bound), ("out.fits", out.fits),
            ("out.max_batch", out.max_batch)]
    for i, (name, a) in enumerate(outs):
        for other, b in outs[i + 1:] + list(inputs.items()):
            if np.may_share_memory(a, b):
                raise ValueError(f"{name} may overlap {other} (their memory ranges "
                                 "intersect): output buffers must not share memory with each "
                                 "other or with the inputs")


def roofline(model_table, chip_table, dtype_bytes, *, model_idx, chip_idx, tp, pp, batch,
             prompt, output, w_dt, kv_dt, act_dt, backend=None, n_threads=None, out=None,
             loop_decode=False, check_ranges=True, out_offset=0) -> KernelOutput:
    """Evaluate every point with the chosen backend.

    Parameters
    ----------
    model_table, chip_table, dtype_bytes : ndarray
        Tables in the layout of :mod:`engine.core.layout`, float64, C-contiguous.
    model_idx, chip_idx, tp, pp, batch, prompt, output : int32 ndarray, shape (n,)
    w_dt, kv_dt, act_dt : int8 ndarray, shape (n,)
        dtype codes (:mod:`engine.dtypes`).
    backend : {"cython", "numba", "numpy"} or None
    n_threads : int or None
        Threads for the compiled backends (default :func:`default_threads`).
    out : KernelOutput or None
        Preallocated output buffers.
    out_offset : int
        Point ``i`` is written to position ``out_offset + i`` of ``out`` (a
        sweep evaluates a large grid chunk by chunk into one set of buffers).
    loop_decode : bool
        Sum decode steps one token at a time instead of the closed form.
    check_ranges : bool
        Check index and length ranges (O(n)); callers that built the indices
        themselves may skip it.
    """
    arrays = dict(model_idx=model_idx, chip_idx=chip_idx, tp=tp, pp=pp, batch=batch, prompt=prompt,
                  output=output, w_dt=w_dt, kv_dt=kv_dt, act_dt=act_dt)
    n = validate_kernel_inputs(model_table, chip_table, dtype_bytes, arrays, check_ranges)
    name = resolve_backend(backend)
    threads = default_threads() if n_threads is None else int(n_threads)
    if threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    out_offset = int(out_offset)
    if out is None:
        if out_offset:
            raise ValueError("out_offset needs out= buffers")
        out = KernelOutput.empty(n)
    else:
        _check_out(out, n, out_offset, dict(arrays, model_table=model_table,
                                            chip_table=chip_table, dtype_bytes=dtype_bytes))
    if n == 0:
        return out
    if name == "cython":
        _cython_module().roofline(model_table, chip_table, dtype_bytes, model_idx, chip_idx, tp, pp,
                                  batch, prompt, output, w_dt, kv_dt, act_dt, out.out_f,
                                  out.out_bound, out.fits.view(np.uint8), out.max_batch,
                                  n_threads=threads, loop_decode=bool(loop_decode),
                                  out_offset=out_offset)
    elif name == "numba":
        _numba_module().roofline(model_table, chip_table, dtype_bytes, model_idx, chip_idx, tp, pp,
                                 batch, prompt, output, w_dt, kv_dt, act_dt, out.out_f,
                                 out.out_bound, out.fits, out.max_batch, n_threads=threads,
                                 loop_decode=bool(loop_decode), out_offset=out_offset)
    else:
        from .reference import roofline_reference
        f, b, fits, mb = roofline_reference(model_table, chip_table, dtype_bytes, model_idx,
                                            chip_idx, tp, pp, batch, prompt, output, w_dt, kv_dt,
                                            act_dt)
        sl = slice(out_offset, out_offset + n)
        out.out_f[:, sl] = f
        out.out_bound[:, sl] = b
        out.fits[sl] = fits
        out.max_batch[sl] = mb
    return out


def roofline_grid(model_table, chip_table, dtype_bytes, axes: dict, *, backend=None,
                  n_threads=None, out=None, loop_decode=False, chunk_size=1 << 21) -> KernelOutput:
    """Evaluate every point of the Cartesian grid of ``axes`` (C order, last axis fastest).

    Parameters
    ----------
    axes : dict
        Value arrays for each of ``layout.GRID_AXES`` (int32; int8 for the
        dtype codes); ``model_idx``/``chip_idx`` values are table rows.
    out : KernelOutput or None
        Buffers sized for the whole grid (allocated when omitted).
    chunk_size : int
        Points per call of the NumPy reference (the compiled backends walk
        the grid directly and never materialise its input columns).

    Returns
    -------
    KernelOutput
        Point ``f`` of the flattened grid in column ``f``.
    """
    for name in L.GRID_AXES:
        if name not in axes:
            raise ValueError(f"missing grid axis {name!r}")
        _check_array(name, axes[name], np.int32 if name in _INT_INPUTS else np.int8)
        if axes[name].shape[0] < 1:
            raise ValueError(f"grid axis {name} must have at least one value")
    validate_kernel_inputs(model_table, chip_table, dtype_bytes,
                           {k: np.zeros(1, v.dtype) for k, v in axes.items()}, check_ranges=False)
    bounds = {"model_idx": (0, model_table.shape[0] - 1), "chip_idx": (0, chip_table.shape[0] - 1),
              "w_dt": (0, L.N_DTYPE_CODES - 1), "kv_dt": (0, L.N_DTYPE_CODES - 1),
              "act_dt": (0, L.N_DTYPE_CODES - 1)}
    for name in L.GRID_AXES:
        lo, hi = bounds.get(name, (1, None))
        a = axes[name]
        if int(a.min()) < lo or (hi is not None and int(a.max()) > hi):
            rng = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
            raise ValueError(f"{name} values must be in {rng}, got {a.tolist()}")
    shape = [axes[name].shape[0] for name in L.GRID_AXES]
    total = int(np.prod(shape, dtype=np.int64))
    name = resolve_backend(backend)
    threads = default_threads() if n_threads is None else int(n_threads)
    if threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    if out is None:
        out = KernelOutput.empty(total)
    else:
        _check_out(out, total, 0, dict(axes, model_table=model_table, chip_table=chip_table,
                                       dtype_bytes=dtype_bytes))
    vals = [axes[k] for k in L.GRID_AXES]
    if name == "cython":
        _cython_module().roofline_grid(model_table, chip_table, dtype_bytes, *vals, out.out_f,
                                       out.out_bound, out.fits.view(np.uint8), out.max_batch,
                                       n_threads=threads, loop_decode=bool(loop_decode))
    elif name == "numba":
        _numba_module().roofline_grid(model_table, chip_table, dtype_bytes, *vals, out.out_f,
                                      out.out_bound, out.fits, out.max_batch, n_threads=threads,
                                      loop_decode=bool(loop_decode))
    else:
        from .grid import axis_block, inner_sizes
        inner = inner_sizes(shape)
        for start in range(0, total, int(chunk_size)):
            stop = min(start + int(chunk_size), total)
            arrays = {k: axis_block(axes[k], inner[j], start, stop)
                      for j, k in enumerate(L.GRID_AXES)}
            roofline(model_table, chip_table, dtype_bytes, **arrays, backend="numpy", out=out,
                     out_offset=start, loop_decode=loop_decode, check_ranges=False)
    return out


def stream_pass(arrays: dict, out: KernelOutput, n_threads: int = 1) -> None:
    """Read every kernel input and write every output once (the bandwidth limit)."""
    mod = _cython_module()
    if mod is None:
        raise RuntimeError("the streaming pass needs the compiled extension engine._ext._roofline")
    mod.stream_pass(arrays["model_idx"], arrays["chip_idx"], arrays["tp"], arrays["pp"],
                    arrays["batch"], arrays["prompt"], arrays["output"], arrays["w_dt"],
                    arrays["kv_dt"], arrays["act_dt"], out.out_f, out.out_bound,
                    out.fits.view(np.uint8), out.max_batch, n_threads=n_threads)
