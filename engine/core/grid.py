"""Flat-index arithmetic of Cartesian grids (C order: the last axis varies fastest)."""
from __future__ import annotations

import numpy as np


def axis_block(values: np.ndarray, inner: int, start: int, stop: int) -> np.ndarray:
    """``values[(f // inner) % len(values)]`` for flat indices f in [start, stop).

    ``inner`` is the product of the sizes of the axes after this one. Built
    from ``np.repeat``/``np.tile`` (memory-speed copies), never from a
    per-element division.
    """
    size = len(values)
    period = size * inner
    n = stop - start
    if period <= max(n, 1 << 16):
        pattern = np.repeat(values, inner)
        offset = start % period
        reps = -(-(offset + n) // period)
        return np.tile(pattern, reps)[offset:offset + n]
    q0, q1 = start // inner, (stop - 1) // inner
    qs = np.arange(q0, q1 + 1)
    counts = np.full(len(qs), inner, dtype=np.int64)
    counts[0] -= start - q0 * inner
    counts[-1] -= (q1 + 1) * inner - stop
    return np.repeat(values[qs % size], counts)


def inner_sizes(shape) -> list[int]:
    """Product of the sizes after each axis."""
    out, inner = [], 1
    for n in reversed(shape):
        out.append(inner)
        inner *= n
    return out[::-1]
