"""Decoder-only transformer definitions and the architecture-level counts.

Parameter counts are computed from the architecture, never typed in. The
counts follow the layer structure of the reference implementations:

* Llama / Mistral / Qwen: Touvron et al., "Llama 2", arXiv:2307.09288 (2023),
  GQA from Ainslie et al., arXiv:2305.13245 (2023), gated SwiGLU FFN from
  Shazeer, arXiv:2002.05202 (2020) = 3 matrices.
* Mixture of experts: Jiang et al., "Mixtral of Experts", arXiv:2401.04088.
* Multi-head latent attention and shared experts: DeepSeek-AI,
  "DeepSeek-V3 Technical Report", arXiv:2412.19437 (2024), Sec. 2.1.
* Sliding-window attention: Beltagy et al., "Longformer", arXiv:2004.05150.

Per-token formulas used by the kernels (FLOPs, KV bytes) are derived from
these counts in :mod:`engine.tables`; the per-point physics lives in
:mod:`engine.core`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from . import domains as D
from .dtypes import dtype_bytes


@dataclass(frozen=True)
class Model:
    """A decoder transformer.

    Parameters
    ----------
    name : str
        Catalog name (``"llama-3.1-70b"``).
    n_layers, hidden_size, n_heads, n_kv_heads, head_dim, vocab_size : int
        Architecture. ``n_kv_heads`` = ``n_heads`` for MHA, 1 for MQA.
    ffn_size : int
        Inner size of dense FFN layers (0 when every layer is MoE).
    ffn_gated : bool
        Gated FFN (SwiGLU/GeGLU, 3 matrices) or plain (2 matrices).
    tie_embeddings : bool
        Whether the lm_head reuses the input embedding matrix.
    qkv_bias, linear_bias : bool
        Biases on the q/k/v projections (Qwen2) and on every other linear
        layer (GPT-3, gpt-oss).
    n_experts, experts_per_token, n_shared_experts, expert_ffn_size : int
        MoE: routed experts per MoE layer, experts chosen per token, always-on
        shared experts, inner size of each expert. ``n_experts = 0``: dense.
    shared_expert_ffn_size : int
        Inner size of a shared expert (default ``expert_ffn_size``).
    first_k_dense : int
        Leading layers with a dense FFN (DeepSeek-V3: 3).
    moe_layer_step : int
        Every ``moe_layer_step``-th layer after ``first_k_dense`` is MoE
        (Llama-4 ``interleave_moe_layer_step``); others are dense.
    q_lora_rank, kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim, v_head_dim : int
        MLA dimensions; ``kv_lora_rank > 0`` switches MLA on. ``q_lora_rank = 0``
        means a full-rank query projection.
    sliding_window : int
        Window [token] of sliding-window layers; 0 = none.
    sliding_window_pattern : str
        Cyclic per-layer pattern of ``S`` (sliding) and ``F`` (full) layers,
        e.g. ``"SF"`` for gpt-oss. Empty = every layer sliding when
        ``sliding_window > 0``.
    attention_sinks : bool
        One learned sink logit per head and layer (gpt-oss).
    sources : dict
        Field -> source for the architecture figures and published counts.
    published_total_params, published_active_params : float or None
        Published counts [parameter], kept to test the computed ones.
    """

    name: str
    n_layers: int
    hidden_size: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    vocab_size: int
    ffn_size: int = 0
    ffn_gated: bool = True
    tie_embeddings: bool = False
    qkv_bias: bool = False
    linear_bias: bool = False
    n_experts: int = 0
    experts_per_token: int = 0
    n_shared_experts: int = 0
    expert_ffn_size: int = 0
    shared_expert_ffn_size: int = 0
    first_k_dense: int = 0
    moe_layer_step: int = 1
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    qk_nope_head_dim: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    sliding_window: int = 0
    sliding_window_pattern: str = ""
    attention_sinks: bool = False
    full_name: str = ""
    family: str = ""
    notes: str = ""
    published_total_params: float | None = None
    published_active_params: float | None = None
    sources: dict = field(default_factory=dict, compare=False, hash=False)

    # ------------------------------------------------------------------ checks
    def __post_init__(self):
        ctx = f"model '{self.name}'"
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"model name must be a non-empty string, got {self.name!r}")
        for dom, attr in ((D.N_LAYERS, "n_layers"), (D.HIDDEN, "hidden_size"), (D.HEADS, "n_heads"),
                          (D.KV_HEADS, "n_kv_heads"), (D.HEAD_DIM, "head_dim"),
                          (D.VOCAB, "vocab_size")):
            object.__setattr__(self, attr, int(dom.named(attr).check(getattr(self, attr), ctx)))
        for attr in ("ffn_size", "n_experts", "experts_per_token", "n_shared_experts",
                     "expert_ffn_size", "shared_expert_ffn_size", "first_k_dense",
                     "q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim",
                     "v_head_dim", "sliding_window"):
            dom = D.Domain(attr, "1", 0, 10**9, integer=True)
            object.__setattr__(self, attr, int(dom.check(getattr(self, attr), ctx)))
        object.__setattr__(self, "moe_layer_step",
                           int(D.Domain("moe_layer_step", "layer", 1, 10**6, integer=True)
                               .check(self.moe_layer_step, ctx)))
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must be a multiple of n_kv_heads "
                             f"({self.n_kv_heads}) ({ctx})")
        if self.n_experts:
            if not 1 <= self.experts_per_token <= self.n_experts:
                raise ValueError(f"experts_per_token must be in [1, n_experts={self.n_experts}], "
                                 f"got {self.experts_per_token} ({ctx})")
            if self.expert_ffn_size <= 0:
                raise ValueError(f"expert_ffn_size must be > 0 for an MoE model, got "
                                 f"{self.expert_ffn_size} ({ctx})")
            if self.first_k_dense > self.n_layers:
                raise ValueError(f"first_k_dense must be <= n_layers ({self.n_layers}), got "
                                 f"{self.first_k_dense} ({ctx})")
            if self.n_shared_experts and not self.shared_expert_ffn_size:
                object.__setattr__(self, "shared_expert_ffn_size", self.expert_ffn_size)
        elif self.experts_per_token or self.n_shared_experts:
            raise ValueError(f"experts_per_token/n_shared_experts need n_experts > 0 ({ctx})")
        if self.n_dense_ffn_layers and self.ffn_size <= 0:
            raise ValueError(f"ffn_size must be > 0 when the model has dense FFN layers, got "
                             f"{self.ffn_size} ({ctx})")
        if self.kv_lora_rank:
            for attr in ("qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"):
                if getattr(self, attr) <= 0:
                    raise ValueError(f"{attr} must be > 0 for an MLA model, got "
                                     f"{getattr(self, attr)} ({ctx})")
        pat = self.sliding_window_pattern
        if pat and (set(pat) - {"S", "F"}):
            raise ValueError(f"sliding_window_pattern must contain only 'S' and 'F', got "
                             f"{pat!r} ({ctx})")
        if pat and "S" in pat and self.sliding_window <= 0:
            raise ValueError(f"sliding_window must be > 0 when the pattern has 'S' layers ({ctx})")

    # ------------------------------------------------------------- structure
    @property
    def is_moe(self) -> bool:
        return self.n_experts > 0

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank > 0

    @cached_property
    def n_moe_layers(self) -> int:
        """Layers whose FFN is a mixture of experts."""
        if not self.is_moe:
            return 0
        return sum(1 for i in range(self.first_k_dense, self.n_layers)
                   if (i - self.first_k_dense + 1) % self.moe_layer_step == 0)

    @property
    def n_dense_ffn_layers(self) -> int:
        return self.n_layers - self.n_moe_layers

    @cached_property
    def n_sliding_layers(self) -> int:
        """Layers that attend over at most ``sliding_window`` keys."""
        if self.sliding_window <= 0:
            return 0
        pat = self.sliding_window_pattern or "S"
        return sum(1 for i in range(self.n_layers) if pat[i % len(pat)] == "S")

    @property
    def n_full_attention_layers(self) -> int:
        return self.n_layers - self.n_sliding_layers

    @property
    def qk_head_dim(self) -> int:
        """Query/key dimension per head used in QK^T."""
        return self.qk_nope_head_dim + self.qk_rope_head_dim if self.is_mla else self.head_dim

    @property
    def v_dim(self) -> int:
        """Value dimension per head used in AV."""
        return self.v_head_dim if self.is_mla else self.head_dim

    # ------------------------------------------------------- parameter counts
    @cached_property
    def attention_params_per_layer(self) -> int:
        """Projection weights (and biases) of one attention block [parameter].

        GQA: q (h*d_h x d), k and v (h_kv*d_h x d each), o (d x h*d_h).
        MLA (DeepSeek-V3 report, Sec. 2.1.1): W_DQ (d x r_q) + q norm + W_UQ
        (r_q x h(d_nope+d_rope)); W_DKV+W_KR (d x (r_kv+d_rope)) + kv norm +
        W_UK,W_UV (r_kv x h(d_nope+d_v)); W_O (h d_v x d).
        """
        d, h = self.hidden_size, self.n_heads
        if self.is_mla:
            qk = self.qk_nope_head_dim + self.qk_rope_head_dim
            if self.q_lora_rank:
                q = d * self.q_lora_rank + self.q_lora_rank + self.q_lora_rank * h * qk
            else:
                q = d * h * qk
            kv = (d * (self.kv_lora_rank + self.qk_rope_head_dim) + self.kv_lora_rank
                  + self.kv_lora_rank * h * (self.qk_nope_head_dim + self.v_head_dim))
            o = h * self.v_head_dim * d
            n = q + kv + o
        else:
            hd, kvd = h * self.head_dim, self.n_kv_heads * self.head_dim
            n = d * hd + 2 * d * kvd + hd * d
            if self.qkv_bias or self.linear_bias:
                n += hd + 2 * kvd
        if self.linear_bias:
            n += d
        if self.attention_sinks:
            n += h
        return n

    def _ffn_params(self, inner: int) -> int:
        mats = 3 if self.ffn_gated else 2
        n = mats * self.hidden_size * inner
        if self.linear_bias:
            n += (mats - 1) * inner + self.hidden_size
        return n

    @cached_property
    def dense_ffn_params(self) -> int:
        """One dense FFN block [parameter]."""
        return self._ffn_params(self.ffn_size) if self.ffn_size else 0

    @cached_property
    def expert_params(self) -> int:
        """One routed expert in one MoE layer [parameter]."""
        return self._ffn_params(self.expert_ffn_size) if self.is_moe else 0

    @cached_property
    def shared_experts_params(self) -> int:
        """All shared experts of one MoE layer [parameter]."""
        return self.n_shared_experts * self._ffn_params(self.shared_expert_ffn_size) if self.is_moe else 0

    @cached_property
    def router_params(self) -> int:
        """Router (gate) of one MoE layer [parameter]."""
        if not self.is_moe:
            return 0
        return self.hidden_size * self.n_experts + (self.n_experts if self.linear_bias else 0)

    @property
    def norm_params(self) -> int:
        """RMSNorm weights: two per layer plus the final norm [parameter]."""
        return (2 * self.n_layers + 1) * self.hidden_size

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def lm_head_params(self) -> int:
        """Separate output projection; 0 when tied to the embedding."""
        return 0 if self.tie_embeddings else self.vocab_size * self.hidden_size

    def _linear_params(self, experts: int) -> int:
        return (self.n_layers * self.attention_params_per_layer
                + self.n_dense_ffn_layers * self.dense_ffn_params
                + self.n_moe_layers * (experts * self.expert_params + self.shared_experts_params
                                       + self.router_params))

    @cached_property
    def total_params(self) -> int:
        """Every stored parameter: embeddings, lm_head (untied), all experts [parameter]."""
        return (self._linear_params(self.n_experts) + self.embedding_params
                + self.lm_head_params + self.norm_params)

    @cached_property
    def active_params(self) -> int:
        """Parameters touched by one token: only ``experts_per_token`` routed experts [parameter]."""
        return (self._linear_params(self.experts_per_token) + self.embedding_params
                + self.lm_head_params + self.norm_params)

    @cached_property
    def active_linear_params(self) -> int:
        """Matmul weights one token multiplies through in the layers (no embedding, no lm_head)."""
        return self._linear_params(self.experts_per_token)

    @cached_property
    def routed_expert_params_all_layers(self) -> int:
        """One routed expert summed over every MoE layer [parameter]."""
        return self.n_moe_layers * self.expert_params

    # ------------------------------------------------------------- attention
    @property
    def kv_elements_per_token_per_layer(self) -> int:
        """Cached elements per token per layer.

        MHA/GQA/MQA: K and V, ``2 * n_kv_heads * head_dim``. MLA caches the
        compressed latent plus the decoupled RoPE key,
        ``kv_lora_rank + qk_rope_head_dim`` (DeepSeek-V3 report, Eq. 1-5).
        """
        if self.is_mla:
            return self.kv_lora_rank + self.qk_rope_head_dim
        return 2 * self.n_kv_heads * self.head_dim

    def kv_bytes_per_token(self, kv_dtype: str = "bf16", context: int | None = None) -> float:
        """KV-cache bytes per token over all layers [byte].

        With ``context`` given, sliding-window layers hold ``min(context, window)``
        tokens and the result is the average over the ``context`` tokens.
        """
        b = dtype_bytes(kv_dtype, "kv_dtype")
        e = self.kv_elements_per_token_per_layer
        if context is None:
            return self.n_layers * e * b
        cached = (self.n_full_attention_layers * context
                  + self.n_sliding_layers * min(context, self.sliding_window))
        return cached * e * b / context

    @property
    def attention_flops_per_key_per_layer(self) -> int:
        """FLOPs of QK^T and AV for one query against one key in one layer.

        ``2 * n_heads * (d_qk + d_v)`` (a multiply-add is 2 FLOPs); Kaplan et
        al., "Scaling Laws for Neural Language Models", arXiv:2001.08361, Tab. 1.
        """
        return 2 * self.n_heads * (self.qk_head_dim + self.v_dim)

    @property
    def kv_shard_heads(self) -> int:
        """Heads over which the KV cache can be sharded by tensor parallelism.

        GQA/MHA shard KV heads (replicated when ``tp > n_kv_heads``); MLA's
        latent is shared by all heads and is replicated on every TP rank.
        """
        return 1 if self.is_mla else self.n_kv_heads

    def check_tp(self, tp: int) -> None:
        """Raise if ``tp`` cannot split this model's heads evenly."""
        if self.n_heads % tp:
            raise ValueError(f"tp must divide n_heads={self.n_heads}, got {tp} "
                             f"(model '{self.name}')")
        kvh = self.kv_shard_heads
        if kvh % tp and tp % kvh:
            raise ValueError(f"tp must divide or be a multiple of n_kv_heads={kvh}, got {tp} "
                             f"(model '{self.name}')")

    # ---------------------------------------------------------------- input
    @classmethod
    def from_hf_config(cls, path, name: str | None = None) -> "Model":
        """Build a model from a Hugging Face ``config.json`` (offline)."""
        from .hf_config import model_kwargs_from_hf_config
        return cls(**model_kwargs_from_hf_config(path, name=name))
