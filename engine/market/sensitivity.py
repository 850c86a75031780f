"""Sensitivity analysis: rank-correlation tornado and Sobol indices (Saltelli design).

References
----------
Saltelli, A. et al. (2010). Variance based sensitivity analysis of model output.
Design and estimator for the total sensitivity index. *Comput. Phys. Commun.*
181, 259-270 (first-order estimator, their Table 2 (b), and Jansen's total-effect
estimator (f)).
Ishigami, T., Homma, T. (1990). An importance quantification technique in
uncertainty analysis for computer models. ISUMA '90, 398-403.
Efron, B., Tibshirani, R. (1993). *An Introduction to the Bootstrap*, ch. 13
(percentile intervals).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .distributions import Distribution
from .kernels import get_backend
from .kernels import layout as L
from .model import MarketModel
from .simulate import sample_values

__all__ = ["rank_correlations", "tornado", "SobolResult", "sobol_indices", "market_sobol", "ishigami",
           "ISHIGAMI_EXACT"]


def _ranks(a: np.ndarray) -> np.ndarray:
    r = np.empty(a.shape[0])
    r[np.argsort(a, kind="stable")] = np.arange(a.shape[0], dtype=float)
    return r


def rank_correlations(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman correlation of each column of ``x`` (n, k) with ``y`` (n,) [1];
    rows where ``y`` is not finite are dropped, constant columns give 0."""
    ok = np.isfinite(y)
    x = x[ok]
    y = y[ok]
    ry = _ranks(y)
    ry -= ry.mean()
    out = np.zeros(x.shape[1])
    sy = math.sqrt(float(ry @ ry))
    for j in range(x.shape[1]):
        if np.ptp(x[:, j]) == 0 or sy == 0:
            continue
        rx = _ranks(x[:, j])
        rx -= rx.mean()
        out[j] = float(rx @ ry) / (math.sqrt(float(rx @ rx)) * sy)
    return out


def tornado(model: MarketModel, output: str, year: int, draws: int = 20_000, seed: int = 0,
            backend: str | None = None, top: int | None = 12) -> list[tuple[str, float]]:
    """Inputs ranked by |Spearman correlation| with ``output`` in ``year``.

    Uses the first ``draws`` draws of ``seed`` (the forecast's own stream, with the
    scenario's correlation), so correlated inputs share credit.

    Returns
    -------
    list of (input name, rank correlation [1]), largest magnitude first.
    """
    s = model.series_index(output, year)
    x, vals = sample_values(model, draws, seed, backend)
    y = vals.reshape(draws, -1)[:, s]
    names = list(L.INPUT_NAMES)
    rc = rank_correlations(x, y)
    pairs = [(n, float(r)) for n, r, d in zip(names, rc, model.inputs.values()) if d.is_random]
    pairs.sort(key=lambda p: -abs(p[1]))
    return pairs[:top] if top else pairs


@dataclass
class SobolResult:
    """First-order ``S1`` and total ``ST`` indices with bootstrap percentile intervals."""

    names: list
    S1: np.ndarray
    ST: np.ndarray
    S1_ci: np.ndarray  # (k, 2)
    ST_ci: np.ndarray  # (k, 2)
    n_base: int
    n_evaluations: int
    confidence: float

    def table(self):
        import pandas as pd
        return pd.DataFrame({"input": self.names, "S1": self.S1, "S1_lo": self.S1_ci[:, 0], "S1_hi": self.S1_ci[:, 1],
                             "ST": self.ST, "ST_lo": self.ST_ci[:, 0], "ST_hi": self.ST_ci[:, 1]})


def _sobol_estimates(fA, fB, fAB):
    """Saltelli (2010) S1 and Jansen ST from f(A) (n,), f(B) (n,), f(A_B^i) (k, n).

    Outputs are centred first (as SALib does): the estimators' expectations do not
    change, but the variance of the S1 estimator drops when the mean is large."""
    c = 0.5 * (fA.mean() + fB.mean())
    fA = fA - c
    fB = fB - c
    fAB = fAB - c
    var = np.var(np.concatenate([fA, fB]), ddof=1)
    s1 = np.mean(fB[None, :] * (fAB - fA[None, :]), axis=1) / var
    st = 0.5 * np.mean((fA[None, :] - fAB) ** 2, axis=1) / var
    return s1, st


def sobol_indices(func: Callable[[np.ndarray], np.ndarray], dists: Sequence[Distribution], n: int = 4096,
                  seed: int = 0, n_boot: int = 200, confidence: float = 0.95, names: Sequence[str] | None = None
                  ) -> SobolResult:
    """Sobol first-order and total indices of ``func`` over independent inputs.

    Parameters
    ----------
    func : callable
        Maps an input matrix (m, k) to outputs (m,).
    dists : sequence of Distribution
        Independent inputs (Sobol indices assume independence; a scenario's rank
        correlation is ignored here).
    n : int
        Base sample size; ``n (k + 2)`` evaluations.
    n_boot : int
        Bootstrap resamples of the ``n`` rows for the percentile intervals.
    """
    k = len(dists)
    if k == 0:
        raise ValueError("sobol_indices needs at least one input")
    if n < 16:
        raise ValueError(f"n must be >= 16, got {n}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))
    z = rng.standard_normal((2 * n, k))
    X = np.empty((2 * n, k))
    for j, d in enumerate(dists):
        X[:, j] = d.from_normal(z[:, j])
    A = X[:n]
    B = X[n:]
    AB = np.repeat(A[None, :, :], k, axis=0)
    for i in range(k):
        AB[i, :, i] = B[:, i]
    allx = np.concatenate([A, B, AB.reshape(k * n, k)])
    f = np.asarray(func(np.ascontiguousarray(allx)), dtype=float).ravel()
    fA, fB, fAB = f[:n], f[n:2 * n], f[2 * n:].reshape(k, n)
    ok = np.isfinite(fA) & np.isfinite(fB) & np.all(np.isfinite(fAB), axis=0)
    if ok.sum() < 16:
        raise ValueError("too few finite model evaluations for Sobol indices")
    fA, fB, fAB = fA[ok], fB[ok], fAB[:, ok]
    s1, st = _sobol_estimates(fA, fB, fAB)
    m = fA.size
    bs1 = np.empty((n_boot, k))
    bst = np.empty((n_boot, k))
    for b in range(n_boot):
        idx = rng.integers(0, m, m)
        bs1[b], bst[b] = _sobol_estimates(fA[idx], fB[idx], fAB[:, idx])
    a = (1 - confidence) / 2
    return SobolResult(list(names) if names else [d.name for d in dists], s1, st,
                       np.quantile(bs1, [a, 1 - a], axis=0).T, np.quantile(bst, [a, 1 - a], axis=0).T,
                       n, int(f.size), confidence)


def market_sobol(model: MarketModel, output: str, year: int, n: int = 2048, seed: int = 0,
                 backend: str | None = None, n_boot: int = 200, log: bool = False) -> SobolResult:
    """Sobol indices of ``output`` in ``year`` with respect to the random inputs of ``model``.

    ``log=True`` analyses ``log(output)`` (for outputs spanning orders of magnitude).
    """
    s = model.series_index(output, year)
    names = model.random_names
    cols = [L.INPUT_NAMES.index(nm) for nm in names]
    full = np.array([d.value if not d.is_random else np.nan for d in model.inputs.values()])  # type: ignore[attr-defined]
    be = get_backend(backend)

    def func(xr):
        x = np.empty((xr.shape[0], L.N_INPUTS))
        x[:] = full
        x[:, cols] = xr
        x = np.ascontiguousarray(x)
        out = np.empty((x.shape[0], L.N_OUTPUTS, model.n_years))
        be.values(x, model.year_params, out, 1)
        y = out.reshape(x.shape[0], -1)[:, s]
        if log:
            with np.errstate(divide="ignore", invalid="ignore"):
                y = np.log(y)
        return y

    return sobol_indices(func, [model.inputs[nm] for nm in names], n=n, seed=seed, n_boot=n_boot, names=names)


#: Analytic Sobol indices of the Ishigami function with a = 7, b = 0.1 (Ishigami & Homma 1990;
#: values as tabulated by Saltelli et al. 2010 / SALib).
ISHIGAMI_EXACT = {"S1": (0.3139, 0.4424, 0.0), "ST": (0.5576, 0.4424, 0.2437)}


def ishigami(x: np.ndarray, a: float = 7.0, b: float = 0.1) -> np.ndarray:
    """``sin x1 + a sin^2 x2 + b x3^4 sin x1`` for x (m, 3) uniform on [-pi, pi]^3."""
    return np.sin(x[:, 0]) + a * np.sin(x[:, 1]) ** 2 + b * x[:, 2] ** 4 * np.sin(x[:, 0])
