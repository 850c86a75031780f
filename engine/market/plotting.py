"""Fan and tornado charts (matplotlib, Agg backend; PNG or SVG by file suffix)."""
from __future__ import annotations

import numpy as np

from .model import OUTPUTS

__all__ = ["fan_chart", "tornado_chart"]


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def fan_chart(fc, outputs, path, log: bool | None = None):
    """Fan chart (P5-P95, P10-P90, P25-P75 bands, median, mean) of ``outputs`` per year."""
    plt = _plt()
    outputs = [outputs] if isinstance(outputs, str) else list(outputs)
    fig, axes = plt.subplots(len(outputs), 1, figsize=(8, 3.2 * len(outputs)), squeeze=False)
    probs = list(fc.probs)
    for ax, name in zip(axes[:, 0], outputs):
        o = fc.outputs.index(name)
        q = fc.quantiles[o]
        y = fc.years
        for lo, hi, alpha in ((0.05, 0.95, 0.15), (0.10, 0.90, 0.25), (0.25, 0.75, 0.4)):
            if lo in probs and hi in probs:
                ax.fill_between(y, q[:, probs.index(lo)], q[:, probs.index(hi)], color="C0", alpha=alpha,
                                lw=0, label=f"P{round(lo * 100)}-P{round(hi * 100)}")
        if 0.5 in probs:
            ax.plot(y, q[:, probs.index(0.5)], color="C0", lw=2, label="median")
        ax.plot(y, fc.mean[o], color="C1", lw=1, ls="--", label="mean")
        unit = OUTPUTS[name][0]
        ax.set_title(f"{name} [{unit}]")
        use_log = log if log is not None else (unit != "1" and np.nanmin(q) > 0 and
                                                np.nanmax(q) / max(np.nanmin(q), 1e-300) > 100)
        if use_log:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(f"{fc.n_draws:,} draws, seed {fc.seed}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def tornado_chart(pairs, title, path):
    """Horizontal bars of rank correlations ``[(input, rho), ...]``."""
    plt = _plt()
    pairs = list(pairs)[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(pairs) + 1.2))
    vals = [p[1] for p in pairs]
    ax.barh([p[0] for p in pairs], vals, color=["C3" if v < 0 else "C0" for v in vals])
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlim(-1, 1)
    ax.set_xlabel("Spearman rank correlation with the output")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
