"""Hypothesis strategies built from the declared domains (engine.domains)."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from engine import domains as D
from engine.chip import Chip
from engine.dtypes import DTYPES
from engine.model import Model


def _typical(dom: D.Domain, log=True):
    lo, hi = dom.typical
    if dom.integer:
        return st.integers(int(max(lo, dom.low + (1 if dom.low_open else 0))), int(hi))
    if log and lo > 0:
        return st.floats(np.log10(lo), np.log10(hi)).map(lambda x: float(10.0 ** x))
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


@st.composite
def models(draw):
    """Random but well-formed decoder models: GQA/MHA/MQA or MLA, dense or MoE, windows."""
    n_heads = draw(st.sampled_from([1, 2, 4, 8, 16, 32, 64, 128]))
    head_dim = draw(st.sampled_from([32, 64, 80, 128, 256]))
    kv_heads = draw(st.sampled_from([d for d in (1, 2, 4, 8, 16, 32, 64, 128) if n_heads % d == 0]))
    layers = draw(st.integers(1, 96))
    hidden = draw(st.integers(2, 128)) * 64
    kw = dict(name="m", n_layers=layers, hidden_size=hidden, n_heads=n_heads, n_kv_heads=kv_heads,
              head_dim=head_dim, vocab_size=draw(st.integers(1000, 256000)),
              ffn_gated=draw(st.booleans()), tie_embeddings=draw(st.booleans()))
    if draw(st.booleans()):
        e = draw(st.integers(2, 256))
        kw.update(n_experts=e, experts_per_token=draw(st.integers(1, min(e, 16))),
                  expert_ffn_size=draw(st.integers(1, 64)) * 64,
                  n_shared_experts=draw(st.integers(0, 2)),
                  first_k_dense=draw(st.integers(0, min(3, layers))))
        kw["ffn_size"] = draw(st.integers(1, 256)) * 64 if kw["first_k_dense"] else 0
    else:
        kw["ffn_size"] = draw(st.integers(1, 512)) * 64
    if draw(st.booleans()):
        kw.update(kv_lora_rank=draw(st.sampled_from([128, 256, 512])),
                  q_lora_rank=draw(st.sampled_from([0, 768, 1536])),
                  qk_nope_head_dim=draw(st.sampled_from([64, 128])),
                  qk_rope_head_dim=draw(st.sampled_from([32, 64])),
                  v_head_dim=draw(st.sampled_from([64, 128])))
    if draw(st.booleans()):
        kw.update(sliding_window=draw(st.integers(1, 8192)),
                  sliding_window_pattern=draw(st.sampled_from(["", "S", "SF", "SSSF", "FS"])))
    return Model(**kw)


@st.composite
def chips(draw):
    """Random chips with every figure in its declared typical range."""
    kw = dict(name="c",
              memory_bytes=draw(_typical(D.MEMORY_BYTES)),
              memory_bandwidth=draw(_typical(D.MEMORY_BANDWIDTH)),
              peak_flops_fp32=draw(_typical(D.PEAK_FLOPS)),
              peak_flops_bf16=draw(_typical(D.PEAK_FLOPS)),
              peak_flops_fp8=draw(st.none() | _typical(D.PEAK_FLOPS)),
              peak_ops_int8=draw(st.none() | _typical(D.PEAK_FLOPS)),
              peak_flops_fp4=draw(st.none() | _typical(D.PEAK_FLOPS)),
              link_bandwidth=draw(_typical(D.LINK_BANDWIDTH)),
              link_latency=draw(st.floats(0.0, 2e-5)),
              scaleup_domain=draw(st.none() | st.integers(1, 64)),
              scaleout_bandwidth=draw(_typical(D.SCALEOUT_BANDWIDTH)),
              scaleout_latency=draw(st.floats(0.0, 5e-5)),
              tdp=draw(st.none() | _typical(D.TDP)),
              hourly_price=draw(st.none() | _typical(D.HOURLY_PRICE)),
              compute_efficiency=draw(st.floats(0.3, 1.0)),
              memory_efficiency=draw(st.floats(0.3, 1.0)),
              network_efficiency=draw(st.floats(0.3, 1.0)),
              step_overhead=draw(st.floats(0.0, 1e-3)),
              memory_reserve_fraction=draw(st.floats(0.0, 0.2)))
    return Chip(**kw)


def valid_tps(model: Model, candidates=(1, 2, 4, 8, 16)):
    out = []
    for tp in candidates:
        try:
            model.check_tp(tp)
        except ValueError:
            continue
        out.append(tp)
    return out


@st.composite
def scenario_set(draw, max_points=12, max_output=2048):
    """A few models and chips plus per-point kernel inputs (struct of arrays)."""
    ms = draw(st.lists(models(), min_size=1, max_size=3))
    cs = draw(st.lists(chips(), min_size=1, max_size=3))
    n = draw(st.integers(1, max_points))
    cols = {k: [] for k in ("model_idx", "chip_idx", "tp", "pp", "batch", "prompt", "output",
                            "w_dt", "kv_dt", "act_dt")}
    for _ in range(n):
        mi = draw(st.integers(0, len(ms) - 1))
        ci = draw(st.integers(0, len(cs) - 1))
        chip = cs[ci]
        cols["model_idx"].append(mi)
        cols["chip_idx"].append(ci)
        cols["tp"].append(draw(st.sampled_from(valid_tps(ms[mi]))))
        cols["pp"].append(draw(st.integers(1, min(4, ms[mi].n_layers))))
        cols["batch"].append(draw(st.integers(1, 1024)))
        cols["prompt"].append(draw(st.integers(1, 32768)))
        cols["output"].append(draw(st.integers(1, max_output)))
        cols["w_dt"].append(DTYPES[draw(st.sampled_from(list(DTYPES)))][0])
        cols["kv_dt"].append(DTYPES[draw(st.sampled_from(list(DTYPES)))][0])
        act = draw(st.sampled_from(chip.supported_compute_dtypes()))
        cols["act_dt"].append(DTYPES[act][0])
    arrays = {k: np.asarray(v, dtype=np.int8 if k.endswith("_dt") else np.int32)
              for k, v in cols.items()}
    return ms, cs, arrays
