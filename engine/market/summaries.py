"""Streaming summaries: log-linear histograms, sums, non-finite and event counts.

Design
------
The fused kernels (``kernels``) add every draw's outputs into integer histogram
counts whose bins are the top bits of the IEEE-754 representation (see
``kernels.layout``). Integer counts merge exactly in any order, so the result
does not depend on threads or chunking; sums are kept per RNG block and added
in block order for the same reason.

Error bound of the quantiles
----------------------------
``quantile(q)`` finds the bin holding the order statistic ``x_(k)``,
``k = ceil(q N)`` (the ``inverted_cdf`` definition of Hyndman & Fan 1996,
definition 1), and interpolates linearly inside it. Hence

    |Q_hat(q) - x_(k)| <= width(bin) <= 2^-HIST_MANTISSA_BITS |x_(k)|   (0.78 %)

for ``2^HIST_EXP_MIN <= |x_(k)| < 2^HIST_EXP_MAX``; below that range the estimate is
0 (absolute error < 2^-128); above it the bin is clamped and ``clamped`` counts it.
Memory: ``HIST_BINS`` int64 counters per series (512 KiB), independent of draws,
plus uint16 staging counters per worker thread (128 KiB per series, only the pages
holding occupied bins are touched); see :class:`Accumulator`.

References
----------
Hyndman, R. J., Fan, Y. (1996). Sample quantiles in statistical packages.
*Am. Stat.* 50(4), 361-365.
Tene, G. (2012). HdrHistogram: a high dynamic range histogram.
http://hdrhistogram.org/
"""
from __future__ import annotations

import mmap

import numba as nb
import numpy as np

from .kernels import layout as L

__all__ = ["Accumulator", "bin_edges", "hist_quantiles", "RELATIVE_ERROR_BOUND"]

#: Documented bound on |quantile - order statistic| / |order statistic|.
RELATIVE_ERROR_BOUND = 2.0 ** -L.HIST_MANTISSA_BITS


def bin_edges() -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper edge of every histogram bin [unit of the series]."""
    m = np.arange(L.HIST_HALF, dtype=np.uint64)
    keys = np.uint64(L.HIST_KEY_LO) + m
    lo_pos = (keys << np.uint64(L.HIST_SHIFT)).view(np.float64)
    hi_pos = ((keys + np.uint64(1)) << np.uint64(L.HIST_SHIFT)).view(np.float64)
    lo = np.empty(L.HIST_BINS)
    hi = np.empty(L.HIST_BINS)
    lo[L.HIST_ZERO] = hi[L.HIST_ZERO] = 0.0
    lo[L.HIST_ZERO + 1:] = lo_pos
    hi[L.HIST_ZERO + 1:] = hi_pos
    lo[:L.HIST_ZERO] = -hi_pos[::-1]
    hi[:L.HIST_ZERO] = -lo_pos[::-1]
    return lo, hi


_EDGES = None


def hist_quantiles(hist: np.ndarray, probs, span: np.ndarray | None = None) -> np.ndarray:
    """Quantiles of each histogram row.

    Parameters
    ----------
    hist : ndarray, shape (n_series, HIST_BINS), int64
    probs : sequence of float in [0, 1]
    span : ndarray, shape (n_series, 2), optional
        Lowest and highest occupied bin of each row (``Accumulator.span``); only that
        range is searched (the same occupied bins, without reading every row whole).

    Returns
    -------
    ndarray, shape (n_series, len(probs)); NaN for an empty row.
    """
    global _EDGES
    if _EDGES is None:
        _EDGES = bin_edges()
    lo, hi = _EDGES
    probs = np.asarray(probs, float)
    res = np.full((hist.shape[0], probs.size), np.nan)
    for s in range(hist.shape[0]):
        # only occupied bins: the bin holding rank r > 0 is always occupied, so this
        # equals the search over all HIST_BINS cumulative counts, without a
        # (n_series, HIST_BINS) cumulative array
        b0 = 0
        row = hist[s]
        if span is not None:
            b0, b1 = int(span[s, 0]), int(span[s, 1])
            if b1 < b0:
                continue
            row = row[b0:b1 + 1]
        occ = np.flatnonzero(row) + b0
        if occ.size == 0:
            continue
        counts = hist[s, occ]
        cum = np.cumsum(counts)
        n = cum[-1]
        r = np.maximum(probs * n, 0.5)  # rank; q=0 maps into the first occupied bin
        k = np.searchsorted(cum, r, side="left")
        k = np.minimum(k, occ.size - 1)
        j = occ[k]
        before = np.where(k > 0, cum[k - 1], 0)
        cnt = np.maximum(counts[k], 1)
        frac = np.clip((r - before) / cnt, 0.0, 1.0)
        res[s] = lo[j] + frac * (hi[j] - lo[j])
    return res


def _zeros_small_pages(shape, dtype) -> np.ndarray:
    """Zeroed array in a private anonymous memory map whose pages the OS zero-fills on
    first touch, 4 KiB at a time. ``np.zeros`` of these (n_series, HIST_BINS) arrays
    (122 MB int64, 30 MB uint16 for 13 years) asks for transparent huge pages
    (``madvise``), so the first count into each series' row zeroed a whole 2 MiB page:
    the whole array, 0.15 s for the int64 one at the first flush (measured), where
    only the few KiB around each series' occupied bins are ever touched. The map is
    private (copy-on-write in a forked child, never shared with it) and advised
    ``MADV_NOHUGEPAGE`` where the platform has it (Linux ``madvise(2)``)."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    if nbytes == 0:
        return np.zeros(shape, dtype)
    private = getattr(mmap, "MAP_PRIVATE", None)
    m = mmap.mmap(-1, nbytes) if private is None else mmap.mmap(-1, nbytes, flags=private)
    no_huge = getattr(mmap, "MADV_NOHUGEPAGE", None)
    if no_huge is not None:
        m.madvise(no_huge)
    return np.frombuffer(m, dtype=dtype).reshape(shape)


@nb.njit(nogil=True, cache=True)
def _flush_counts(src, src_span, dst, dst_span):
    """``dst[s, lo:hi+1] += src[s, lo:hi+1]`` and zero ``src`` there, over each series'
    span ``src_span[s] = (lo, hi)`` (empty when hi < lo), widening ``dst_span``.
    Exact integer adds, without the GIL (the driver holds a lock on ``dst``)."""
    for s in range(src.shape[0]):
        lo = src_span[s, 0]
        hi = src_span[s, 1]
        if hi < lo:
            continue
        d = dst[s]
        r = src[s]
        for j in range(lo, hi + 1):
            d[j] += r[j]
            r[j] = 0
        if lo < dst_span[s, 0]:
            dst_span[s, 0] = lo
        if hi > dst_span[s, 1]:
            dst_span[s, 1] = hi


class Accumulator:
    """Histogram counts and tallies of ``n_series`` series and ``n_events`` events.

    ``dtype=np.int64`` holds a run's totals. ``dtype=np.uint16`` is a worker's
    *staging* accumulator: its counters take a quarter of the memory, so the hot
    counter lines of all 234 series of the default (~0.7 MB instead of ~2.7 MB) fit
    in a core's L2 cache; ``flush_into`` adds them exactly into an int64 accumulator
    before any counter could overflow (``capacity`` draws at most in between; the
    driver checks ``pending``). ``span[s]`` is the lowest and highest bin counted in
    series ``s`` since the last flush, so a flush touches only those bins.
    """

    def __init__(self, n_series: int, n_events: int, dtype=np.int64):
        dtype = np.dtype(dtype)
        if dtype not in (np.dtype(np.int64), np.dtype(np.uint16)):
            raise ValueError(f"histogram counters must be int64 or uint16, got {dtype}")
        self.hist = _zeros_small_pages((n_series, L.HIST_BINS), dtype)
        self.span = np.empty((n_series, 2), dtype=np.int64)
        self._reset_span()
        self.nonfinite = np.zeros(n_series, dtype=np.int64)
        self.clamped = np.zeros(n_series, dtype=np.int64)
        self.ev_count = np.zeros(n_events, dtype=np.int64)
        self.bad_draws = 0
        self.n_draws = 0
        #: draws counted into ``hist`` since the last flush
        self.pending = 0
        #: most draws ``hist`` can take between flushes without overflowing a counter
        self.capacity = int(np.iinfo(dtype).max)

    def _reset_span(self):
        self.span[:, 0] = L.HIST_BINS
        self.span[:, 1] = -1

    def flush_into(self, other: "Accumulator") -> None:
        """Add this accumulator's histogram counts into ``other``'s (exact integer adds
        over each series' span) and zero them; tallies are not touched."""
        _flush_counts(self.hist, self.span, other.hist, other.span)
        self._reset_span()
        self.pending = 0

    def merge(self, other: "Accumulator") -> None:
        """Add ``other``'s counts and tallies into this one (``other``'s histogram is flushed)."""
        other.flush_into(self)
        self.nonfinite += other.nonfinite
        self.clamped += other.clamped
        self.ev_count += other.ev_count
        self.bad_draws += other.bad_draws
        self.n_draws += other.n_draws
