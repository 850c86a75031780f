"""docs/claims.md is the output of docs/_generate_claims.py, and its numbers are right."""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

import engine

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _gen():
    spec = importlib.util.spec_from_file_location("_generate_claims", DOCS / "_generate_claims.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_doc_is_generated_output():
    mod = _gen()
    assert (DOCS / "claims.md").read_text() == mod.render(mod.claims())


def test_claim_numbers():
    c = _gen().claims()
    # L40S / H100 SXM datasheet peaks 362.05 / 989.4 dense bf16 TFLOP/s, 0.864 / 3.35 TB/s
    assert c["l40s_vs_h100"]["bf16_peak_ratio"] == pytest.approx(362.05 / 989.4)
    assert c["l40s_vs_h100"]["bandwidth_ratio"] == pytest.approx(0.864 / 3.35)
    # a memory-bound decode step scales with bandwidth; a compute-bound prefill with peak
    assert c["l40s_vs_h100"]["decode_speed_ratio"] == pytest.approx(0.864 / 3.35, rel=0.02)
    assert c["l40s_vs_h100"]["prefill_speed_ratio"] == pytest.approx(362.05 / 989.4, rel=0.02)
    # inf2.48xlarge: 12 x 32 GiB (AWS Neuron docs) = 384 GiB
    assert c["inf2_gpt3"]["instance_memory_gib"] == pytest.approx(384)
    assert c["inf2_gpt3"]["fits"] and c["inf2_gpt3"]["max_batch_2048_256"] >= 1
    # weights only: exactly 1/2 and 1/4 of bf16
    assert c["quantization_memory"]["ratio_8bit"] == pytest.approx(0.5, rel=1e-12)
    assert c["quantization_memory"]["ratio_4bit"] == pytest.approx(0.25, rel=1e-12)
    p = engine.get_model("llama-3.1-70b").total_params
    # weights + a 2-token KV over 90% of the SRAM (230 MB per LPU, 44 GB per WSE-3; chips.csv)
    kv = 2 * engine.get_model("llama-3.1-70b").kv_bytes_per_token("bf16")
    assert c["sram_chip_counts"]["groq-lpu"]["bf16"] == math.ceil((p * 2 + kv) / (0.9 * 230e6))
    assert c["sram_chip_counts"]["groq-lpu"]["bf16"] >= 100          # "hundreds of LPUs"
    assert c["sram_chip_counts"]["cerebras-wse-3"]["bf16"] == math.ceil((p * 2 + kv) / (0.9 * 44e9))
    assert c["mi300x_70b"]["fits"]
    assert c["wse3_bandwidth_pb_s"] == pytest.approx(21.0)
