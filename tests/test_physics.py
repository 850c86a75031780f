"""Physical invariants and golden values with sources."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine
from engine.core import dispatch
from engine.core import layout as L
from engine.dtypes import DTYPES, bytes_table
from engine.tables import build_tables

from .strategies import chips, models, valid_tps

SETTINGS = settings(max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _point(model, chip, tp=1, pp=1, batch=1, prompt=128, output=64, act="bf16", w="bf16",
           kv="bf16", backend="numpy"):
    mt, ct = build_tables([model], [chip])
    one = lambda v, t=np.int32: np.array([v], dtype=t)  # noqa: E731
    out = dispatch.roofline(mt, ct, bytes_table(), model_idx=one(0), chip_idx=one(0), tp=one(tp),
                            pp=one(pp), batch=one(batch), prompt=one(prompt), output=one(output),
                            w_dt=one(DTYPES[w][0], np.int8), kv_dt=one(DTYPES[kv][0], np.int8),
                            act_dt=one(DTYPES[act][0], np.int8), backend=backend)
    return {name: out.out_f[i, 0] for i, name in enumerate(L.FLOAT_OUTPUTS)} | {
        "fits": bool(out.fits[0]), "max_batch": int(out.max_batch[0])}


def _roomy(chip):
    # enough memory that fit never interferes with timing invariants
    return replace(chip, memory_bytes=1e15)


point_args = st.fixed_dictionaries({
    "batch": st.integers(1, 512), "prompt": st.integers(1, 16384), "output": st.integers(2, 2048),
})


@SETTINGS
@given(model=models(), chip=chips(), args=point_args, factor=st.floats(1.01, 10.0),
       which=st.sampled_from(["memory_bandwidth", "peak_flops_bf16", "link_bandwidth"]))
def test_more_bandwidth_or_flops_never_slows(model, chip, args, factor, which):
    chip = _roomy(chip)
    tp = valid_tps(model)[-1]
    base = _point(model, chip, tp=tp, **args)
    faster = _point(model, replace(chip, **{which: getattr(chip, which) * factor}), tp=tp, **args)
    for key in ("ttft_s", "tpot_s", "e2e_s"):
        assert faster[key] <= base[key] * (1 + 1e-12), key


@SETTINGS
@given(model=models(), chip=chips(), args=point_args, extra=st.integers(1, 512))
def test_larger_batch_never_lowers_step_time(model, chip, args, extra):
    chip = _roomy(chip)
    small = _point(model, chip, **args)
    big = _point(model, chip, **{**args, "batch": args["batch"] + extra})
    for key in ("ttft_s", "tpot_s"):
        assert big[key] >= small[key] * (1 - 1e-12), key


@SETTINGS
@given(model=models(), chip=chips(), prompt=st.integers(1, 65536), output=st.integers(1, 8192),
       batch=st.integers(1, 4096), more=st.integers(1, 4096))
def test_fits_monotone_and_max_batch_is_the_boundary(model, chip, prompt, output, batch, more):
    p = _point(model, chip, batch=batch, prompt=prompt, output=output)
    # monotone in batch and in context
    if not p["fits"]:
        assert not _point(model, chip, batch=batch + more, prompt=prompt, output=output)["fits"]
        assert not _point(model, chip, batch=batch, prompt=prompt + more, output=output)["fits"]
        assert np.isnan(p["ttft_s"]) and np.isnan(p["e2e_s"])
    # max_batch against the byte budget written out independently
    mb = p["max_batch"]
    usable = chip.memory_bytes * (1 - chip.memory_reserve_fraction)
    weights = model.total_params * 2.0
    kv_seq = (model.kv_elements_per_token_per_layer * 2.0
              * (model.n_full_attention_layers * (prompt + output)
                 + model.n_sliding_layers * min(prompt + output, model.sliding_window)))
    if mb > 0:
        assert weights + mb * kv_seq <= usable * (1 + 1e-12)
    assert weights + (mb + 1) * kv_seq > usable * (1 - 1e-12)
    assert p["fits"] == (batch <= mb)
    if mb >= 1:
        assert _point(model, chip, batch=mb, prompt=prompt, output=output)["fits"]
    assert not _point(model, chip, batch=mb + 1, prompt=prompt, output=output)["fits"]


# ------------------------------------------------------------------ goldens
def test_kv_bytes_per_token_llama31_70b_bf16():
    # 2 (K,V) x 8 KV heads x 128 head_dim x 80 layers x 2 bytes = 327,680
    # (dimensions: Meta llama-models sku_list.py, via shared/reference/models.csv)
    assert engine.get_model("llama-3.1-70b").kv_bytes_per_token("bf16") == 327_680


def test_kv_bytes_per_token_deepseek_v3_mla():
    # MLA caches kv_lora_rank 512 + rope dim 64 per layer, 61 layers (DeepSeek-V3 report, Sec. 2.1.1)
    assert engine.get_model("deepseek-v3").kv_bytes_per_token("bf16") == (512 + 64) * 61 * 2


def test_kv_bytes_in_estimate_are_exact():
    est = engine.estimate("llama-3.1-70b", "h200", tp=2, batch=3, prompt_tokens=1000,
                          output_tokens=24)
    # per chip: 3 sequences x 1024 tokens x 327,680 B / 2 TP ranks (8 KV heads split 2 ways)
    assert est.kv_cache_bytes_per_chip == 3 * 1024 * 327_680 / 2


def test_hand_worked_example_from_docs():
    """docs/physics.md, "Worked example": Llama-3.1-8B, H100 SXM, batch 1, one decode step.

    Figures: H100 SXM 3.35 TB/s and 989.4 dense bf16 TFLOP/s (NVIDIA datasheet via
    shared/reference/chips.csv); Llama-3.1-8B dims (Meta sku_list.py).
    """
    h100 = engine.get_chip("h100-sxm", calibrated=False)      # the doc's example is the ideal roofline
    est = engine.estimate("llama-3.1-8b", h100, batch=1, prompt_tokens=1024, output_tokens=2)
    weights_read = (8_030_261_248 - 525_336_576) * 2          # all but the input embedding, bf16
    kv_read = 1025 * 131_072                                   # 1025 cached tokens x 128 KiB
    kv_write = 131_072
    act = 2 * 32 * 4096 * 2
    t_mem = (weights_read + kv_read + kv_write + act) / 3.35e12
    flops = 2 * 6_979_321_856 + 2 * 4096 * 128_256 + 2 * 32 * 256 * 32 * 1025
    t_comp = flops / 989.4e12
    assert t_mem == pytest.approx(4.52085e-3, rel=1e-5)        # the number printed in the doc
    assert est.tpot_s == pytest.approx(max(t_mem, t_comp), rel=1e-12)
    assert est.decode_bound == "memory"
    # prefill of 1024 tokens: compute bound
    pre_flops = (2 * 6_979_321_856 * 1024 + 2 * 4096 * 128_256
                 + 2 * 32 * 256 * 32 * 1024 * 1025 / 2)
    assert est.ttft_s == pytest.approx(max(pre_flops / 989.4e12,
                                           (weights_read + 1024 * (131_072 + act)) / 3.35e12),
                                       rel=1e-12)
    assert est.prefill_bound == "compute"


def test_moe_decode_reads_only_touched_experts():
    # batch 1 on Mixtral reads 2 of 8 experts per layer: far fewer bytes than all weights
    m = engine.get_model("mixtral-8x7b")
    h200 = engine.get_chip("h200", calibrated=False)  # ideal roofline: the bound below
    one = engine.estimate(m, h200, batch=1, prompt_tokens=16, output_tokens=64)
    many = engine.estimate(m, h200, batch=256, prompt_tokens=16, output_tokens=64)
    assert one.tpot_s < many.tpot_s
    assert one.tpot_s < m.total_params * 2 / 4.8e12 * 0.5


def test_tensor_parallel_allreduce_costs_time_with_latency():
    chip = engine.get_chip("h100-sxm")
    slow_link = replace(chip, name="slow", link_latency=1e-3)
    a = engine.estimate("llama-3.1-8b", chip, tp=2, batch=1, prompt_tokens=64, output_tokens=32)
    b = engine.estimate("llama-3.1-8b", slow_link, tp=2, batch=1, prompt_tokens=64,
                        output_tokens=32)
    # 2 all-reduces x 32 layers x 2 (tp-1) latencies of 1 ms more per step
    assert b.tpot_s - a.tpot_s == pytest.approx(2 * 32 * 2 * (1e-3 - chip.link_latency), rel=1e-9)
    assert b.decode_bound == "network"


def test_infeasible_point_is_a_result():
    est = engine.estimate("llama-3.1-405b", "l40s", batch=1, prompt_tokens=128, output_tokens=16)
    assert est.fits is False and est.max_batch == 0
    assert np.isnan(est.ttft_s) and est.prefill_bound == "none"
    assert est.weight_bytes_per_chip == pytest.approx(
        engine.get_model("llama-3.1-405b").total_params * 2)


def test_latency_profile_matches_estimate():
    prof = engine.latency_profile("llama-3.1-8b", "h100-sxm", batch=8, prompt_tokens=512,
                                  output_tokens=300)
    est = engine.estimate("llama-3.1-8b", "h100-sxm", batch=8, prompt_tokens=512,
                          output_tokens=300)
    assert len(prof["step_s"]) == 300
    assert prof["step_s"][0] == pytest.approx(est.ttft_s, rel=1e-12)
    assert prof["cumulative_s"][-1] == pytest.approx(est.e2e_s, rel=1e-12)
    assert np.all(np.diff(prof["step_s"][1:]) >= 0)   # longer context never speeds a step


# ----------------------------------------------------------- systems and pipelines
def _system(domain, scaleout_gbs=100.0, latency=5e-6):
    return replace(engine.get_chip("h100-sxm"), name=f"node{domain}", scaleup_domain=domain,
                   scaleout_bandwidth=scaleout_gbs * 1e9, scaleout_latency=latency)


def test_tensor_parallel_beyond_the_domain_runs_at_scale_out_speed():
    inside = engine.estimate("llama-3.1-405b", _system(16), tp=16, batch=8, prompt_tokens=256,
                             output_tokens=64)
    beyond = engine.estimate("llama-3.1-405b", _system(8), tp=16, batch=8, prompt_tokens=256,
                             output_tokens=64)
    assert beyond.tpot_s > inside.tpot_s
    # the difference is exactly the all-reduce at scale-out instead of NVLink (2 per layer)
    chip = engine.get_chip("h100-sxm")
    msg = 8 * 16384 * 2
    ring = lambda inv_bw, lat: 2 * 126 * (2 * 15 / 16 * msg * inv_bw + 2 * 15 * lat)  # noqa: E731
    expected = ring(1 / 50e9, 5e-6) - ring(1 / (0.5 * chip.link_bandwidth), chip.link_latency)
    assert beyond.tpot_s - inside.tpot_s == pytest.approx(expected, rel=1e-9)


def test_pipeline_handoffs_leave_the_domain_only_at_domain_edges():
    from engine.core.reference import stage_handoffs
    assert stage_handoffs(8, 1, 8) == (0, 0)
    assert stage_handoffs(8, 4, 8) == (3, 0)          # one stage per 8-chip node
    assert stage_handoffs(2, 8, 8) == (1, 6)          # 4 stages per node, 2 nodes
    assert stage_handoffs(4, 6, np.inf) == (0, 5)     # no domain limit


def test_pipelined_stages_multiply_throughput_not_latency():
    kw = dict(batch=4, prompt_tokens=512, output_tokens=128)
    one = engine.estimate("llama-3.1-70b", "h200", tp=2, pp=1, **kw)
    two = engine.estimate("llama-3.1-70b", "h200", tp=2, pp=2, **kw)
    # same per-token work split over sequential stages, plus one hand-off per step
    assert two.tpot_s > one.tpot_s
    assert two.output_tokens_per_s == pytest.approx(2 * 4 * 128 / two.e2e_s, rel=1e-12)
    # each chip holds half the layers for twice the sequences: the same KV bytes
    assert two.kv_cache_bytes_per_chip == pytest.approx(one.kv_cache_bytes_per_chip, rel=1e-12)
    assert two.weight_bytes_per_chip == pytest.approx(one.weight_bytes_per_chip / 2, rel=1e-12)


def test_beyond_the_domain_needs_a_scale_out_figure():
    chip = replace(engine.get_chip("h100-sxm"), name="solo-node", scaleup_domain=8)
    with pytest.raises(ValueError, match="exceeds the scale-up domain of chip 'solo-node' "
                                         "\\(8 chips\\) and it has no sourced scaleout_bandwidth"):
        engine.estimate("llama-3.1-405b", chip, tp=8, pp=2)
    assert engine.estimate("llama-3.1-70b", chip, tp=8).fits


def test_chips_needed_counts_weights_and_kv_over_usable_memory():
    m = engine.get_model("llama-3.1-70b")
    # Groq LPU: 230 MB of SRAM is its only memory (chips.csv); 10% reserve
    need = (m.total_params * 2 + 1 * 2048 * m.kv_bytes_per_token("bf16")) / (0.9 * 0.23e9)
    assert engine.chips_needed(m, "groq-lpu", batch=1, prompt_tokens=1024,
                               output_tokens=1024) == int(np.ceil(need))
    assert engine.chips_needed(m, "groq-lpu", prompt_tokens=1, output_tokens=1) > 300
    assert engine.chips_needed(m, "cerebras-wse-3", prompt_tokens=1, output_tokens=1) <= 4
    # more sequences never need fewer chips; fp8 weights need about half
    a = engine.chips_needed(m, "h100-sxm", batch=1)
    assert engine.chips_needed(m, "h100-sxm", batch=64) >= a
    assert engine.chips_needed(m, "groq-lpu", weight_dtype="fp8", kv_dtype="fp8",
                               prompt_tokens=1, output_tokens=1) <= \
        engine.chips_needed(m, "groq-lpu", prompt_tokens=1, output_tokens=1) // 2 + 1
    est = engine.estimate(m, "h200", tp=2, batch=8, prompt_tokens=512, output_tokens=64)
    assert est.chips_needed == engine.chips_needed(m, "h200", batch=8, prompt_tokens=512,
                                                   output_tokens=64)
    with pytest.raises(ValueError, match="batch must be >= 1"):
        engine.chips_needed(m, "h100-sxm", batch=0)


def test_sram_system_spreads_a_70b_model_over_hundreds_of_lpus():
    """Groq LPU: 230 MB SRAM, 80 TB/s, 480 GB/s C2C, <= 3 us per transfer (chips.toml sources)."""
    kw = dict(batch=1, prompt_tokens=1024, output_tokens=256, weight_dtype="fp8", kv_dtype="fp8")
    m = engine.get_model("llama-3.1-70b")
    need = engine.chips_needed(m, "groq-lpu", **kw)
    assert 300 < need < 400
    small = engine.estimate(m, "groq-lpu", tp=8, pp=48, **kw)       # 384 chips: 184 MB + 26 MB
    assert not small.fits                                              # > 207 MB usable each
    big = engine.estimate(m, "groq-lpu", tp=8, pp=72, **kw)         # 576 chips
    assert big.fits and big.n_chips == 576
    # weights stream from SRAM at aggregate bandwidth: the memory roof of a step is tiny,
    # the per-layer all-reduces and 71 stage hand-offs dominate
    assert big.decode_bound == "network"
    weights_s = m.total_params * 1.0 / (576 * 80e12)
    assert weights_s < 0.01 * big.tpot_s
