"""Read a Hugging Face ``config.json`` (offline) into :class:`engine.model.Model` arguments.

Supported ``model_type`` values and the field names each uses (the
``transformers`` configuration classes of the same names are the reference):

* ``llama``, ``mistral``, ``qwen2``, ``qwen3``: dense decoders. ``num_hidden_layers``,
  ``hidden_size``, ``num_attention_heads``, ``num_key_value_heads`` (default: MHA),
  ``head_dim`` (default ``hidden_size / num_attention_heads``), ``intermediate_size``,
  ``vocab_size``, ``tie_word_embeddings``; q/k/v biases from ``attention_bias``
  (Qwen2 always has them); sliding windows from ``layer_types`` or
  ``sliding_window`` (+ ``use_sliding_window`` / ``max_window_layers`` for Qwen).
* ``mixtral``, ``qwen2_moe``, ``qwen3_moe``: MoE. ``num_local_experts`` /
  ``num_experts``, ``num_experts_per_tok``, ``moe_intermediate_size``,
  ``shared_expert_intermediate_size``, ``decoder_sparse_step``, ``mlp_only_layers``.
* ``deepseek_v2``, ``deepseek_v3``: MLA + MoE. ``q_lora_rank``, ``kv_lora_rank``,
  ``qk_nope_head_dim``, ``qk_rope_head_dim``, ``v_head_dim``, ``n_routed_experts``,
  ``n_shared_experts``, ``first_k_dense_replace``, ``moe_layer_freq``. The
  multi-token-prediction layers (``num_nextn_predict_layers``) are not counted.
  DeepSeek's own ``inference/configs/config_671B.json`` format (``dim``,
  ``n_layers``, ``inter_dim``, ``moe_inter_dim``, ``n_dense_layers``,
  ``n_activated_experts`` ...) is recognised without a ``model_type``.
* ``gpt_oss``: MoE with biases and attention sinks; ``num_local_experts`` /
  ``num_experts``, ``num_experts_per_tok`` / ``experts_per_token``,
  ``layer_types`` (default: sliding on even layers, as in openai/gpt-oss
  ``gpt_oss/torch/model.py``). The original gpt-oss ``config.json`` (no
  ``model_type``, ``num_experts`` + ``experts_per_token``) is recognised too.
* ``llama4`` / ``llama4_text``: text part of Llama 4 (``text_config``);
  ``intermediate_size`` is the expert size, ``intermediate_size_mlp`` the
  dense one, one shared expert per MoE layer, ``interleave_moe_layer_step``.
  Chunked attention (``attention_chunk_size``) on the RoPE layers is
  approximated as a sliding window of the chunk size (it bounds the KV cache
  the same way); every ``no_rope_layer_interval``-th layer is global.

Anything else raises ``ValueError`` naming the ``model_type`` and the supported
ones; a missing or malformed required field raises ``ValueError`` naming the
field and the file.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["SUPPORTED_MODEL_TYPES", "model_kwargs_from_hf_config"]

_DENSE = ("llama", "mistral", "qwen2", "qwen3")
_MOE = ("mixtral", "qwen2_moe", "qwen3_moe")
_MLA = ("deepseek_v2", "deepseek_v3")
SUPPORTED_MODEL_TYPES = _DENSE + _MOE + _MLA + ("gpt_oss", "llama4", "llama4_text")


class _Cfg:
    """A config dict with typed getters whose errors name the field and the file."""

    def __init__(self, d: dict, where: str):
        self.d = d
        self.where = where

    def has(self, key: str) -> bool:
        return self.d.get(key) is not None

    def int(self, *keys: str, default=None, minimum: int = 0) -> int:
        """First present key of ``keys`` as an int (``default`` when none is present)."""
        for k in keys:
            v = self.d.get(k)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v != int(v):
                raise ValueError(f"{self.where}: field '{k}' must be an integer, got {v!r}")
            if v < minimum:
                raise ValueError(f"{self.where}: field '{k}' must be >= {minimum}, got {v!r}")
            return int(v)
        if default is None:
            names = " or ".join(f"'{k}'" for k in keys)
            raise ValueError(f"{self.where}: missing required field {names}")
        return default

    def bool(self, key: str, default: bool) -> bool:
        v = self.d.get(key)
        if v is None:
            return default
        if not isinstance(v, bool):
            raise ValueError(f"{self.where}: field '{key}' must be true or false, got {v!r}")
        return v

    def list(self, key: str):
        v = self.d.get(key)
        if v is None:
            return None
        if not isinstance(v, list):
            raise ValueError(f"{self.where}: field '{key}' must be a list, got {v!r}")
        return v


def _load(path) -> tuple[dict, str, str]:
    """Read the JSON; return (dict, description for errors, default model name)."""
    if isinstance(path, dict):
        return path, "config", "hf-model"
    p = Path(os.fspath(path))
    if p.is_dir():
        p = p / "config.json"
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ValueError(f"cannot read model config {str(p)!r}: {e.strerror or e}") from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{p}: not valid JSON: {e.msg} (line {e.lineno})") from None
    if not isinstance(d, dict):
        raise ValueError(f"{p}: a config.json must be a JSON object, got {type(d).__name__}")
    stem = p.parent.name if p.name == "config.json" and p.parent.name else p.stem
    return d, str(p), stem


def _default_name(d: dict, stem: str) -> str:
    src = d.get("_name_or_path")
    base = src.rstrip("/").split("/")[-1] if isinstance(src, str) and src.strip("/") else stem
    return base.strip().lower().replace(" ", "-") or "hf-model"


def _pattern(kinds: list[str], where: str, key: str) -> str:
    """Shortest cyclic S/F pattern equal to a per-layer list of attention kinds."""
    letters = []
    for i, k in enumerate(kinds):
        if k in ("sliding_attention", "chunked_attention"):
            letters.append("S")
        elif k in ("full_attention", "attention"):
            letters.append("F")
        else:
            raise ValueError(f"{where}: field '{key}'[{i}] must be 'sliding_attention' or "
                             f"'full_attention', got {k!r}")
    s = "".join(letters)
    for period in range(1, len(s) + 1):
        if all(s[i] == s[i % period] for i in range(len(s))):
            return s[:period]
    return s


def _attention_window(c: _Cfg, n_layers: int, model_type: str) -> dict:
    """sliding_window / sliding_window_pattern from layer_types, sliding_window and friends."""
    window = c.d.get("sliding_window")
    if window is not None:
        window = c.int("sliding_window", minimum=1)
    layer_types = c.list("layer_types")
    if layer_types is not None:
        if len(layer_types) != n_layers:
            raise ValueError(f"{c.where}: field 'layer_types' has {len(layer_types)} entries, "
                             f"num_hidden_layers is {n_layers}")
        pat = _pattern(layer_types, c.where, "layer_types")
        if "S" not in pat:
            return {}
        if window is None:
            raise ValueError(f"{c.where}: missing required field 'sliding_window' "
                             f"('layer_types' has sliding layers)")
        return {"sliding_window": window, "sliding_window_pattern": "" if pat == "S" else pat}
    if window is None:
        return {}
    if model_type in ("qwen2", "qwen3", "qwen2_moe", "qwen3_moe"):
        # transformers Qwen2/Qwen3: sliding only with use_sliding_window, on the
        # layers from max_window_layers on.
        if not c.bool("use_sliding_window", False):
            return {}
        first = c.int("max_window_layers", default=0)
        pat = "".join("S" if i >= first else "F" for i in range(n_layers))
        return {"sliding_window": window,
                "sliding_window_pattern": _pattern(["sliding_attention" if ch == "S" else
                                                    "full_attention" for ch in pat],
                                                   c.where, "max_window_layers")}
    if model_type == "gpt_oss":
        return {"sliding_window": window, "sliding_window_pattern": "SF"}
    if model_type in ("mistral", "mixtral"):
        return {"sliding_window": window}
    return {}


def _dense_common(c: _Cfg) -> dict:
    n_heads = c.int("num_attention_heads", minimum=1)
    hidden = c.int("hidden_size", minimum=1)
    if c.has("head_dim"):
        head_dim = c.int("head_dim", minimum=1)
    else:
        if hidden % n_heads:
            raise ValueError(f"{c.where}: missing field 'head_dim' and hidden_size ({hidden}) is "
                             f"not a multiple of num_attention_heads ({n_heads})")
        head_dim = hidden // n_heads
    return {
        "n_layers": c.int("num_hidden_layers", minimum=1),
        "hidden_size": hidden,
        "n_heads": n_heads,
        "n_kv_heads": c.int("num_key_value_heads", default=n_heads, minimum=1),
        "head_dim": head_dim,
        "vocab_size": c.int("vocab_size", minimum=1),
        "tie_embeddings": c.bool("tie_word_embeddings", False),
    }


def _leading_dense(c: _Cfg, n_layers: int) -> int:
    """``mlp_only_layers`` as a count of leading dense layers (the only form Model has)."""
    layers = c.list("mlp_only_layers") or []
    if sorted(layers) != list(range(len(layers))):
        raise ValueError(f"{c.where}: field 'mlp_only_layers' = {layers!r} is not a leading "
                         f"block of layers; only leading dense layers are supported")
    return len(layers)


def _from_hf(c: _Cfg, model_type: str) -> dict:
    kw = _dense_common(c)
    L = kw["n_layers"]
    if model_type in _DENSE:
        kw["ffn_size"] = c.int("intermediate_size", minimum=1)
        if model_type == "qwen2":
            kw["qkv_bias"] = True  # Qwen2Attention: q/k/v Linear(bias=True)
        else:
            attn_bias = c.bool("attention_bias", False)
            mlp_bias = c.bool("mlp_bias", False)
            kw["linear_bias"] = attn_bias and mlp_bias
            kw["qkv_bias"] = attn_bias and not mlp_bias
    elif model_type == "mixtral":
        kw.update(n_experts=c.int("num_local_experts", minimum=1),
                  experts_per_token=c.int("num_experts_per_tok", minimum=1),
                  expert_ffn_size=c.int("intermediate_size", minimum=1), ffn_size=0)
    elif model_type in ("qwen2_moe", "qwen3_moe"):
        first_k = _leading_dense(c, L)
        kw.update(n_experts=c.int("num_experts", minimum=1),
                  experts_per_token=c.int("num_experts_per_tok", minimum=1),
                  expert_ffn_size=c.int("moe_intermediate_size", minimum=1),
                  moe_layer_step=c.int("decoder_sparse_step", default=1, minimum=1),
                  first_k_dense=first_k)
        step = kw["moe_layer_step"]
        # dense FFN size only matters when some layer is dense (Model: 0 = all MoE)
        kw["ffn_size"] = c.int("intermediate_size", minimum=1) if (first_k or step > 1) else 0
        if model_type == "qwen2_moe":
            kw["qkv_bias"] = True
            shared = c.int("shared_expert_intermediate_size", default=0)
            if shared:
                kw.update(n_shared_experts=1, shared_expert_ffn_size=shared)
        else:
            kw["qkv_bias"] = c.bool("attention_bias", False)
    elif model_type in _MLA:
        freq = c.int("moe_layer_freq", default=1, minimum=1)
        if freq != 1:
            raise ValueError(f"{c.where}: field 'moe_layer_freq' = {freq} is not supported "
                             f"(only 1: every layer after first_k_dense_replace is MoE)")
        n_heads = kw["n_heads"]
        nope = c.int("qk_nope_head_dim", minimum=1)
        rope = c.int("qk_rope_head_dim", minimum=1)
        kw.update(
            n_kv_heads=n_heads, head_dim=nope + rope,
            ffn_size=c.int("intermediate_size", minimum=1),
            n_experts=c.int("n_routed_experts", minimum=1),
            experts_per_token=c.int("num_experts_per_tok", minimum=1),
            n_shared_experts=c.int("n_shared_experts", default=0),
            expert_ffn_size=c.int("moe_intermediate_size", minimum=1),
            first_k_dense=c.int("first_k_dense_replace", default=0),
            q_lora_rank=c.int("q_lora_rank", default=0),
            kv_lora_rank=c.int("kv_lora_rank", minimum=1),
            qk_nope_head_dim=nope, qk_rope_head_dim=rope,
            v_head_dim=c.int("v_head_dim", minimum=1))
    elif model_type == "gpt_oss":
        kw.update(n_experts=c.int("num_local_experts", "num_experts", minimum=1),
                  experts_per_token=c.int("num_experts_per_tok", "experts_per_token", minimum=1),
                  expert_ffn_size=c.int("intermediate_size", minimum=1), ffn_size=0,
                  linear_bias=c.bool("attention_bias", True), attention_sinks=True)
    elif model_type == "llama4_text":
        step = c.int("interleave_moe_layer_step", default=1, minimum=1)
        if c.list("moe_layers") is not None:
            want = [i for i in range(L) if (i + 1) % step == 0]
            if sorted(c.list("moe_layers")) != want:
                raise ValueError(f"{c.where}: field 'moe_layers' is not every "
                                 f"{step}-th layer; not supported")
        kw.update(n_experts=c.int("num_local_experts", minimum=1),
                  experts_per_token=c.int("num_experts_per_tok", minimum=1),
                  expert_ffn_size=c.int("intermediate_size", minimum=1),
                  n_shared_experts=1, moe_layer_step=step,
                  ffn_size=c.int("intermediate_size_mlp", minimum=1) if step > 1 else 0)
        chunk = c.int("attention_chunk_size", default=0)
        if chunk:
            every = c.int("no_rope_layer_interval", default=4, minimum=1)
            kw.update(sliding_window=chunk,
                      sliding_window_pattern="S" * (every - 1) + "F" if every > 1 else "F")
        return kw
    kw.update(_attention_window(c, L, model_type))
    return kw


def _from_deepseek_reference(c: _Cfg) -> dict:
    """DeepSeek's own inference/configs/*.json (ModelArgs of inference/model.py)."""
    nope = c.int("qk_nope_head_dim", minimum=1)
    rope = c.int("qk_rope_head_dim", minimum=1)
    n_heads = c.int("n_heads", minimum=1)
    return dict(
        n_layers=c.int("n_layers", minimum=1), hidden_size=c.int("dim", minimum=1),
        n_heads=n_heads, n_kv_heads=n_heads, head_dim=nope + rope,
        vocab_size=c.int("vocab_size", minimum=1), ffn_size=c.int("inter_dim", minimum=1),
        tie_embeddings=False,
        n_experts=c.int("n_routed_experts", minimum=1),
        experts_per_token=c.int("n_activated_experts", minimum=1),
        n_shared_experts=c.int("n_shared_experts", default=0),
        expert_ffn_size=c.int("moe_inter_dim", minimum=1),
        first_k_dense=c.int("n_dense_layers", default=0),
        q_lora_rank=c.int("q_lora_rank", default=0), kv_lora_rank=c.int("kv_lora_rank", minimum=1),
        qk_nope_head_dim=nope, qk_rope_head_dim=rope, v_head_dim=c.int("v_head_dim", minimum=1))


def _detect(d: dict, where: str) -> str:
    mt = d.get("model_type")
    if mt is not None:
        if not isinstance(mt, str):
            raise ValueError(f"{where}: field 'model_type' must be a string, got {mt!r}")
        if mt not in SUPPORTED_MODEL_TYPES:
            raise ValueError(f"{where}: unknown model_type {mt!r}; supported: "
                             f"{', '.join(SUPPORTED_MODEL_TYPES)}")
        return mt
    if {"dim", "n_layers", "n_heads", "kv_lora_rank"} <= set(d):
        return "deepseek-reference"
    if {"num_experts", "experts_per_token", "num_hidden_layers"} <= set(d):
        return "gpt_oss"
    raise ValueError(f"{where}: missing required field 'model_type' (and not DeepSeek's or "
                     f"gpt-oss's own config format); supported: {', '.join(SUPPORTED_MODEL_TYPES)}")


def model_kwargs_from_hf_config(path, name: str | None = None) -> dict:
    """Keyword arguments of :class:`engine.model.Model` from a Hugging Face config.

    Parameters
    ----------
    path : str, os.PathLike or dict
        A ``config.json`` file, a directory holding one, or the parsed dict.
    name : str, optional
        Model name; default: the last part of ``_name_or_path``, else the
        directory (for ``.../config.json``) or file stem, lower-cased.

    Returns
    -------
    dict
        Architecture fields plus ``name``, ``full_name``, ``family``, ``notes``
        and ``sources`` (the file it came from).

    Raises
    ------
    ValueError
        Unreadable file, unknown ``model_type``, or a missing or malformed
        required field (the message names the field and the file).
    """
    d, where, stem = _load(path)
    model_type = _detect(d, where)
    if model_type == "llama4":
        text = d.get("text_config")
        if not isinstance(text, dict):
            raise ValueError(f"{where}: missing required field 'text_config' (model_type 'llama4')")
        c = _Cfg(text, f"{where} text_config")
        kw = _from_hf(c, "llama4_text")
    elif model_type == "deepseek-reference":
        kw = _from_deepseek_reference(_Cfg(d, where))
    else:
        kw = _from_hf(_Cfg(d, where), model_type)
    nm = name if name is not None else _default_name(d, stem)
    src = d.get("_name_or_path")
    kw.update(
        name=nm,
        full_name=src if isinstance(src, str) and src else nm,
        family=model_type,
        notes=f"read from {where} (model_type {model_type!r})",
        sources={"architecture": f"{where} (Hugging Face-style config, model_type "
                                 f"{model_type!r})"},
    )
    return kw
