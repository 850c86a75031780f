"""Accelerator definitions: a thin, validated holder of sourced figures.

All figures are stored in canonical units (FLOP/s, byte, byte/s, s, W, USD,
USD/h). Catalog files are written in the units of spec sheets (TFLOP/s, GB,
TB/s, GB/s, us) and converted once, at load time, in :mod:`engine.catalog`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from . import domains as D
from .dtypes import DTYPE_NAMES, PEAK_FIELD

KINDS = ("training", "inference", "both", "edge")

#: Default share of device memory held back for activations, CUDA/runtime
#: context and workspace. vLLM's default ``gpu_memory_utilization=0.9`` leaves
#: the same 10% (vLLM engine arguments documentation).
DEFAULT_MEMORY_RESERVE_FRACTION = 0.10

_PEAKS = ("peak_flops_fp32", "peak_flops_bf16", "peak_flops_fp8", "peak_ops_int8", "peak_flops_fp4")
_FIGURE_DOMAINS = {
    **{p: D.PEAK_FLOPS for p in _PEAKS},
    "memory_bytes": D.MEMORY_BYTES,
    "memory_bandwidth": D.MEMORY_BANDWIDTH,
    "sram_bytes": D.SRAM_BYTES,
    "sram_bandwidth": D.SRAM_BANDWIDTH,
    "link_bandwidth": D.LINK_BANDWIDTH,
    "link_latency": D.LINK_LATENCY,
    "scaleup_domain": D.SCALEUP_DOMAIN,
    "scaleout_bandwidth": D.SCALEOUT_BANDWIDTH,
    "scaleout_latency": D.LINK_LATENCY,
    "tdp": D.TDP,
    "price": D.PRICE,
    "hourly_price": D.HOURLY_PRICE,
    "compute_efficiency": D.EFFICIENCY,
    "memory_efficiency": D.EFFICIENCY,
    "network_efficiency": D.EFFICIENCY,
    "step_overhead": D.STEP_OVERHEAD,
    "memory_reserve_fraction": D.RESERVE_FRACTION,
}


@dataclass(frozen=True)
class Chip:
    """One accelerator (or one addressable device of a system).

    Parameters
    ----------
    name : str
        Catalog name, lower-case and hyphenated (``"h100-sxm"``).
    memory_bytes : float or None
        Device memory capacity [byte]. For SRAM-only parts this is the SRAM.
        ``None`` when no source gives it (the chip is listed, not estimated).
    memory_bandwidth : float or None
        Device memory bandwidth [byte/s].
    peak_flops_fp32, peak_flops_bf16, peak_flops_fp8, peak_ops_int8, peak_flops_fp4 : float or None
        Dense (no 2:4 sparsity) peak rates [FLOP/s or OP/s]; ``None`` when the
        format is not supported or no source gives it.
    sram_bytes, sram_bandwidth : float or None
        On-chip SRAM capacity [byte] and bandwidth [byte/s].
    link_bandwidth : float or None
        Scale-up interconnect bandwidth per chip, bidirectional total [byte/s]
        (NVLink 4: 900 GB/s). Collectives use half of it per direction.
    link_latency : float
        Per-message latency of one scale-up transfer [s].
    scaleup_domain : int or None
        Chips that share the scale-up link (8 in an HGX node, 72 in an NVL72
        rack); ``None`` = no sourced limit (tensor parallelism of any degree
        uses the scale-up link).
    scaleout_bandwidth : float or None
        Network bandwidth per chip between scale-up domains, bidirectional
        total [byte/s] (e.g. one 400 Gb/s NIC per GPU = 100e9).
    scaleout_latency : float
        Per-message latency of one scale-out transfer [s].
    tdp : float or None
        Board power [W].
    price, hourly_price : float or None
        Purchase price [USD] and rental price per chip-hour [USD/h].
    compute_efficiency, memory_efficiency, network_efficiency : float
        Achieved fraction of peak compute, memory bandwidth and link bandwidth
        (1.0 = ideal roofline).
    step_overhead : float
        Fixed time added to every forward pass [s] (kernel launch, scheduler).
    memory_reserve_fraction : float
        Share of ``memory_bytes`` not available to weights and KV cache.
    sources : dict
        Field name -> source (URL or citation) for every figure given.
    estimates : frozenset
        Fields whose value is an estimate rather than a published figure.
    """

    name: str
    memory_bytes: float | None = None
    memory_bandwidth: float | None = None
    peak_flops_fp32: float | None = None
    peak_flops_bf16: float | None = None
    peak_flops_fp8: float | None = None
    peak_ops_int8: float | None = None
    peak_flops_fp4: float | None = None
    sram_bytes: float | None = None
    sram_bandwidth: float | None = None
    link_bandwidth: float | None = None
    link_latency: float = 0.0
    scaleup_domain: float | None = None
    scaleout_bandwidth: float | None = None
    scaleout_latency: float = 0.0
    tdp: float | None = None
    price: float | None = None
    hourly_price: float | None = None
    compute_efficiency: float = 1.0
    memory_efficiency: float = 1.0
    network_efficiency: float = 1.0
    step_overhead: float = 0.0
    memory_reserve_fraction: float = DEFAULT_MEMORY_RESERVE_FRACTION
    full_name: str = ""
    vendor: str = ""
    kind: str = "both"
    year: int | None = None
    memory_type: str = ""
    source_quality: str = ""
    notes: str = ""
    sources: dict = field(default_factory=dict, compare=False, hash=False)
    estimates: frozenset = field(default_factory=frozenset, compare=False, hash=False)

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"chip name must be a non-empty string, got {self.name!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r} "
                             f"(chip '{self.name}')")
        for fname, dom in _FIGURE_DOMAINS.items():
            v = getattr(self, fname)
            if v is None:
                continue
            object.__setattr__(self, fname,
                               float(dom.named(fname).check(v, context=f"chip '{self.name}'")))

    def missing_for_estimates(self) -> list[str]:
        """Figures an estimate needs that this chip lacks (no source gives them)."""
        missing = [f for f in ("memory_bytes", "memory_bandwidth") if getattr(self, f) is None]
        if all(getattr(self, p) is None for p in _PEAKS):
            missing.append("peak_flops (any format)")
        return missing

    def peak_flops(self, dtype: str) -> float | None:
        """Dense peak rate when computing in ``dtype`` [FLOP/s], ``None`` if unsupported."""
        if dtype not in PEAK_FIELD:
            raise ValueError(f"dtype must be one of {', '.join(DTYPE_NAMES)}, got {dtype!r}")
        attr = PEAK_FIELD[dtype]
        return None if attr is None else getattr(self, attr)

    def supported_compute_dtypes(self) -> tuple[str, ...]:
        return tuple(d for d in DTYPE_NAMES if self.peak_flops(d) is not None)

    def with_efficiency(self, compute=None, memory=None, network=None, step_overhead=None) -> "Chip":
        """Copy with efficiency factors replaced (``None`` keeps the current value)."""
        kw = {}
        if compute is not None:
            kw["compute_efficiency"] = compute
        if memory is not None:
            kw["memory_efficiency"] = memory
        if network is not None:
            kw["network_efficiency"] = network
        if step_overhead is not None:
            kw["step_overhead"] = step_overhead
        return replace(self, **kw)

    def figures(self) -> dict:
        """Every numeric figure with its source, for ``infercast chips show``."""
        out = {}
        for f in fields(self):
            if f.name in ("sources", "estimates"):
                continue
            out[f.name] = {"value": getattr(self, f.name), "source": self.sources.get(f.name, ""),
                           "estimate": f.name in self.estimates}
        return out
