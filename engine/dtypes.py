"""Numeric formats: storage bytes per element and the peak-FLOP/s column each computes on.

The integer codes are part of the kernel ABI (``engine.core.layout``): per-point
dtype arrays hold these codes and the kernels look up bytes and peak rates with
them.

References
----------
Micikevicius et al., "FP8 Formats for Deep Learning", arXiv:2209.05433 (2022).
OCP Microscaling Formats (MX) v1.0 specification (2023) for 4-bit formats;
block scales are not counted (they add < 3% at block size 32).
"""
from __future__ import annotations

#: dtype name -> (code, bytes per element [byte])
DTYPES: dict[str, tuple[int, float]] = {
    "fp32": (0, 4.0),
    "bf16": (1, 2.0),
    "fp16": (2, 2.0),
    "fp8": (3, 1.0),
    "int8": (4, 1.0),
    "int4": (5, 0.5),
    "fp4": (6, 0.5),
}
DTYPE_NAMES: tuple[str, ...] = tuple(sorted(DTYPES, key=lambda k: DTYPES[k][0]))
N_DTYPES = len(DTYPES)

#: dtype name -> Chip peak attribute used when *computing* in that format.
#: fp16 runs at the bf16 tensor rate on every catalogued part; int4 has no
#: dense-matmul peak in the catalog, so it is a storage-only (weight-only) format.
PEAK_FIELD: dict[str, str | None] = {
    "fp32": "peak_flops_fp32",
    "bf16": "peak_flops_bf16",
    "fp16": "peak_flops_bf16",
    "fp8": "peak_flops_fp8",
    "int8": "peak_ops_int8",
    "int4": None,
    "fp4": "peak_flops_fp4",
}


def dtype_code(name: str, field: str = "dtype") -> int:
    """Integer code of a dtype name, with an error naming ``field`` when unknown."""
    try:
        return DTYPES[name][0]
    except (KeyError, TypeError):
        raise ValueError(f"{field} must be one of {', '.join(DTYPE_NAMES)}, got {name!r}") from None


def dtype_bytes(name: str, field: str = "dtype") -> float:
    """Bytes per element of a dtype [byte]."""
    dtype_code(name, field)
    return DTYPES[name][1]


def bytes_table():
    """Bytes per element indexed by dtype code, as the kernels take it."""
    import numpy as np
    out = np.empty(N_DTYPES, dtype=np.float64)
    for code, nbytes in DTYPES.values():
        out[code] = nbytes
    return out
