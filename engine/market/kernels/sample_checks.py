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


def _describe(a):
    return f"{getattr(a, 'dtype', type(a).__name__)} {getattr(a, 'shape', '')}".rstrip()


def _array(a, name, dtype, ndim):
    if (not isinstance(a, np.ndarray) or a.dtype != dtype or a.ndim != ndim or not a.flags.c_contiguous
            or not a.flags.aligned):
        raise ValueError(f"{name} must be a C-contiguous {np.dtype(dtype).name} array with {ndim} "
                         f"dimension(s), got {_describe(a)}")
    return a


def _writeable(a, name):
    if not a.flags.writeable:
        raise ValueError(f"{name} must be writeable")


def _same_view(a, b):
    return (a.__array_interface__["data"][0] == b.__array_interface__["data"][0] and a.nbytes == b.nbytes)


def _disjoint(out, oname, others):
    for a, name in others:
        if np.shares_memory(out, a):
            raise ValueError(f"{oname} must not share memory with {name}")


def check_pair(a, b, an="u", bn="z"):
    """Check the arguments of ``scores(u, z)`` (or ``ndtri(p, z)``): C-contiguous
    float64 arrays of equal size, ``b`` writeable, ``b`` either ``a`` itself (in place:
    the same first element) or not overlapping it. Returns 1-d views of both."""
    for arr, name in ((a, an), (b, bn)):
        if (not isinstance(arr, np.ndarray) or arr.dtype != np.float64 or not arr.flags.c_contiguous
                or not arr.flags.aligned):
            raise ValueError(f"{name} must be a C-contiguous float64 array, got {_describe(arr)}")
    _writeable(b, bn)
    if a.size != b.size:
        raise ValueError(f"{an} and {bn} must have equal sizes, got {a.size} and {b.size}")
    if a.size and not _same_view(a, b) and np.shares_memory(a, b):
        raise ValueError(f"{an} and {bn} overlap partly: pass the same array (in place) or disjoint ones")
    return a.reshape(-1), b.reshape(-1)


def check_transform(z, u, cols, out, ocols, codes, params):
    """Check the arguments of ``transform(z, u, cols, out, ocols, codes, params)``: ``z``
    (n, n_normal) and ``u`` (n, n_uniform) float64; ``cols``, ``ocols``, ``codes`` (k,)
    int64; ``params`` (k, N_PARAMS) float64; ``out`` (n, N_INPUTS) float64, writeable,
    sharing no memory with an input; codes in [0, N_CODES); ``cols[j]`` a column of the
    stream code ``codes[j]`` reads (any value for FIXED); ``ocols`` distinct columns of
    ``out``. Raises ValueError naming the argument and its value."""
    _array(z, "z", np.float64, 2)
    _array(u, "u", np.float64, 2)
    _array(out, "out", np.float64, 2)
    _array(cols, "cols", np.int64, 1)
    _array(ocols, "ocols", np.int64, 1)
    _array(codes, "codes", np.int64, 1)
    _array(params, "params", np.float64, 2)
    n, k = out.shape[0], codes.shape[0]
    if out.shape[1] != N_INPUTS:
        raise ValueError(f"out must have shape (n, {N_INPUTS}), got {out.shape}")
    _writeable(out, "out")
    if z.shape[0] != n or u.shape[0] != n:
        raise ValueError(f"z and u must have {n} rows (out's), got {z.shape[0]} and {u.shape[0]}")
    if cols.shape[0] != k or ocols.shape[0] != k or params.shape != (k, N_PARAMS):
        raise ValueError(f"cols, ocols and params must have {k} rows (codes'), params {N_PARAMS} columns, got "
                         f"{cols.shape[0]}, {ocols.shape[0]} and {params.shape}")
    bad = np.flatnonzero((codes < 0) | (codes >= N_CODES))
    if bad.size:
        c = bad[0]
        raise ValueError(f"codes[{c}] must be in [0, {N_CODES - 1}], got {codes[c]}")
    bad = np.flatnonzero((ocols < 0) | (ocols >= N_INPUTS))
    if bad.size:
        c = bad[0]
        raise ValueError(f"ocols[{c}] must be in [0, {N_INPUTS - 1}], got {ocols[c]}")
    reads_u = np.isin(codes, U_CODES)
    width = np.where(reads_u, u.shape[1], z.shape[1])
    bad = np.flatnonzero((codes != CODES["FIXED"]) & ((cols < 0) | (cols >= width)))
    if bad.size:
        c = bad[0]
        stream = "u" if reads_u[c] else "z"
        raise ValueError(f"cols[{c}] must be in [0, {width[c] - 1}] (code {codes[c]} reads {stream}), "
                         f"got {cols[c]}")
    if np.unique(ocols).size != k:
        raise ValueError(f"ocols must be distinct, got {ocols.tolist()}")
    _disjoint(out, "out", ((z, "z"), (u, "u"), (cols, "cols"), (ocols, "ocols"), (codes, "codes"),
                           (params, "params")))


def check_correlate(z, cols, factor):
    """Check the arguments of ``correlate(z, cols, factor)``: ``z`` (n, n_normal)
    float64, writeable; ``cols`` (k,) distinct int64 columns of ``z``, k <= MAX_CORR;
    ``factor`` (k, k) float64; ``z`` shares no memory with ``cols`` or ``factor``."""
    _array(z, "z", np.float64, 2)
    _array(cols, "cols", np.int64, 1)
    _array(factor, "factor", np.float64, 2)
    k = cols.shape[0]
    _writeable(z, "z")
    if factor.shape != (k, k):
        raise ValueError(f"factor must have shape ({k}, {k}) (cols'), got {factor.shape}")
    if k > MAX_CORR:
        raise ValueError(f"at most {MAX_CORR} correlated columns, got {k}")
    bad = np.flatnonzero((cols < 0) | (cols >= z.shape[1]))
    if bad.size:
        c = bad[0]
        raise ValueError(f"cols[{c}] must be in [0, {z.shape[1] - 1}], got {cols[c]}")
    if np.unique(cols).size != k:
        raise ValueError(f"cols must be distinct, got {cols.tolist()}")
    _disjoint(z, "z", ((cols, "cols"), (factor, "factor")))
