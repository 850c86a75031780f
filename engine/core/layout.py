"""Kernel ABI: table columns, output rows and bound codes.

The Cython extension declares the same numbers as a ``cdef enum`` and
``tests/test_kernels.py`` checks they agree with this module.

Model table, one row per model, float64 (per-token counts summed over layers):

=================  ==========================================================
column             meaning [unit]
=================  ==========================================================
M_LAYERS           decoder layers L
M_HIDDEN           hidden size d
M_FLOP_LIN         2 x active matmul parameters in the layers [FLOP/token]
M_FLOP_HEAD        2 x d x vocab, the lm_head [FLOP/token]
M_ATTN_FULL        2 h (d_qk + d_v) x full-attention layers [FLOP/(token key)]
M_ATTN_WIN         same over sliding-window layers [FLOP/(token key)]
M_WINDOW           sliding window w [token] (0 = none)
M_KV_FULL          cached elements per token over full layers [element]
M_KV_WIN           cached elements per token over window layers [element]
M_KV_SPLIT         heads the KV cache shards over (1 for MLA) [head]
M_PARAMS_RESIDENT  every stored parameter [parameter]
M_PARAMS_READ      parameters read per forward pass except routed experts and
                   the untied input embedding table [parameter]
M_PARAMS_EXPERT    one routed expert summed over the MoE layers [parameter]
M_EXPERTS          routed experts E (0 = dense)
M_EXPERTS_ACTIVE   experts per token k
M_LOG_KEEP         log1p(-k/E): log of the chance one routing draw misses a
                   given expert (0 when dense; -inf when k = E)
=================  ==========================================================

Chip table, one row per chip, float64, *effective* rates (efficiency folded in):

===================  ========================================================
column               meaning [unit]
===================  ========================================================
C_INV_FLOPS + code   1 / (peak x compute_eff) for dtype ``code`` [s/FLOP]; NaN
                     when the chip cannot compute in that format
C_USABLE_BYTES       memory x (1 - reserve fraction) [byte]
C_INV_MEM_BW         1 / (bandwidth x memory_eff) [s/byte]
C_INV_LINK_BW        1 / (link bandwidth / 2 x network_eff) [s/byte], one
                     direction; NaN when unknown
C_LINK_LATENCY       per-message latency [s]
C_STEP_OVERHEAD      fixed time per forward pass [s]
C_HOURLY_USD         rental price per chip-hour [USD/h]; NaN when unknown
C_TDP_W              board power [W]; NaN when unknown
C_SCALEUP_DOMAIN     chips sharing the scale-up link (inf when unbounded)
C_INV_SCALEOUT_BW    1 / (scale-out bandwidth / 2 x network_eff) [s/byte]; NaN
                     when unknown
C_SCALEOUT_LATENCY   per-message latency of a scale-out transfer [s]
===================  ========================================================
"""
from __future__ import annotations

N_DTYPE_CODES = 7

# model table
M_LAYERS = 0
M_HIDDEN = 1
M_FLOP_LIN = 2
M_FLOP_HEAD = 3
M_ATTN_FULL = 4
M_ATTN_WIN = 5
M_WINDOW = 6
M_KV_FULL = 7
M_KV_WIN = 8
M_KV_SPLIT = 9
M_PARAMS_RESIDENT = 10
M_PARAMS_READ = 11
M_PARAMS_EXPERT = 12
M_EXPERTS = 13
M_EXPERTS_ACTIVE = 14
M_LOG_KEEP = 15
N_MODEL_COLS = 16

# chip table
C_INV_FLOPS = 0  # + dtype code, 7 columns
C_USABLE_BYTES = 7
C_INV_MEM_BW = 8
C_INV_LINK_BW = 9
C_LINK_LATENCY = 10
C_STEP_OVERHEAD = 11
C_HOURLY_USD = 12
C_TDP_W = 13
C_SCALEUP_DOMAIN = 14
C_INV_SCALEOUT_BW = 15
C_SCALEOUT_LATENCY = 16
N_CHIP_COLS = 17

# rows of the float output block ``out_f`` (shape (N_FLOAT_OUT, n))
O_TTFT = 0
O_TPOT = 1
O_E2E = 2
O_TOKENS_PER_S = 3
O_TOKENS_PER_S_PER_CHIP = 4
O_WEIGHT_BYTES = 5
O_KV_BYTES = 6
O_COST_PER_MTOK = 7
O_JOULES_PER_TOKEN = 8
N_FLOAT_OUT = 9

FLOAT_OUTPUTS = (
    "ttft_s", "tpot_s", "e2e_s", "output_tokens_per_s", "output_tokens_per_s_per_chip",
    "weight_bytes_per_chip", "kv_cache_bytes_per_chip", "cost_per_million_output_tokens_usd",
    "joules_per_output_token",
)

# rows of the int8 bound block ``out_bound`` (shape (2, n))
B_PREFILL = 0
B_DECODE = 1

# bound codes
BOUND_NONE = -1      # no step of that phase (one output token), or point does not fit
BOUND_COMPUTE = 0
BOUND_MEMORY = 1
BOUND_NETWORK = 2
BOUND_NAMES = {BOUND_NONE: "none", BOUND_COMPUTE: "compute", BOUND_MEMORY: "memory",
               BOUND_NETWORK: "network"}


#: grid axes in C order (the last varies fastest), as the grid kernels take them
GRID_AXES = ("model_idx", "chip_idx", "tp", "pp", "batch", "prompt", "output", "w_dt", "kv_dt",
             "act_dt")
N_GRID_AXES = 10


def as_dict() -> dict:
    """Every layout constant by name (compared with the Cython enum in tests)."""
    return {k: v for k, v in globals().items() if k.isupper() and isinstance(v, int)}
