"""Offline Hugging Face config.json parsing.

``tests/data/configs/`` holds verbatim copies of ``shared/reference/configs/``.
Model types with no stored config.json (gpt-oss, Qwen3-MoE, DeepSeek-V3 HF
format, Llama 4, Mistral with a sliding window) are tested with configs built
below from the catalog's sourced dimensions, written with the field names of
the matching ``transformers`` configuration class; the builders are the
generators of those fixtures.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from engine import catalog as C
from engine.hf_config import SUPPORTED_MODEL_TYPES, model_kwargs_from_hf_config
from engine.model import Model

CONFIGS = Path(__file__).parent / "data" / "configs"

#: every stored config.json -> the catalog row it must reproduce
CONFIG_ROWS = {
    "DERIVED__BitStack__BitStack-Qwen2.5-72B__config.json": "qwen2.5-72b",
    "DERIVED__LoftQ__Llama-2-13b-hf-4bit-64rank__config_from_meta-llama_Llama-2-13b-hf.json":
        "llama-2-13b",
    "DERIVED__chrisyuan45__TimeLlama-7b__config_from_meta-llama_Llama-2-7b-hf.json": "llama-2-7b",
    "DERIVED__mattshumer__Reflection-70B-Draft__config_from_Meta-Llama-3.1-70B-Instruct.json":
        "llama-3.1-70b",
    "Qwen__Qwen2-72B-Instruct__config_7c7b4195.json": "qwen2.5-72b",  # identical dims
    "UNVERIFIED__ronnywebdevs1__d-m-1__config_matches_Qwen3-32B.json": "qwen3-32b",
    "deepseek-ai__DeepSeek-V3__inference_configs_config_671B.json": "deepseek-v3",
    "deepseek-ai__DeepSeek-V3__inference_configs_config_v3.1.json": "deepseek-v3",
    "mistral-community__Mixtral-8x22B-v0.1__config_refs-pr-19.json": "mixtral-8x22b",
    "mistralai__Mixtral-8x7B-Instruct-v0.1__config.json": "mixtral-8x7b",
}

_NOT_DIMS = {"name", "full_name", "family", "notes", "sources",
             "published_total_params", "published_active_params"}


def _dims(m: Model) -> dict:
    return {f.name: getattr(m, f.name) for f in dataclasses.fields(Model) if f.name not in _NOT_DIMS}


def test_every_stored_config_is_mapped():
    assert sorted(p.name for p in CONFIGS.glob("*.json")) == sorted(CONFIG_ROWS)


@pytest.mark.parametrize("fname,row", sorted(CONFIG_ROWS.items()))
def test_stored_configs_reproduce_catalog_rows(fname, row):
    m = Model.from_hf_config(CONFIGS / fname)
    want = C.get_model(row)
    assert _dims(m) == _dims(want)
    assert m.total_params == want.total_params and m.active_params == want.active_params
    assert str(CONFIGS / fname) in m.sources["architecture"]


def test_names_from_name_or_path_directory_or_argument(tmp_path):
    m = Model.from_hf_config(CONFIGS / CONFIG_ROWS_KEY_70B)
    assert m.name == "meta-llama-3.1-70b-instruct"
    assert m.full_name == "meta-llama/Meta-Llama-3.1-70B-Instruct"
    d = tmp_path / "Mixtral-8x7B"
    d.mkdir()
    (d / "config.json").write_text((CONFIGS / "mistralai__Mixtral-8x7B-Instruct-v0.1__config.json")
                                   .read_text())
    assert Model.from_hf_config(d).name == "mixtral-8x7b"            # directory
    assert Model.from_hf_config(d / "config.json").name == "mixtral-8x7b"
    assert Model.from_hf_config(d, name="mine").name == "mine"
    assert C.get_model(str(d / "config.json")).n_experts == 8


CONFIG_ROWS_KEY_70B = ("DERIVED__mattshumer__Reflection-70B-Draft__config_from_"
                       "Meta-Llama-3.1-70B-Instruct.json")


# ------------------------------------------- generated HF-format fixtures
def _gpt_oss_hf(m: Model) -> dict:
    """transformers GptOssConfig field names."""
    return {"model_type": "gpt_oss", "num_hidden_layers": m.n_layers,
            "hidden_size": m.hidden_size, "num_attention_heads": m.n_heads,
            "num_key_value_heads": m.n_kv_heads, "head_dim": m.head_dim,
            "vocab_size": m.vocab_size, "intermediate_size": m.expert_ffn_size,
            "num_local_experts": m.n_experts, "num_experts_per_tok": m.experts_per_token,
            "sliding_window": m.sliding_window, "attention_bias": True,
            "tie_word_embeddings": False,
            "layer_types": ["sliding_attention" if i % 2 == 0 else "full_attention"
                            for i in range(m.n_layers)]}


def _gpt_oss_original(m: Model) -> dict:
    """openai/gpt-oss original config.json names (num_experts, experts_per_token)."""
    return {"num_hidden_layers": m.n_layers, "num_experts": m.n_experts,
            "experts_per_token": m.experts_per_token, "vocab_size": m.vocab_size,
            "hidden_size": m.hidden_size, "intermediate_size": m.expert_ffn_size,
            "swiglu_limit": 7.0, "head_dim": m.head_dim,
            "num_attention_heads": m.n_heads, "num_key_value_heads": m.n_kv_heads,
            "sliding_window": m.sliding_window, "initial_context_length": 4096,
            "rope_theta": 150000}


def _qwen3_moe_hf(m: Model) -> dict:
    """transformers Qwen3MoeConfig field names."""
    return {"model_type": "qwen3_moe", "num_hidden_layers": m.n_layers,
            "hidden_size": m.hidden_size, "num_attention_heads": m.n_heads,
            "num_key_value_heads": m.n_kv_heads, "head_dim": m.head_dim,
            "vocab_size": m.vocab_size, "intermediate_size": 12288,
            "moe_intermediate_size": m.expert_ffn_size, "num_experts": m.n_experts,
            "num_experts_per_tok": m.experts_per_token, "decoder_sparse_step": 1,
            "mlp_only_layers": [], "norm_topk_prob": True, "tie_word_embeddings": False,
            "use_sliding_window": False, "sliding_window": None, "attention_bias": False}


def _deepseek_v3_hf(m: Model) -> dict:
    """transformers DeepseekV3Config field names (HF-format config.json)."""
    return {"model_type": "deepseek_v3", "num_hidden_layers": m.n_layers,
            "hidden_size": m.hidden_size, "num_attention_heads": m.n_heads,
            "num_key_value_heads": m.n_heads, "vocab_size": m.vocab_size,
            "intermediate_size": m.ffn_size, "moe_intermediate_size": m.expert_ffn_size,
            "n_routed_experts": m.n_experts, "n_shared_experts": m.n_shared_experts,
            "num_experts_per_tok": m.experts_per_token, "first_k_dense_replace": m.first_k_dense,
            "moe_layer_freq": 1, "q_lora_rank": m.q_lora_rank, "kv_lora_rank": m.kv_lora_rank,
            "qk_nope_head_dim": m.qk_nope_head_dim, "qk_rope_head_dim": m.qk_rope_head_dim,
            "v_head_dim": m.v_head_dim, "num_nextn_predict_layers": 1,
            "tie_word_embeddings": False, "n_group": 8, "topk_group": 4}


def _llama4_hf(m: Model) -> dict:
    """transformers Llama4Config (multimodal wrapper with text_config)."""
    text = {"model_type": "llama4_text", "num_hidden_layers": m.n_layers,
            "hidden_size": m.hidden_size, "num_attention_heads": m.n_heads,
            "num_key_value_heads": m.n_kv_heads, "head_dim": m.head_dim,
            "vocab_size": m.vocab_size, "intermediate_size": m.expert_ffn_size,
            "intermediate_size_mlp": m.ffn_size, "num_local_experts": m.n_experts,
            "num_experts_per_tok": m.experts_per_token,
            "interleave_moe_layer_step": m.moe_layer_step,
            "moe_layers": [i for i in range(m.n_layers) if (i + 1) % m.moe_layer_step == 0],
            "attention_chunk_size": 8192, "no_rope_layer_interval": 4,
            "tie_word_embeddings": False}
    return {"model_type": "llama4", "text_config": text, "vision_config": {"hidden_size": 1408}}


@pytest.mark.parametrize("row,build", [
    ("gpt-oss-120b", _gpt_oss_hf), ("gpt-oss-20b", _gpt_oss_hf),
    ("gpt-oss-120b", _gpt_oss_original), ("gpt-oss-20b", _gpt_oss_original),
    ("qwen3-235b-a22b", _qwen3_moe_hf), ("qwen3-30b-a3b", _qwen3_moe_hf),
    ("deepseek-v3", _deepseek_v3_hf), ("llama-4-scout", _llama4_hf),
])
def test_generated_hf_configs_reproduce_catalog_rows(tmp_path, row, build):
    want = C.get_model(row)
    p = tmp_path / "config.json"
    p.write_text(json.dumps(build(want)))
    got = Model.from_hf_config(p)
    assert _dims(got) == _dims(want)
    assert got.total_params == want.total_params and got.active_params == want.active_params


def test_llama4_maverick_interleaved_moe():
    want = C.get_model("llama-4-maverick")
    kw = model_kwargs_from_hf_config(_llama4_hf(want))
    got = Model(**kw)
    assert got.n_moe_layers == 24 and got.n_dense_ffn_layers == 24
    assert got.total_params == want.total_params
    assert got.sliding_window == 8192 and got.sliding_window_pattern == "SSSF"


# ------------------------------------------------------ field variants
def _llama(**over) -> dict:
    d = json.loads((CONFIGS / CONFIG_ROWS_KEY_70B).read_text())
    d.update(over)
    return {k: v for k, v in d.items() if v is not ...}


def test_defaults_follow_transformers():
    # no num_key_value_heads -> MHA; no head_dim -> hidden / heads
    kw = model_kwargs_from_hf_config(_llama(num_key_value_heads=..., head_dim=...))
    assert kw["n_kv_heads"] == 64 and kw["head_dim"] == 128
    kw = model_kwargs_from_hf_config(_llama(tie_word_embeddings=...))
    assert kw["tie_embeddings"] is False
    # attention_bias alone -> q/k/v biases; with mlp_bias -> biases everywhere
    assert model_kwargs_from_hf_config(_llama(attention_bias=True))["qkv_bias"] is True
    kw = model_kwargs_from_hf_config(_llama(attention_bias=True, mlp_bias=True))
    assert kw["linear_bias"] is True and kw["qkv_bias"] is False
    # Qwen2 always has q/k/v biases
    q = json.loads((CONFIGS / "Qwen__Qwen2-72B-Instruct__config_7c7b4195.json").read_text())
    assert model_kwargs_from_hf_config(q)["qkv_bias"] is True


def test_sliding_window_variants():
    # Mistral-7B-style: one window for every layer
    kw = model_kwargs_from_hf_config(_llama(model_type="mistral", sliding_window=4096))
    assert kw["sliding_window"] == 4096 and kw.get("sliding_window_pattern", "") == ""
    # Llama has no sliding window even if the key is present
    assert "sliding_window" not in model_kwargs_from_hf_config(_llama(sliding_window=4096))
    # Qwen2: only with use_sliding_window, from max_window_layers on
    q = json.loads((CONFIGS / "Qwen__Qwen2-72B-Instruct__config_7c7b4195.json").read_text())
    assert "sliding_window" not in model_kwargs_from_hf_config(q)  # use_sliding_window false
    q.update(use_sliding_window=True, sliding_window=4096, max_window_layers=40)
    kw = model_kwargs_from_hf_config(q)
    m = Model(**kw)
    assert m.n_sliding_layers == 40 and m.sliding_window_pattern == "F" * 40 + "S" * 40
    # layer_types wins and is compressed to its period
    lt = ["sliding_attention"] * 3 + ["full_attention"]
    kw = model_kwargs_from_hf_config(_llama(model_type="qwen3", layer_types=lt * 20,
                                            sliding_window=1024))
    assert kw["sliding_window_pattern"] == "SSSF" and Model(**kw).n_sliding_layers == 60
    kw = model_kwargs_from_hf_config(_llama(layer_types=["full_attention"] * 80))
    assert "sliding_window" not in kw


def test_qwen_moe_leading_dense_layers_and_shared_expert():
    m = C.get_model("qwen3-30b-a3b")
    d = _qwen3_moe_hf(m)
    d["mlp_only_layers"] = [0, 1]
    kw = model_kwargs_from_hf_config(d)
    assert kw["first_k_dense"] == 2 and kw["ffn_size"] == 12288
    d["mlp_only_layers"] = [3]
    with pytest.raises(ValueError, match=r"field 'mlp_only_layers' = \[3\] is not a leading block"):
        model_kwargs_from_hf_config(d)
    d2 = dict(_qwen3_moe_hf(m), model_type="qwen2_moe", shared_expert_intermediate_size=5632)
    kw = model_kwargs_from_hf_config(d2)
    assert kw["n_shared_experts"] == 1 and kw["shared_expert_ffn_size"] == 5632 and kw["qkv_bias"]


# ------------------------------------------------------------- errors
@pytest.mark.parametrize("drop", ["num_hidden_layers", "hidden_size", "num_attention_heads",
                                  "vocab_size", "intermediate_size"])
def test_missing_required_field_is_named(tmp_path, drop):
    p = tmp_path / "config.json"
    p.write_text(json.dumps(_llama(**{drop: ...})))
    with pytest.raises(ValueError) as e:
        Model.from_hf_config(p)
    msg = str(e.value)
    assert msg == f"{p}: missing required field '{drop}'"


def test_missing_moe_and_mla_fields_are_named():
    d = _deepseek_v3_hf(C.get_model("deepseek-v3"))
    del d["kv_lora_rank"]
    with pytest.raises(ValueError, match=r"^config: missing required field 'kv_lora_rank'$"):
        model_kwargs_from_hf_config(d)
    g = _gpt_oss_hf(C.get_model("gpt-oss-20b"))
    del g["num_local_experts"]
    with pytest.raises(ValueError, match=r"missing required field 'num_local_experts' or 'num_experts'"):
        model_kwargs_from_hf_config(g)
    ds = json.loads((CONFIGS / "deepseek-ai__DeepSeek-V3__inference_configs_config_671B.json")
                    .read_text())
    del ds["n_activated_experts"]
    with pytest.raises(ValueError, match=r"missing required field 'n_activated_experts'"):
        model_kwargs_from_hf_config(ds)
    lt = _gpt_oss_hf(C.get_model("gpt-oss-20b"))
    lt["sliding_window"] = None
    with pytest.raises(ValueError, match=r"missing required field 'sliding_window'"):
        model_kwargs_from_hf_config(lt)


@pytest.mark.parametrize("over,pattern", [
    ({"model_type": "bert"}, r"unknown model_type 'bert'; supported: llama, mistral"),
    ({"model_type": 3}, r"field 'model_type' must be a string, got 3"),
    ({"model_type": ...}, r"missing required field 'model_type'"),
    ({"num_hidden_layers": "80"}, r"field 'num_hidden_layers' must be an integer, got '80'"),
    ({"num_hidden_layers": 80.5}, r"field 'num_hidden_layers' must be an integer, got 80.5"),
    ({"num_hidden_layers": 0}, r"field 'num_hidden_layers' must be >= 1, got 0"),
    ({"tie_word_embeddings": "no"}, r"field 'tie_word_embeddings' must be true or false"),
    ({"head_dim": ..., "num_attention_heads": 48},
     r"missing field 'head_dim' and hidden_size \(8192\) is not a multiple of"),
    ({"layer_types": ["full_attention"] * 3}, r"'layer_types' has 3 entries, num_hidden_layers is 80"),
    ({"layer_types": ["local"] * 80}, r"field 'layer_types'\[0\] must be 'sliding_attention'"),
    ({"num_key_value_heads": 7}, r"n_heads \(64\) must be a multiple of n_kv_heads \(7\)"),
])
def test_bad_configs_raise_one_line_errors(over, pattern):
    with pytest.raises(ValueError, match=pattern) as e:
        Model.from_hf_config(_llama(**over)) if "n_heads" not in pattern else \
            Model(**model_kwargs_from_hf_config(_llama(**over)))
    assert "\n" not in str(e.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(ValueError, match="cannot read model config"):
        Model.from_hf_config(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"bad.json: not valid JSON"):
        Model.from_hf_config(bad)
    lst = tmp_path / "list.json"
    lst.write_text("[]")
    with pytest.raises(ValueError, match="must be a JSON object"):
        Model.from_hf_config(lst)
    d = _deepseek_v3_hf(C.get_model("deepseek-v3"))
    d["moe_layer_freq"] = 2
    with pytest.raises(ValueError, match=r"field 'moe_layer_freq' = 2 is not supported"):
        model_kwargs_from_hf_config(d)
    l4 = {"model_type": "llama4"}
    with pytest.raises(ValueError, match=r"missing required field 'text_config'"):
        model_kwargs_from_hf_config(l4)


def test_supported_types_listed():
    for t in ("llama", "mistral", "mixtral", "qwen2", "qwen3", "qwen3_moe", "deepseek_v3",
              "gpt_oss"):
        assert t in SUPPORTED_MODEL_TYPES
