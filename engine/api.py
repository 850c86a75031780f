"""Public entry points: :func:`estimate`, :func:`sweep`, :func:`latency_profile`.

The orchestration follows pvlib's ModelChain habit: resolve names to
definitions, validate every parameter against its declared domain and every
combination (tp divides the heads, the chip computes in the format, a link
exists for tp > 1), build the small tables, then hand struct-of-arrays to the
kernel dispatcher. No compiled code runs before validation has passed.
"""
from __future__ import annotations

import itertools
import os
from collections.abc import Iterable

import numpy as np

from . import catalog
from . import domains as D
from .core import dispatch
from .core.grid import axis_block
from .core.reference import decode_profile_reference
from .dtypes import DTYPES, bytes_table, dtype_bytes, dtype_code
from .results import Estimate, SweepResult
from .tables import build_tables, check_deployment

#: points per call of the NumPy reference in a sweep (compiled backends walk the grid directly)
DEFAULT_CHUNK = 1 << 21

AXES = ("model", "chip", "tp", "pp", "batch", "prompt_tokens", "output_tokens",
        "weight_dtype", "kv_dtype", "act_dtype")
_INT_AXES = {"tp": D.TP, "pp": D.PP, "batch": D.BATCH, "prompt_tokens": D.PROMPT_TOKENS,
             "output_tokens": D.OUTPUT_TOKENS}
_KERNEL_NAME = {"model": "model_idx", "chip": "chip_idx", "tp": "tp", "pp": "pp", "batch": "batch",
                "prompt_tokens": "prompt", "output_tokens": "output", "weight_dtype": "w_dt",
                "kv_dtype": "kv_dt", "act_dtype": "act_dt"}


def _as_list(name, value) -> list:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        return [value]
    out = list(value)
    if not out:
        raise ValueError(f"{name} must not be empty")
    return out


class Grid:
    """A Cartesian grid over :data:`AXES` in C order (the last axis varies fastest)."""

    def __init__(self, axes: dict):
        self.values = axes  # axis name -> list of values (names, ints, dtype names)
        self.shape = tuple(len(axes[a]) for a in AXES)
        self.size = int(np.prod(self.shape, dtype=np.int64))
        self._inner = {}
        inner = 1
        for a, n in zip(reversed(AXES), reversed(self.shape)):
            self._inner[a] = inner
            inner *= n
        self._kernel_values = {
            "model": np.arange(len(axes["model"]), dtype=np.int32),
            "chip": np.arange(len(axes["chip"]), dtype=np.int32),
            **{a: np.asarray(axes[a], dtype=np.int32) for a in _INT_AXES},
            **{a: np.asarray([DTYPES[d][0] for d in axes[a]], dtype=np.int8)
               for a in ("weight_dtype", "kv_dtype", "act_dtype")},
        }
        self._user_values = {
            "model": np.asarray([m.name for m in axes["model"]], dtype=object),
            "chip": np.asarray([c.name for c in axes["chip"]], dtype=object),
            **{a: np.asarray(axes[a], dtype=np.int64) for a in _INT_AXES},
            **{a: np.asarray(axes[a], dtype=object) for a in ("weight_dtype", "kv_dtype", "act_dtype")},
        }

    def kernel_axes(self) -> dict:
        """Axis value arrays as the grid kernels take them."""
        return {_KERNEL_NAME[a]: self._kernel_values[a] for a in AXES}

    def column(self, key: str, start: int, stop: int) -> np.ndarray:
        return axis_block(self._user_values[key], self._inner[key], start, stop)


def _resolve_grid(models, chips, tp, pp, batch, prompt_tokens, output_tokens, weight_dtype,
                  kv_dtype, act_dtype) -> Grid:
    axes = {
        "model": [catalog.get_model(m) for m in _as_list("models", models)],
        "chip": [catalog.get_chip(c) for c in _as_list("chips", chips)],
    }
    raw = {"tp": tp, "pp": pp, "batch": batch, "prompt_tokens": prompt_tokens,
           "output_tokens": output_tokens}
    for a, dom in _INT_AXES.items():
        axes[a] = [dom.check(v) for v in _as_list(a, raw[a])]
    for a, v in (("weight_dtype", weight_dtype), ("kv_dtype", kv_dtype), ("act_dtype", act_dtype)):
        axes[a] = [str(v_) for v_ in _as_list(a, v)]
        for d in axes[a]:
            dtype_code(d, a)
    for a in AXES:
        if a in ("model", "chip"):
            names = [x.name for x in axes[a]]
            if len(set(names)) != len(names):
                raise ValueError(f"{a}s must not repeat a name, got {names}")
        elif len(set(axes[a])) != len(axes[a]):
            raise ValueError(f"{a} values must not repeat, got {axes[a]}")
    for p, o in itertools.product(axes["prompt_tokens"], axes["output_tokens"]):
        if p + o > 2**31 - 1:
            raise ValueError(f"prompt_tokens + output_tokens must be < 2**31, got {p} + {o}")
    for m, c, t, q, a in itertools.product(axes["model"], axes["chip"], axes["tp"], axes["pp"],
                                           axes["act_dtype"]):
        check_deployment(m, c, t, q, a)
    return Grid(axes)


#: bytes of kernel output per point: 9 float64, 2 int8 bounds, 1 bool, 1 int64
OUTPUT_BYTES_PER_POINT = 9 * 8 + 2 + 1 + 8


def _check_output_fits_in_memory(n_points: int) -> None:
    """Refuse a grid whose outputs cannot fit in physical memory (before allocating)."""
    need = n_points * OUTPUT_BYTES_PER_POINT
    try:
        phys = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not available on this platform
        return
    if need > phys:
        raise ValueError(f"the grid has {n_points:,} points whose outputs need "
                         f"{need / 2**30:,.1f} GiB, more than this machine's "
                         f"{phys / 2**30:,.1f} GiB of memory; split the sweep")


def sweep(models, chips, tp=1, pp=1, batch=1, prompt_tokens=1024, output_tokens=256,
          weight_dtype="bf16", kv_dtype="bf16", act_dtype="bf16", *, backend=None,
          n_threads=None, chunk_size=DEFAULT_CHUNK, loop_decode=False) -> SweepResult:
    """Evaluate the Cartesian grid of every argument's values.

    Parameters
    ----------
    models, chips : name, definition, path to a config.json, or a list of them
    tp, pp, batch, prompt_tokens, output_tokens : int or list of int
        Tensor- and pipeline-parallel degrees [chip], concurrent sequences,
        prompt and output lengths [token].
    weight_dtype, kv_dtype, act_dtype : str or list of str
        Formats of weights, KV cache and activations; matmuls run at the
        chip's peak for ``act_dtype`` (weight-only quantization keeps bf16).
    backend : {"cython", "numba", "numpy"} or None
        ``None`` = fastest available.
    n_threads : int or None
        Threads for compiled backends (default: all cores).
    chunk_size : int
        Points per call of the NumPy reference backend (the compiled
        backends walk the grid without materialising input columns).
    loop_decode : bool
        Sum decode steps token by token instead of the closed form (slower;
        same result to ~1e-12).

    Returns
    -------
    SweepResult
        ``len(res)`` points in C order over (model, chip, tp, pp, batch,
        prompt_tokens, output_tokens, weight_dtype, kv_dtype, act_dtype).
        A point that does not fit has ``fits = False`` and NaN times.
    """
    grid = _resolve_grid(models, chips, tp, pp, batch, prompt_tokens, output_tokens,
                         weight_dtype, kv_dtype, act_dtype)
    chunk = int(D.Domain("chunk_size", "point", 1, 2**31 - 1, integer=True).check(chunk_size))
    name = dispatch.resolve_backend(backend)
    threads = dispatch.default_threads() if n_threads is None else int(
        D.Domain("n_threads", "thread", 1, 4096, integer=True).check(n_threads))
    _check_output_fits_in_memory(grid.size)
    mt, ct = build_tables(grid.values["model"], grid.values["chip"])
    out = dispatch.roofline_grid(mt, ct, bytes_table(), grid.kernel_axes(), backend=name,
                                 n_threads=threads, loop_decode=loop_decode, chunk_size=chunk)
    return SweepResult(grid, out, name, threads)


def estimate(model, chip, *, tp=1, pp=1, batch=1, prompt_tokens=1024, output_tokens=256,
             weight_dtype="bf16", kv_dtype="bf16", act_dtype="bf16", backend=None) -> Estimate:
    """One scenario: every output key plus the inputs, as an :class:`Estimate`.

    Examples
    --------
    >>> est = estimate("llama-3.1-70b", "h100-sxm", tp=4, batch=16,
    ...                prompt_tokens=2048, output_tokens=256)   # doctest: +SKIP
    >>> est.tpot_s                                              # doctest: +SKIP
    """
    for a, v in (("tp", tp), ("pp", pp), ("batch", batch), ("prompt_tokens", prompt_tokens),
                 ("output_tokens", output_tokens)):
        if not np.isscalar(v) or isinstance(v, str):
            raise ValueError(f"{a} must be a single integer for estimate(), got {v!r}; use sweep()")
    res = sweep(model, chip, tp=tp, pp=pp, batch=batch, prompt_tokens=prompt_tokens,
                output_tokens=output_tokens, weight_dtype=weight_dtype, kv_dtype=kv_dtype,
                act_dtype=act_dtype, backend=backend, n_threads=1)
    est = res.row(0)
    m = catalog.get_model(model)
    est["total_params"] = m.total_params
    est["active_params"] = m.active_params
    est["chips_needed"] = chips_needed(m, res._grid.values["chip"][0], batch=batch,
                                       prompt_tokens=prompt_tokens, output_tokens=output_tokens,
                                       weight_dtype=weight_dtype, kv_dtype=kv_dtype)
    return est


def chips_needed(model, chip, *, batch=1, prompt_tokens=1024, output_tokens=256,
                 weight_dtype="bf16", kv_dtype="bf16") -> int:
    """Fewest chips whose usable memory holds the weights and the KV cache [chip].

    ``ceil((weights + batch x KV(prompt + output)) / (memory x (1 - reserve)))``:
    a first-order count that assumes weights and KV split evenly with no
    replication. For SRAM-only parts (Groq LPU, Cerebras WSE-3) the memory is
    the on-chip SRAM, so a 70B model needs hundreds of LPUs.
    """
    m = catalog.get_model(model)
    c = catalog.get_chip(chip)
    b = D.BATCH.check(batch)
    ctx = D.PROMPT_TOKENS.check(prompt_tokens) + D.OUTPUT_TOKENS.check(output_tokens)
    if c.memory_bytes is None:
        raise ValueError(f"chip '{c.name}' has no sourced memory capacity")
    usable = c.memory_bytes * (1.0 - c.memory_reserve_fraction)
    need = (m.total_params * dtype_bytes(weight_dtype, "weight_dtype")
            + b * ctx * m.kv_bytes_per_token(kv_dtype, context=ctx))
    return int(np.ceil(need / usable))


def latency_profile(model, chip, *, tp=1, pp=1, batch=1, prompt_tokens=1024, output_tokens=256,
                    weight_dtype="bf16", kv_dtype="bf16", act_dtype="bf16") -> dict:
    """Step time of every output token of one scenario, for plots.

    Returns
    -------
    dict
        ``token`` (1..N), ``context`` (keys attended), ``step_s`` (token 1 is
        the prefill, i.e. TTFT; token j > 1 the decode step at context
        ``prompt + j - 1``) [s], and ``cumulative_s``.
    """
    res = sweep(model, chip, tp=tp, pp=pp, batch=batch, prompt_tokens=prompt_tokens,
                output_tokens=output_tokens, weight_dtype=weight_dtype, kv_dtype=kv_dtype,
                act_dtype=act_dtype, backend="numpy", n_threads=1)
    if not res["fits"][0]:
        raise ValueError(f"scenario does not fit in memory (max_batch={int(res['max_batch'][0])}, "
                         f"batch={batch})")
    grid = res._grid
    mt, ct = build_tables(grid.values["model"], grid.values["chip"])
    steps = decode_profile_reference(mt[0], ct[0], bytes_table(), tp, pp, batch, prompt_tokens,
                                     output_tokens, DTYPES[weight_dtype][0], DTYPES[kv_dtype][0],
                                     DTYPES[act_dtype][0])
    step_s = np.concatenate([[res["ttft_s"][0]], steps])
    return {"token": np.arange(1, output_tokens + 1),
            "context": prompt_tokens + np.arange(0, output_tokens),
            "step_s": step_s, "cumulative_s": np.cumsum(step_s)}
