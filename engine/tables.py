"""Convert definitions (Chip, Model) into the kernel tables of :mod:`engine.core.layout`.

This is the boundary between the two layers: figures leave here as float64
rows in canonical units with efficiency factors folded into effective rates.
"""
from __future__ import annotations

import math

import numpy as np

from .chip import Chip
from .core import layout as L
from .dtypes import DTYPES
from .model import Model


def model_row(model: Model) -> np.ndarray:
    """One model as a row of the model table (see :mod:`engine.core.layout`)."""
    row = np.zeros(L.N_MODEL_COLS)
    n_full, n_win = model.n_full_attention_layers, model.n_sliding_layers
    attn = model.attention_flops_per_key_per_layer
    kv = model.kv_elements_per_token_per_layer
    row[L.M_LAYERS] = model.n_layers
    row[L.M_HIDDEN] = model.hidden_size
    row[L.M_FLOP_LIN] = 2.0 * model.active_linear_params
    row[L.M_FLOP_HEAD] = 2.0 * model.hidden_size * model.vocab_size
    row[L.M_ATTN_FULL] = attn * n_full
    row[L.M_ATTN_WIN] = attn * n_win
    row[L.M_WINDOW] = model.sliding_window if n_win else 0.0
    row[L.M_KV_FULL] = kv * n_full
    row[L.M_KV_WIN] = kv * n_win
    row[L.M_KV_SPLIT] = model.kv_shard_heads
    row[L.M_PARAMS_RESIDENT] = model.total_params
    routed = model.n_experts * model.routed_expert_params_all_layers
    # the untied input embedding is a row lookup per token, not a weight read
    untied_embedding = 0 if model.tie_embeddings else model.embedding_params
    row[L.M_PARAMS_READ] = model.total_params - routed - untied_embedding
    row[L.M_PARAMS_EXPERT] = model.routed_expert_params_all_layers
    row[L.M_EXPERTS] = model.n_experts
    row[L.M_EXPERTS_ACTIVE] = model.experts_per_token
    if model.n_experts:
        with np.errstate(divide="ignore"):  # k = E: -inf, every expert touched
            row[L.M_LOG_KEEP] = np.log1p(-model.experts_per_token / model.n_experts)
    return row


def require_estimable(chip: Chip) -> None:
    """Raise if the chip lacks a figure every estimate needs (memory, bandwidth, a peak)."""
    missing = chip.missing_for_estimates()
    if missing:
        raise ValueError(f"chip '{chip.name}' cannot be estimated: no sourced figure for "
                         f"{', '.join(missing)}")


def chip_row(chip: Chip) -> np.ndarray:
    """One chip as a row of the chip table, efficiencies folded into the rates."""
    require_estimable(chip)
    row = np.full(L.N_CHIP_COLS, np.nan)
    for name, (code, _) in DTYPES.items():
        peak = chip.peak_flops(name)
        if peak is not None:
            row[L.C_INV_FLOPS + code] = 1.0 / (peak * chip.compute_efficiency)
    row[L.C_USABLE_BYTES] = chip.memory_bytes * (1.0 - chip.memory_reserve_fraction)
    row[L.C_INV_MEM_BW] = 1.0 / (chip.memory_bandwidth * chip.memory_efficiency)
    if chip.link_bandwidth is not None:
        row[L.C_INV_LINK_BW] = 1.0 / (0.5 * chip.link_bandwidth * chip.network_efficiency)
    row[L.C_LINK_LATENCY] = chip.link_latency
    row[L.C_STEP_OVERHEAD] = chip.step_overhead
    if chip.hourly_price is not None:
        row[L.C_HOURLY_USD] = chip.hourly_price
    if chip.tdp is not None:
        row[L.C_TDP_W] = chip.tdp
    row[L.C_SCALEUP_DOMAIN] = np.inf if chip.scaleup_domain is None else chip.scaleup_domain
    if chip.scaleout_bandwidth is not None:
        row[L.C_INV_SCALEOUT_BW] = 1.0 / (0.5 * chip.scaleout_bandwidth * chip.network_efficiency)
    row[L.C_SCALEOUT_LATENCY] = chip.scaleout_latency
    return row


def build_tables(models, chips) -> tuple[np.ndarray, np.ndarray]:
    """Model and chip tables, rows in the order given."""
    mt = np.ascontiguousarray(np.stack([model_row(m) for m in models]))
    ct = np.ascontiguousarray(np.stack([chip_row(c) for c in chips]))
    return mt, ct


def check_deployment(model: Model, chip: Chip, tp: int, pp: int, act_dtype: str) -> None:
    """Raise a one-line ValueError if this model/chip/tp/pp/dtype combination is malformed."""
    require_estimable(chip)
    model.check_tp(tp)
    if pp > model.n_layers:
        raise ValueError(f"pp must be <= n_layers={model.n_layers}, got {pp} (model '{model.name}')")
    if chip.peak_flops(act_dtype) is None:
        sup = ", ".join(chip.supported_compute_dtypes()) or "none"
        raise ValueError(f"act_dtype {act_dtype!r} is not supported by chip '{chip.name}' "
                         f"(no sourced peak; supported: {sup})")
    if (tp > 1 or pp > 1) and (chip.link_bandwidth is None or not math.isfinite(chip.link_bandwidth)):
        raise ValueError(f"tp={tp}, pp={pp} needs a scale-up link, but chip '{chip.name}' has no "
                         f"sourced link_bandwidth")
    domain = chip.scaleup_domain
    if domain is not None and tp * pp > domain and chip.scaleout_bandwidth is None:
        raise ValueError(f"tp x pp = {tp * pp} chips exceeds the scale-up domain of chip "
                         f"'{chip.name}' ({int(domain)} chips) and it has no sourced "
                         f"scaleout_bandwidth")
