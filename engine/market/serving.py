"""The one seam between the market model and the engine core: serving throughput
of a roadmap entry from the roofline kernels.

``serving_point`` calls :func:`engine.sweep` over the entry's tensor-parallel
degrees and batch sizes and keeps the highest output tokens/s per chip among the
points that fit in memory and meet the time-per-output-token objective (the
max-throughput operating point under a latency SLO, as in MLPerf Inference's
server scenario, which caps TPOT; Reddi et al. 2020). Chip physics (dense BF16
peak, TDP) comes from the engine's catalog. Keep every use of the engine here.

References
----------
Reddi, V. J. et al. (2020). MLPerf Inference Benchmark. ISCA 2020, 446-459.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RoadmapEntry", "ServingPoint", "serving_point"]


@dataclass
class RoadmapEntry:
    """Serving chip and reference model from ``year`` on.

    Parameters
    ----------
    year : int
        First year the entry applies [yr].
    chip, model : str
        Engine catalog names.
    prompt_tokens, output_tokens : int
        Reference request [token].
    tp, batch : list of int
        Candidate tensor-parallel degrees [chip] and batch sizes [sequence].
    tpot_slo_s : float
        Largest acceptable time per output token [s].
    accelerator_price_usd : float
        Price of one accelerator [USD].
    weight_dtype, kv_dtype : str
    source : str
        Provenance of the price and the choice.
    """

    year: int
    chip: str
    model: str
    accelerator_price_usd: float
    prompt_tokens: int = 2048
    output_tokens: int = 512
    tp: tuple = (1, 2, 4, 8)
    batch: tuple = (1, 8, 16, 32, 64, 128, 256, 512)
    tpot_slo_s: float = 0.05
    weight_dtype: str = "bf16"
    kv_dtype: str = "bf16"
    source: str = ""


@dataclass
class ServingPoint:
    """Operating point chosen for a roadmap entry."""

    throughput_tokens_per_s_per_chip: float
    tp: int
    batch: int
    tpot_s: float
    peak_flops_per_chip: float
    power_w: float


def serving_point(entry: RoadmapEntry) -> ServingPoint:
    """Max output tokens/s per chip of ``entry`` that fits and meets its TPOT objective.

    Raises
    ------
    ValueError
        Unknown chip/model, or no (tp, batch) fits and meets the objective.
    """
    import engine  # the core; imported here so the market layer loads without it

    chip = engine.get_chip(entry.chip)
    engine.get_model(entry.model)
    best = None
    errors = []
    for tp in entry.tp:
        try:
            res = engine.sweep(models=[entry.model], chips=[entry.chip], tp=[int(tp)],
                               batch=[int(b) for b in entry.batch], prompt_tokens=[int(entry.prompt_tokens)],
                               output_tokens=[int(entry.output_tokens)], weight_dtype=entry.weight_dtype,
                               kv_dtype=entry.kv_dtype)
        except ValueError as exc:  # e.g. tp needs a scale-up link the chip lacks
            errors.append(f"tp={tp}: {exc}")
            continue
        thr = np.asarray(res["output_tokens_per_s_per_chip"], float)
        ok = np.asarray(res["fits"], bool) & (np.asarray(res["tpot_s"], float) <= entry.tpot_slo_s) & np.isfinite(thr)
        if not ok.any():
            continue
        i = int(np.argmax(np.where(ok, thr, -np.inf)))
        if best is None or thr[i] > best.throughput_tokens_per_s_per_chip:
            best = ServingPoint(float(thr[i]), int(tp), int(entry.batch[i]), float(res["tpot_s"][i]),
                                float(chip.peak_flops_bf16), float(chip.tdp))
    if best is None:
        extra = ("; " + "; ".join(errors)) if errors else ""
        raise ValueError(f"roadmap {entry.year}: {entry.model} on {entry.chip} has no tp in {list(entry.tp)} and "
                         f"batch in {list(entry.batch)} that fits and meets tpot <= {entry.tpot_slo_s} s{extra}")
    return best
