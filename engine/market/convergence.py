"""Run until the standard error of chosen quantiles is below a tolerance.

The standard error of a sample quantile is estimated from the streaming histogram
with the Siddiqui-Bloch-Gastwirth sparsity estimator (Koenker 2005, sec. 3.4.2):

    SE(Q(p)) ~= sqrt(p (1 - p) / n) * (Q(p + h) - Q(p - h)) / (2 h),

with the Hall-Sheather bandwidth ``h = n^(-1/3) z^(2/3) [1.5 phi(Phi^-1(p))^2 /
(2 Phi^-1(p)^2 + 1)]^(1/3)``, ``z = Phi^-1(0.975)`` (Hall & Sheather 1988).
Draws are added in whole RNG blocks, so a converged run equals a single run of the
same number of draws (bit-identical).

References
----------
Koenker, R. (2005). *Quantile Regression*. Cambridge University Press.
Hall, P., Sheather, S. J. (1988). On the distribution of a studentized quantile.
*J. R. Stat. Soc. B* 50, 381-391.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import special

from .model import MarketModel
from .simulate import BLOCK_DRAWS, Forecast, Simulation
from .summaries import hist_quantiles

__all__ = ["hall_sheather_bandwidth", "quantile_standard_errors", "ConvergenceResult", "run_until_converged"]


def hall_sheather_bandwidth(p: float, n: int) -> float:
    """Hall-Sheather bandwidth for the sparsity at level ``p`` with ``n`` draws [1]."""
    x = special.ndtri(p)
    phi = math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    z = special.ndtri(0.975)
    return n ** (-1 / 3) * z ** (2 / 3) * (1.5 * phi ** 2 / (2 * x * x + 1)) ** (1 / 3)


def quantile_standard_errors(hist_row: np.ndarray, probs: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Quantiles and their standard errors from one histogram row [unit of the series]."""
    n = int(hist_row.sum())
    qs, ses = [], []
    for p in probs:
        h = min(hall_sheather_bandwidth(p, n), p * 0.99, (1 - p) * 0.99)
        lo, mid, hi = hist_quantiles(hist_row[None, :], [p - h, p, p + h])[0]
        qs.append(mid)
        ses.append(math.sqrt(p * (1 - p) / n) * (hi - lo) / (2 * h))
    return np.array(qs), np.array(ses)


@dataclass
class ConvergenceResult:
    forecast: Forecast
    converged: bool
    targets: list  # (output, year, prob, quantile, standard error, relative standard error)
    history: list  # (draws, max relative standard error)


def run_until_converged(model: MarketModel, targets: Sequence[tuple[str, int, float]], rel_tol: float = 0.01,
                        max_draws: int = 10_000_000, seed: int = 0, start_draws: int = 4 * BLOCK_DRAWS,
                        events=(), backend: str | None = None, threads: int = 1, progress: bool = False
                        ) -> ConvergenceResult:
    """Double the draws until every target quantile's SE / |quantile| <= ``rel_tol``,
    or ``max_draws`` is reached.

    Parameters
    ----------
    targets : sequence of (output, year, prob)
    rel_tol : float
        Tolerance on the relative standard error [1].
    max_draws : int
        Draw budget (rounded up to whole RNG blocks).
    """
    if not rel_tol > 0:
        raise ValueError(f"rel_tol must be > 0, got {rel_tol!r}")
    if not targets:
        raise ValueError("run_until_converged needs at least one (output, year, prob) target")
    for o, y, p in targets:
        model.series_index(o, y)
        if not 0 < p < 1:
            raise ValueError(f"target probability must be in (0, 1), got {p!r}")
    sim = Simulation(model, seed, events, backend, threads, progress=progress)
    step = max(BLOCK_DRAWS, (int(start_draws) // BLOCK_DRAWS) * BLOCK_DRAWS)
    max_draws = max(step, -(-int(max_draws) // BLOCK_DRAWS) * BLOCK_DRAWS)
    history = []
    while True:
        sim.run(min(step, max_draws - sim.n_draws))
        rows = []
        for o, y, p in targets:
            s = model.series_index(o, y)
            q, se = quantile_standard_errors(sim.acc.hist[s], [p])
            rel = float(se[0] / abs(q[0])) if q[0] != 0 else math.inf
            rows.append((o, y, p, float(q[0]), float(se[0]), rel))
        worst = max(r[5] for r in rows)
        history.append((sim.n_draws, worst))
        if worst <= rel_tol or sim.n_draws >= max_draws:
            return ConvergenceResult(sim.result(), worst <= rel_tol, rows, history)
        step = sim.n_draws  # double
