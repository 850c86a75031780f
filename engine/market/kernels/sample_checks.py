"""The stream-code table of the sampling kernels and the one validator of their
arguments, for every backend.

Design
------
``Backend.scores``, ``Backend.transform`` and ``Backend.correlate`` run compiled loops
with bounds checks off (numba ``boundscheck=False``, C), so every argument is checked
here, before any of them runs, whatever the backend: dtype, C-contiguity, shapes,
writeability of the outputs, code range, column indices inside the stream each code
reads, distinct output columns, the copula's size limit, and memory overlap (an
output that partly overlaps an input would be read after it is written, in an order
that differs between backends). The Cython wrappers in ``ext/_market.pyx`` keep
their own shape and range checks as a second line (the extension may not import the
market package, tests/test_layers.py), with the C copy of the code table
(``_market.sample_codes()``), which tests/test_market_sample.py checks against this one.

The table: code ``c`` of column ``j`` of ``transform`` reads a normal score
``z[:, cols[j]]`` or, for ``U_CODES``, a uniform variate ``u[:, cols[j]]`` (``FIXED``
reads nothing) and writes ``out[:, ocols[j]]`` with ``params[j]`` (``N_PARAMS`` per
column); see ``sample_kernel._fast_from_scores``.
"""
from __future__ import annotations

import numpy as np

from .layout import N_INPUTS

__all__ = ["CODES", "U_CODES", "U_CODE_MASK", "N_CODES", "N_PARAMS", "MAX_CORR", "check_pair", "check_transform",
           "check_correlate"]

#: stream codes of ``transform`` by name (the C copy: enum MS_* of ext/market_sample_simd.h)
CODES = {
    "FIXED": 0, "NORMAL": 1, "LOGNORMAL": 2, "UNIFORM": 3, "TRIANGULAR": 4,
    # uniform and triangular sampled from a uniform variate u (no normal score)
    "U_UNIFORM": 5, "U_TRIANGULAR": 6,
    # normal and lognormal truncated to [lo, hi], from a normal score
    "TRUNC_NORMAL": 7, "TRUNC_LOGNORMAL": 8,
    # the same from a uniform variate u (no normal CDF)
    "U_TRUNC_NORMAL": 9, "U_TRUNC_LOGNORMAL": 10,
}
#: number of codes (0 .. N_CODES - 1)
N_CODES = len(CODES)
#: codes that read a uniform variate (the others but FIXED read a normal score)
U_CODES = tuple(c for name, c in CODES.items() if name.startswith("U_"))
#: bit c set: code c reads a uniform variate (the kernels' test, a compile-time constant)
U_CODE_MASK = sum(1 << c for c in U_CODES)
#: parameters per column of ``transform`` (unused ones are 0)
N_PARAMS = 6
#: most columns of the Gaussian copula (the C kernel's stack buffer, MS_MAX_CORR)
MAX_CORR = 64

assert sorted(CODES.values()) == list(range(N_CODES))
