"""Kernel layer of the market Monte Carlo: array layout, NumPy reference, numba and
Cython backends behind an explicit registry (``get_backend``).

Nothing here imports the market definitions, scenarios, pandas or the CLI.
"""
from __future__ import annotations

from . import layout

__all__ = ["layout", "BACKENDS", "get_backend", "available_backends", "fastest_backend"]

BACKENDS = ("numba", "cython", "numpy")


class Backend:
    """The kernels of one backend.

    ``scores(u, z)`` turns the normal stream's uniforms ``u`` into standard normal
    scores ``z`` (``sample_kernel.scores_from_uniforms_numba``; ``z`` may be ``u``);
    ``transform(z, u, cols, out, ocols, codes, params)`` writes the closed-form inverse
    transforms of the input columns (``sample_kernel._fast_from_scores``);
    ``correlate(z, cols, factor)`` imposes the Gaussian copula in place
    (``sample_kernel._correlate_columns``); all three are bit-identical on every backend
    (the numpy backend uses the numba ones) and check their arguments first, on every
    backend, with the one validator ``sample_checks`` (``check_pair``,
    ``check_transform``, ``check_correlate``);
    ``values(x, yp, out, n_threads)`` writes per-draw outputs;
    ``summaries(x, yp, hist, span, sums, nonfinite, clamped, ev_series, ev_op, ev_threshold, ev_count)``
    accumulates streaming summaries (``hist`` int64 or uint16 counters) and returns the
    number of draws with a non-finite output (``reference.market_summaries_numpy``).
    """

    def __init__(self, name, values, summaries, scores, transform, correlate):
        self.name = name
        self.values = values
        self.summaries = summaries
        self.scores = scores
        self.transform = transform
        self.correlate = correlate

    def __repr__(self):
        return f"Backend({self.name!r})"


def _numpy():
    from .reference import market_summaries_numpy, market_values_numpy
    from .sample_kernel import correlate_numba, scores_from_uniforms_numba, transform_numba

    def values(x, yp, out, n_threads=1):
        return market_values_numpy(x, yp, out)
    # the numba sampling kernels: the same draws as the compiled backends (the NumPy/SciPy
    # references are sample_kernel.scores_from_uniforms_numpy and Distribution.from_normal)
    return Backend("numpy", values, market_summaries_numpy, scores_from_uniforms_numba, transform_numba,
                   correlate_numba)


def _numba():
    from .numba_kernel import market_summaries_numba, market_values_numba
    from .sample_kernel import correlate_numba, scores_from_uniforms_numba, transform_numba
    return Backend("numba", market_values_numba, market_summaries_numba, scores_from_uniforms_numba,
                   transform_numba, correlate_numba)


#: what the cython backend reads from the extension (an in-place build older than one of
#: them lacks it: rebuild)
_CYTHON_NEEDS = ("market_values", "market_summaries", "sample_scores", "sample_transform", "sample_correlate")


def _cython_module():
    """``engine._ext._market``, or ValueError (not built, or built before one of
    ``_CYTHON_NEEDS`` existed)."""
    try:
        from engine._ext import _market
    except ImportError as exc:  # not built
        raise ValueError("backend 'cython' is not available: build it with "
                         "`python setup.py build_ext --inplace` "
                         f"({exc})") from None
    missing = [a for a in _CYTHON_NEEDS if not hasattr(_market, a)]
    if missing:
        raise ValueError("backend 'cython' is not available: the extension was built from older sources "
                         f"(it lacks {', '.join(missing)}); rebuild it with `python setup.py build_ext --inplace`")
    return _market


def _cython():
    _market = _cython_module()
    from .sample_checks import check_correlate, check_pair, check_transform

    # the one validator of every backend first (the wrappers' own checks are a second line)
    def scores(u, z):
        check_pair(u, z, "u", "z")
        return _market.sample_scores(u, z)

    def transform(z, u, cols, out, ocols, codes, params):
        check_transform(z, u, cols, out, ocols, codes, params)
        return _market.sample_transform(z, u, cols, out, ocols, codes, params)

    def correlate(z, cols, factor):
        check_correlate(z, cols, factor)
        return _market.sample_correlate(z, cols, factor)
    return Backend("cython", _market.market_values, _market.market_summaries, scores, transform, correlate)


_FACTORIES = {"numba": _numba, "cython": _cython, "numpy": _numpy}
_CACHE: dict = {}


def fastest_backend() -> str:
    """The fastest backend in this installation: "cython" where the extension is built
    (its sampling, kernel and summaries stages measured about twice numba's draws/s,
    docs/benchmarks.md), else "numba" (also when the extension is a stale build that
    lacks a kernel). numba and Cython give the same bits (numpy: docs/reproducibility.md)."""
    try:
        _cython_module()
    except ValueError:
        return "numba"
    return "cython"


def get_backend(name: str | None) -> Backend:
    """The kernels of backend ``name`` (one of ``BACKENDS``; ``None``: ``fastest_backend()``)."""
    if name is None:
        name = fastest_backend()
    if name not in _FACTORIES:
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
    if name not in _CACHE:
        _CACHE[name] = _FACTORIES[name]()
    return _CACHE[name]


def available_backends() -> list[str]:
    """Backends importable in this installation."""
    out = []
    for name in BACKENDS:
        try:
            get_backend(name)
            out.append(name)
        except ValueError:
            pass
    return out
