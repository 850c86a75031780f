"""Declared parameter domains: one place for units, bounds and typical values.

Each :class:`Domain` is used three times: to validate user input with a message
that names the field and the value, to document the parameter, and to generate
hypothesis strategies in the tests (``tests/strategies.py``). This is the
scipy.stats habit of declaring each parameter's support once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Domain:
    """Support of one scalar parameter.

    Parameters
    ----------
    name : str
        Field name as users write it.
    unit : str
        Canonical unit, e.g. ``"FLOP/s"``, ``"byte"``, ``"s"``, ``"USD"``, ``"1"``.
    low, high : float
        Bounds of the support.
    low_open, high_open : bool
        Whether the bound itself is excluded.
    integer : bool
        Whether only integers are allowed.
    typical : tuple of float
        (low, high) range of realistic values, used for test strategies.
    description : str
        One line for docs.
    """

    name: str
    unit: str
    low: float = 0.0
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    typical: tuple[float, float] = (0.0, 1.0)
    description: str = ""

    def named(self, name: str) -> "Domain":
        """The same support under another field name (for messages)."""
        from dataclasses import replace
        return self if name == self.name else replace(self, name=name)

    def describe(self) -> str:
        lo = "(" if self.low_open else "["
        hi = ")" if self.high_open or math.isinf(self.high) else "]"
        kind = "integer" if self.integer else "real"
        return f"{self.name} [{self.unit}]: {kind} in {lo}{self.low:g}, {self.high:g}{hi}"

    def check(self, value, context: str = "") -> float | int:
        """Validate one value; return it as float (or int when ``integer``).

        Raises
        ------
        ValueError
            With a one-line message naming the field, the value and ``context``.
        """
        where = f" ({context})" if context else ""
        if isinstance(value, bool) or value is None:
            raise ValueError(f"{self.name} must be a number, got {value!r}{where}")
        try:
            x = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{self.name} must be a number, got {value!r}{where}") from None
        if not math.isfinite(x):
            raise ValueError(f"{self.name} must be finite, got {value!r}{where}")
        if self.integer:
            if x != math.floor(x):
                raise ValueError(f"{self.name} must be an integer, got {value!r}{where}")
        if (x < self.low) or (self.low_open and x == self.low):
            op = ">" if self.low_open else ">="
            raise ValueError(f"{self.name} must be {op} {self.low:g}, got {value!r}{where}")
        if (x > self.high) or (self.high_open and x == self.high):
            op = "<" if self.high_open else "<="
            raise ValueError(f"{self.name} must be {op} {self.high:g}, got {value!r}{where}")
        return int(x) if self.integer else x


def _pos(name, unit, typical, description, integer=False, high=math.inf):
    return Domain(name, unit, 0.0, high, low_open=True, integer=integer,
                  typical=typical, description=description)


# Workload and deployment (per scenario point)
BATCH = Domain("batch", "sequence", 1, 2**31 - 1, integer=True, typical=(1, 512),
               description="Concurrent sequences decoded together.")
PROMPT_TOKENS = Domain("prompt_tokens", "token", 1, 2**31 - 1, integer=True, typical=(1, 32768),
                       description="Input (prompt) length per sequence.")
OUTPUT_TOKENS = Domain("output_tokens", "token", 1, 2**31 - 1, integer=True, typical=(1, 8192),
                       description="Generated tokens per sequence, the first one from prefill.")
TP = Domain("tp", "chip", 1, 4096, integer=True, typical=(1, 8),
            description="Tensor-parallel degree (chips sharing every layer).")
PP = Domain("pp", "chip", 1, 4096, integer=True, typical=(1, 4),
            description="Pipeline-parallel degree (stages of consecutive layers).")

# Chip figures (canonical units)
PEAK_FLOPS = _pos("peak_flops", "FLOP/s", (1e12, 1e16), "Dense peak matmul rate for a format.")
MEMORY_BYTES = _pos("memory_bytes", "byte", (1e9, 3e11), "Device memory capacity.")
MEMORY_BANDWIDTH = _pos("memory_bandwidth", "byte/s", (1e11, 1e13), "Device memory bandwidth.")
SRAM_BYTES = Domain("sram_bytes", "byte", 0.0, math.inf, typical=(0, 1e9),
                    description="On-chip SRAM capacity.")
SRAM_BANDWIDTH = _pos("sram_bandwidth", "byte/s", (1e12, 1e14), "On-chip SRAM bandwidth.")
LINK_BANDWIDTH = _pos("link_bandwidth", "byte/s", (1e10, 2e12),
                      "Scale-up interconnect bandwidth per chip, bidirectional total.")
LINK_LATENCY = Domain("link_latency", "s", 0.0, 1.0, typical=(1e-6, 2e-5),
                      description="Per-message latency of one scale-up transfer.")
SCALEUP_DOMAIN = _pos("scaleup_domain", "chip", (2, 256),
                      "Chips that share the scale-up interconnect (an HGX node: 8).", integer=True)
SCALEOUT_BANDWIDTH = _pos("scaleout_bandwidth", "byte/s", (1e10, 2e11),
                          "Scale-out network bandwidth per chip, bidirectional total.")
TDP = _pos("tdp", "W", (50, 1500), "Board power (thermal design power).")
PRICE = _pos("price", "USD", (1e3, 1e5), "Purchase price per chip.")
HOURLY_PRICE = _pos("hourly_price", "USD/h", (0.3, 10), "Rental price per chip-hour.")
EFFICIENCY = Domain("efficiency", "1", 0.0, 1.0, low_open=True, typical=(0.3, 1.0),
                    description="Achieved fraction of a peak rate.")
STEP_OVERHEAD = Domain("step_overhead", "s", 0.0, 1.0, typical=(0.0, 1e-3),
                       description="Fixed per-forward-pass overhead (launch, scheduling).")
RESERVE_FRACTION = Domain("memory_reserve_fraction", "1", 0.0, 1.0, high_open=True,
                          typical=(0.0, 0.2),
                          description="Share of memory kept for activations and workspace.")

# Model dimensions
N_LAYERS = _pos("n_layers", "layer", (1, 128), "Decoder layers.", integer=True)
HIDDEN = _pos("hidden_size", "1", (256, 16384), "Model width.", integer=True)
HEADS = _pos("n_heads", "head", (1, 128), "Query heads.", integer=True)
KV_HEADS = _pos("n_kv_heads", "head", (1, 128), "Key/value heads (MHA = heads, MQA = 1).",
                integer=True)
HEAD_DIM = _pos("head_dim", "1", (32, 256), "Per-head dimension.", integer=True)
FFN = Domain("ffn_size", "1", 0, math.inf, integer=True, typical=(1024, 65536),
             description="Dense FFN inner size (0 when every layer is MoE).")
VOCAB = _pos("vocab_size", "token", (1000, 262144), "Vocabulary size.", integer=True)
COUNT = Domain("count", "1", 0, math.inf, integer=True, typical=(0, 256),
               description="A non-negative integer count.")
