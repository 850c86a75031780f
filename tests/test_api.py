"""The public contract: estimate/sweep keys, result columns, validation messages."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

import engine
from engine.results import INPUT_KEYS, OUTPUT_KEYS

STARTER_CHIPS = ["h100-sxm", "h200", "b200", "a100-80gb", "mi300x", "l40s"]
STARTER_MODELS = ["llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b", "llama-2-70b",
                  "mixtral-8x7b", "deepseek-v3"]


def test_starter_catalog_present():
    assert set(STARTER_CHIPS) <= set(engine.chips())
    assert set(STARTER_MODELS) <= set(engine.models())


def test_estimate_contract():
    est = engine.estimate("llama-3.1-70b", "h100-sxm", tp=4, batch=16, prompt_tokens=2048,
                          output_tokens=256)
    for k in INPUT_KEYS + OUTPUT_KEYS + ("total_params", "active_params"):
        assert k in est, k
    assert est.n_chips == 4 and est.fits
    assert est.e2e_s == pytest.approx(est.ttft_s + 255 * est.tpot_s, rel=1e-12)
    assert est.output_tokens_per_s == pytest.approx(16 * 256 / est.e2e_s, rel=1e-12)
    assert est.output_tokens_per_s_per_chip == pytest.approx(est.output_tokens_per_s / 4, rel=1e-12)
    chip = engine.get_chip("h100-sxm")
    assert est.cost_per_million_output_tokens_usd == pytest.approx(
        chip.hourly_price * 4 / 3600 / est.output_tokens_per_s * 1e6, rel=1e-12)
    assert est.joules_per_output_token == pytest.approx(chip.tdp * 4 / est.output_tokens_per_s,
                                                        rel=1e-12)
    js = est.to_json_dict()
    assert js["prefill_bound"] in ("compute", "memory", "network")


def test_unknown_price_gives_null_cost():
    chip = replace(engine.get_chip("h100-sxm"), name="noprice", hourly_price=None)
    est = engine.estimate("llama-3.1-8b", chip, batch=1, prompt_tokens=8, output_tokens=8)
    assert math.isnan(est.cost_per_million_output_tokens_usd)
    assert est.to_json_dict()["cost_per_million_output_tokens_usd"] is None


def test_sweep_contract_and_pandas():
    res = engine.sweep(models=["llama-3.1-8b", "llama-3.1-70b"], chips=["h100-sxm", "b200"],
                       tp=[1, 2, 4, 8], batch=[1, 8, 64], prompt_tokens=[128, 2048],
                       output_tokens=[128, 512])
    assert len(res) == 2 * 2 * 4 * 3 * 2 * 2
    assert isinstance(res["tpot_s"], np.ndarray) and len(res["tpot_s"]) == len(res)
    df = res.to_pandas()
    assert list(df.columns) == list(INPUT_KEYS + OUTPUT_KEYS)
    assert len(df) == len(res)
    # point i of the sweep equals the single estimate of the same inputs
    i = 77
    row = res.row(i)
    est = engine.estimate(row.model, row.chip, tp=row.tp, batch=row.batch,
                          prompt_tokens=row.prompt_tokens, output_tokens=row.output_tokens)
    for k in OUTPUT_KEYS:
        a, b = row[k], est[k]
        if isinstance(a, float):
            assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-12), k
        else:
            assert a == b, k
    # C order: the last axis varies fastest
    assert list(res["output_tokens"][:4]) == [128, 512, 128, 512]
    assert list(res["model"][[0, len(res) - 1]]) == ["llama-3.1-8b", "llama-3.1-70b"]
    with pytest.raises(KeyError, match="unknown column 'nope'"):
        res["nope"]


def test_fp8_weights_and_kv_halve_memory():
    a = engine.estimate("llama-3.1-70b", "h200", tp=2, batch=4, prompt_tokens=512, output_tokens=64)
    b = engine.estimate("llama-3.1-70b", "h200", tp=2, batch=4, prompt_tokens=512, output_tokens=64,
                        weight_dtype="fp8", kv_dtype="fp8", act_dtype="fp8")
    assert b.weight_bytes_per_chip == pytest.approx(a.weight_bytes_per_chip / 2)
    assert b.kv_cache_bytes_per_chip == pytest.approx(a.kv_cache_bytes_per_chip / 2)
    assert b.ttft_s < a.ttft_s and b.tpot_s < a.tpot_s
    assert b.max_batch > a.max_batch


@pytest.mark.parametrize("kwargs,match", [
    (dict(model="llama-3.1-70", chip="h100-sxm"), "unknown model 'llama-3.1-70'; did you mean"),
    (dict(model="llama-3.1-8b", chip="h100"), "unknown chip 'h100'; did you mean"),
    (dict(model="llama-3.1-8b", chip="h100-sxm", batch=0), "batch must be >= 1, got 0"),
    (dict(model="llama-3.1-8b", chip="h100-sxm", batch=2.5), "batch must be an integer, got 2.5"),
    (dict(model="llama-3.1-8b", chip="h100-sxm", prompt_tokens=-3), "prompt_tokens must be >= 1"),
    (dict(model="llama-3.1-8b", chip="h100-sxm", output_tokens=float("nan")),
     "output_tokens must be finite"),
    (dict(model="llama-3.1-8b", chip="h100-sxm", tp=3), "tp must divide n_heads=32, got 3"),
    (dict(model="llama-3.1-8b", chip="a100-80gb", act_dtype="fp8"),
     "act_dtype 'fp8' is not supported by chip 'a100-80gb'"),
    (dict(model="llama-3.1-8b", chip="h100-sxm", kv_dtype="fp7"), "kv_dtype must be one of"),
    (dict(model="llama-3.1-8b", chip="h100-sxm", backend="gpu"), "backend must be one of"),
    (dict(model="llama-3.1-8b", chip="h100-sxm", tp=[1, 2]), "tp must be a single integer"),
])
def test_bad_input_messages(kwargs, match):
    model, chip = kwargs.pop("model"), kwargs.pop("chip")
    with pytest.raises(ValueError, match=match):
        engine.estimate(model, chip, **kwargs)


@pytest.mark.parametrize("field,value,match", [
    ("memory_bandwidth", 0.0, "memory_bandwidth must be > 0, got 0.0 \\(chip 'x'\\)"),
    ("peak_flops_bf16", float("nan"), "peak_flops_bf16 must be finite, got nan"),
    ("memory_bytes", float("inf"), "memory_bytes must be finite"),
    ("compute_efficiency", 1.5, "compute_efficiency must be <= 1"),
    ("link_latency", -1e-6, "link_latency must be >= 0"),
])
def test_chip_validation_names_field_and_value(field, value, match):
    kw = dict(name="x", memory_bytes=80e9, memory_bandwidth=3e12, peak_flops_bf16=1e15)
    kw[field] = value
    with pytest.raises(ValueError, match=match):
        engine.Chip(**kw)


def test_model_validation_names_field_and_value():
    with pytest.raises(ValueError, match="n_heads \\(30\\) must be a multiple of n_kv_heads \\(8\\)"):
        engine.Model(name="m", n_layers=2, hidden_size=256, n_heads=30, n_kv_heads=8, head_dim=64,
                     vocab_size=1000, ffn_size=512)
    with pytest.raises(ValueError, match="hidden_size must be an integer, got 100.5"):
        engine.Model(name="m", n_layers=2, hidden_size=100.5, n_heads=8, n_kv_heads=8, head_dim=64,
                     vocab_size=1000, ffn_size=512)


def test_tp_needs_a_link():
    chip = replace(engine.get_chip("h100-sxm"), name="solo", link_bandwidth=None)
    with pytest.raises(ValueError, match="needs a scale-up link, but chip 'solo'"):
        engine.estimate("llama-3.1-8b", chip, tp=2)
    assert engine.estimate("llama-3.1-8b", chip, tp=1).fits


def test_show_config_reports_backends(capsys):
    info = engine.show_config()
    assert info["backends_available"][0] == info["default_backend"]
    assert "numpy" in info["backends_available"]
    assert isinstance(info["cython_openmp"], bool)
    assert info["cython_simd_kernel"] in ("avx512", "avx2", "baseline")
    # both C kernels pick their copy by the same rule on this CPU
    assert info["cython_market_simd_kernel"] == info["cython_simd_kernel"]
    assert "default_threads" in capsys.readouterr().out


def test_chip_without_sourced_figures_is_refused_by_name():
    # Cerebras publishes no dense compute peak (chips.csv): capacity only
    with pytest.raises(ValueError, match="chip 'cs-3-cluster' cannot be estimated: no sourced "
                                         "figure for peak_flops"):
        engine.estimate("llama-3.1-70b", "cs-3-cluster")
    assert engine.chips_needed("llama-3.1-405b", "cs-3-cluster", prompt_tokens=1,
                               output_tokens=1) >= 19   # 811.7 GB / (0.9 x 44 GB)


def test_grid_too_large_for_memory_is_refused_before_allocation():
    # 3000 x 3000 x 3000 = 2.7e10 points x 83 bytes = 2 TiB of outputs
    big = list(range(1, 3001))
    with pytest.raises(ValueError, match="the grid has 27,000,000,000 points whose outputs need"):
        engine.sweep("llama-3.1-8b", "h100-sxm", batch=big, prompt_tokens=big, output_tokens=big)
