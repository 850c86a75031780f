"""Serving modes that published results use: max-throughput operating points.

Design
------
MLPerf Offline/Server and the TensorRT-LLM "max throughput" tables report the
output-token rate of a deployment run at the batch that maximises it, possibly
under latency limits. :func:`max_throughput` finds that batch with the engine's
own roofline:

1. one :func:`engine.sweep` point at batch 1 gives ``max_batch`` (the largest
   batch whose weights and KV cache fit; it does not depend on the batch);
2. one sweep over candidate batches: every integer up to ``DENSE_CAP``, then a
   geometric grid (ratio ``1 + GRID_STEP``) up to ``max_batch``, and
   ``max_batch`` itself;
3. when the best candidate lies on the geometric grid, one more sweep over the
   integers between its grid neighbours, so the answer is the best integer
   batch, not the best grid point.

The result is an :class:`engine.Estimate` with exactly the keys of
:func:`engine.estimate` (``batch`` = the chosen batch).

Latency limits and batching
---------------------------
``batching="static"`` (default): the limits apply to ``ttft_s`` and ``tpot_s``
exactly as :func:`engine.estimate` computes them for a static batch (all
``batch`` prompts are prefilled together, then decoded together; TTFT is the
prefill of the whole batch).

``batching="continuous"``: in-flight (continuous) batching as used by
TensorRT-LLM, vLLM and the MLPerf Server submissions (Yu et al., *Orca*,
OSDI 2022): requests join and leave the running batch at step boundaries.
First-order steady-state approximations, no queueing:

* ``tpot_s = e2e_s(batch) / output_tokens``: every ``e2e_s`` the deployment
  completes ``batch`` requests of ``output_tokens`` tokens, prefills included,
  so each sequence receives one token per ``e2e_s / output_tokens`` on average;
* ``ttft_s = ttft_s(batch=1) + tpot_s``: a new request's prefill runs at the
  next step boundary (it waits at most one step of the running batch).

The returned ``ttft_s``/``tpot_s`` are these approximations; throughput keys
are unchanged (continuous and static batching have the same steady-state
throughput in this model).

When nothing satisfies the limits a one-line ``ValueError`` names the violated
limit and the best value reachable (at batch 1). A model that does not fit in
memory at batch 1 is a result, as in :func:`engine.estimate`: ``fits = False``
with NaN times.
"""
from __future__ import annotations

import math

import numpy as np

from . import api
from . import domains as D
from .results import Estimate

__all__ = ["max_throughput", "candidate_batches", "BATCHING"]

#: every integer batch up to this value is a candidate
DENSE_CAP = 256
#: relative step of the geometric grid beyond DENSE_CAP
GRID_STEP = 0.02
BATCHING = ("static", "continuous")


def candidate_batches(max_batch: int, dense_cap: int = DENSE_CAP,
                      grid_step: float = GRID_STEP) -> np.ndarray:
    """Integers ``1..min(max_batch, dense_cap)``, then a geometric grid up to ``max_batch``.

    Parameters
    ----------
    max_batch : int
        Largest batch that fits in memory [sequence].
    dense_cap : int
        All integers up to this are included.
    grid_step : float
        Relative step of the geometric grid beyond ``dense_cap``.

    Returns
    -------
    numpy.ndarray
        Sorted unique int64 candidates, always including ``max_batch``.
    """
    max_batch = int(max_batch)
    if max_batch < 1:
        return np.zeros(0, dtype=np.int64)
    dense = np.arange(1, min(max_batch, dense_cap) + 1, dtype=np.int64)
    if max_batch <= dense_cap:
        return dense
    n = int(math.ceil(math.log(max_batch / dense_cap) / math.log1p(grid_step)))
    grid = np.unique(np.round(dense_cap * (1.0 + grid_step) ** np.arange(1, n + 1)).astype(np.int64))
    grid = grid[(grid > dense_cap) & (grid < max_batch)]
    return np.unique(np.concatenate([dense, grid, [max_batch]]))


def _check_limit(name: str, value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number of seconds or None, got {value!r}")
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be > 0 s and finite, got {value!r}")
    return v


def _latencies(res, batching: str, output_tokens: int, ttft_one: float):
    """(ttft, tpot) arrays under the chosen batching model."""
    if batching == "static":
        return res["ttft_s"], res["tpot_s"]
    tpot = res["e2e_s"] / output_tokens
    return ttft_one + tpot, tpot


def max_throughput(model, chip, *, tp=1, pp=1, prompt_tokens=1024, output_tokens=256,
                   ttft_max=None, tpot_max=None, weight_dtype="bf16", kv_dtype="bf16",
                   act_dtype="bf16", batches=None, batching="static",
                   backend="numpy") -> Estimate:
    """The batch (within memory) that maximises output tokens/s, optionally under latency limits.

    Parameters
    ----------
    model, chip : name, definition or path to a config.json
        As in :func:`engine.estimate`.
    tp, pp : int
        Tensor- and pipeline-parallel degrees [chip].
    prompt_tokens, output_tokens : int
        Prompt and output lengths per request [token].
    ttft_max, tpot_max : float or None
        Limits on time to first token and time per output token [s]
        (``None`` = no limit). See the module docstring for how they are
        evaluated under each ``batching``.
    weight_dtype, kv_dtype, act_dtype : str
        Formats, as in :func:`engine.estimate`.
    batches : iterable of int or None
        Candidate batches [sequence]; ``None`` = :func:`candidate_batches` of
        ``max_batch`` plus integer refinement. Candidates above ``max_batch``
        are ignored.
    batching : {"static", "continuous"}
        Latency model used for the limits and the reported ``ttft_s``/``tpot_s``.
    backend : str or None
        Kernel backend for the candidate sweeps (default ``"numpy"``: the
        grids are a few hundred points, where thread start-up dominates).

    Returns
    -------
    Estimate
        The keys of :func:`engine.estimate`; ``batch`` is the chosen batch.
        ``fits`` is False (NaN times, batch 1) when the model does not fit in
        memory even at batch 1.

    Raises
    ------
    ValueError
        Malformed input, or no candidate batch meets the limits (the message
        names the violated limit and its best reachable value).
    """
    if batching not in BATCHING:
        raise ValueError(f"batching must be one of {', '.join(BATCHING)}, got {batching!r}")
    ttft_max = _check_limit("ttft_max", ttft_max)
    tpot_max = _check_limit("tpot_max", tpot_max)
    common = dict(tp=tp, pp=pp, prompt_tokens=prompt_tokens, output_tokens=output_tokens,
                  weight_dtype=weight_dtype, kv_dtype=kv_dtype, act_dtype=act_dtype)
    first = api.estimate(model, chip, batch=1, backend=backend, **common)
    if not first["fits"]:
        return first
    max_batch = int(first["max_batch"])
    if batches is None:
        cand = candidate_batches(max_batch)
    else:
        vals = [D.BATCH.check(b) for b in api._as_list("batches", batches)]
        cand = np.unique(np.asarray(vals, dtype=np.int64))
        cand = cand[cand <= max_batch]
        if not len(cand):
            raise ValueError(f"batches must include a value <= max_batch={max_batch}, "
                             f"got {sorted(set(vals))}")
    ttft_one = float(first["ttft_s"])

    def best_of(cands):
        res = api.sweep(model, chip, batch=[int(b) for b in cands], backend=backend,
                        n_threads=1, **common)
        ttft, tpot = _latencies(res, batching, int(output_tokens), ttft_one)
        ok = np.asarray(res["fits"], dtype=bool).copy()
        if ttft_max is not None:
            ok &= ttft <= ttft_max
        if tpot_max is not None:
            # one output token has no decode step: TPOT is undefined and no limit applies
            ok &= ~(tpot > tpot_max)
        if not ok.any():
            return None, res, ttft, tpot
        tps = np.where(ok, res["output_tokens_per_s"], -np.inf)
        return int(np.argmax(tps)), res, ttft, tpot

    i, res, ttft, tpot = best_of(cand)
    if i is None:
        raise ValueError(_violation(ttft_max, tpot_max, ttft, tpot, cand))
    if batches is None and cand[i] > DENSE_CAP:
        lo = cand[i - 1] + 1
        hi = cand[i + 1] - 1 if i + 1 < len(cand) else cand[i]
        if hi >= lo:
            refine = np.unique(np.concatenate([np.arange(lo, hi + 1), [cand[i]]]))
            j, res2, ttft2, tpot2 = best_of(refine)
            if j is not None and res2["output_tokens_per_s"][j] > res["output_tokens_per_s"][i]:
                i, res, ttft, tpot = j, res2, ttft2, tpot2
    est = res.row(i)
    if batching == "continuous":
        est["ttft_s"] = float(ttft[i])
        est["tpot_s"] = float(tpot[i])
    est["total_params"] = first["total_params"]
    est["active_params"] = first["active_params"]
    # the same key order as engine.estimate: chips_needed of the chosen batch
    est["chips_needed"] = api.chips_needed(model, chip, batch=int(est["batch"]),
                                           prompt_tokens=prompt_tokens,
                                           output_tokens=output_tokens,
                                           weight_dtype=weight_dtype, kv_dtype=kv_dtype)
    return est


def _violation(ttft_max, tpot_max, ttft, tpot, cand) -> str:
    """One line naming the limit(s) no candidate batch meets."""
    parts = []
    if ttft_max is not None and not (ttft <= ttft_max).any():
        parts.append(f"ttft_max={ttft_max:g} s (smallest TTFT {float(np.nanmin(ttft)):.4g} s "
                     f"at batch {int(cand[int(np.nanargmin(ttft))])})")
    if tpot_max is not None and (tpot > tpot_max).all():
        parts.append(f"tpot_max={tpot_max:g} s (smallest TPOT {float(np.nanmin(tpot)):.4g} s "
                     f"at batch {int(cand[int(np.nanargmin(tpot))])})")
    if not parts:  # each limit is met by some batch, but never both at once
        parts.append(f"ttft_max={ttft_max:g} s and tpot_max={tpot_max:g} s together")
    return "no batch meets " + " and ".join(parts)
