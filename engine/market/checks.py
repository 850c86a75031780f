"""Calibration figures and plausibility ceilings of the default market scenario.

Design
------
``CALIBRATION`` lists every sourced figure the default scenario is calibrated to,
with the forecast output it is compared with and the check it must pass:

* ``"approx"`` (a point estimate, "~X"): ``P10 <= X <= P90``;
* ``"lower_bound"`` (">X", or a part of what the output counts): ``X <= P50``.

``CEILINGS`` lists upper bounds every year's tail must respect (``P95 <= bound``).
:func:`calibration_table` evaluates both on a :class:`~engine.market.simulate.Forecast`
and :func:`markdown_table` renders the table that ``docs/market.md`` shows between
the ``<!-- calibration:begin -->`` and ``<!-- calibration:end -->`` markers
(regenerate with ``python -m engine.market.checks``; ``tests/test_market_calibration.py``
checks that the docs match the code and that every check passes).

Sources are the rows of ``shared/reference/market.csv`` and ``seed_claims.csv``
named in ``source``; the known errors of the seed articles are not used as targets
(the ~40 % 2023 inference share; "$400B accelerator market" is data-centre spend).
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Target", "CALIBRATION", "CEILINGS", "DOC_DRAWS", "DOC_SEED", "calibration_table", "markdown_table",
           "ceiling_violations"]

#: Draws and seed of the table in docs/market.md (bit-reproducible, docs/reproducibility.md).
DOC_DRAWS = 200_000
DOC_SEED = 0


@dataclass(frozen=True)
class Target:
    """A sourced figure and the forecast output it is compared with."""

    label: str
    output: str
    year: int
    value: float
    kind: str  # "approx" | "lower_bound"
    source: str
    scale: float = 1e9  # display unit divisor
    unit: str = "USD bn"


#: NVIDIA's data-centre *compute* share: Q4 FY2026 compute $51.3B of $51.3B + networking $10.98B
#: = 0.824 (market.csv); applied to data-centre revenue of the fiscal year that overlaps the
#: calendar year by 11 months (FY2024 = Feb 2023 - Jan 2024).
NVIDIA_COMPUTE_SHARE = 51.3 / (51.3 + 10.98)

CALIBRATION: tuple[Target, ...] = (
    Target("NVIDIA DC compute revenue CY2023 ~ 0.824 x FY2024 DC $47.6B", "revenue_nvidia_usd", 2023,
           NVIDIA_COMPUTE_SHARE * 47.6e9, "approx", "market.csv accelerator_revenue NVIDIA FY2024 (derived), Q4 FY2026 split"),
    Target("NVIDIA DC compute revenue CY2024 ~ 0.824 x FY2025 DC $115.2B", "revenue_nvidia_usd", 2024,
           NVIDIA_COMPUTE_SHARE * 115.2e9, "approx", "market.csv accelerator_revenue NVIDIA FY2025 (actual)"),
    Target("NVIDIA DC compute revenue CY2025 ~ 0.824 x FY2026 DC $193.7B", "revenue_nvidia_usd", 2025,
           NVIDIA_COMPUTE_SHARE * 193.7e9, "approx", "market.csv accelerator_revenue NVIDIA FY2026 (actual)"),
    Target("AMD Instinct revenue CY2024 > $5B", "revenue_amd_usd", 2024, 5e9, "lower_bound",
           "market.csv accelerator_revenue AMD CY2024 (actual)"),
    Target("Deloitte: cutting-edge AI chip spend 2026 $200B+ (part of all accelerator spend)", "spend_total_usd",
           2026, 200e9, "lower_bound", "market.csv training_vs_inference Deloitte 2026 (projection)"),
    Target("Deloitte: inference-optimised chips 2026 > $50B (part of inference accelerator spend)",
           "spend_inference_usd", 2026, 50e9, "lower_bound", "market.csv training_vs_inference Deloitte 2026"),
    Target("Deloitte: inference share of AI compute 2023 ~33 % (not the seed's 40 %)", "inference_share_compute",
           2023, 0.33, "approx", "market.csv training_vs_inference Deloitte 2023", 0.01, "%"),
    Target("Deloitte: inference share of AI compute 2025 ~50 %", "inference_share_compute", 2025, 0.50, "approx",
           "market.csv training_vs_inference Deloitte 2025", 0.01, "%"),
    Target("Deloitte: inference share of AI compute 2026 ~67 %", "inference_share_compute", 2026, 0.67, "approx",
           "market.csv training_vs_inference Deloitte 2026", 0.01, "%"),
    Target("OpenAI alone, Feb 2024: 100B words/day ~ 130B tokens/day (all providers served more)",
           "tokens_per_day", 2024, 1.3e11, "lower_bound", "seed_claims.csv 'OpenAI daily generation' (words, not tokens)",
           1e9, "bn tokens/day"),
)

#: (output, bound, unit divisor, unit, source): the forecast's P95 must not exceed the bound in any year.
CEILINGS: tuple[tuple[str, float, float, str, str], ...] = (
    ("spend_total_usd", 1.0e12, 1e9, "USD bn",
     "Deloitte (market.csv, via aiwire): ALL AI data-centre spend could reach $1T/yr by 2028; accelerators are "
     "~40-50 % of it (Deloitte 2026: chips $200B+ of $400B+; 2028: chips >$400B of $1T)"),
    ("llm_revenue_usd", 1.0e12, 1e9, "USD bn",
     "estimate: a P95 above the $1T/yr of all AI data-centre spend (Deloitte 2028, market.csv) would need "
     "API revenue larger than the whole AI build-out"),
)


def calibration_table(fc) -> list[dict]:
    """One row per calibration target: value, P10/P50/P90 and whether its check passes."""
    rows = []
    for tg in CALIBRATION:
        p10, p50, p90 = (fc.quantile(tg.output, tg.year, p) for p in (0.1, 0.5, 0.9))
        ok = (p10 <= tg.value <= p90) if tg.kind == "approx" else (tg.value <= p50)
        rows.append({"target": tg, "p10": p10, "p50": p50, "p90": p90, "ok": bool(ok)})
    return rows


def ceiling_violations(fc) -> list[str]:
    """``CEILINGS`` whose P95 is exceeded in some year (empty when all hold)."""
    bad = []
    for output, bound, _, _, _ in CEILINGS:
        for y in fc.years:
            q = fc.quantile(output, int(y), 0.95)
            if not q <= bound:
                bad.append(f"{output}[{int(y)}] P95 = {q:.4g} > {bound:.4g}")
    return bad


def _fmt(v: float) -> str:
    return f"{v:,.1f}" if abs(v) < 1e4 else f"{v:,.0f}"


def markdown_table(fc) -> str:
    """The calibration and ceiling tables of ``docs/market.md`` for forecast ``fc``."""
    lines = [f"Default scenario, {fc.n_draws:,} draws, seed {fc.seed} "
             f"(`python -m engine.market.checks`).", "",
             "| calibration figure | check | value | output | P10 | P50 | P90 | pass |",
             "|---|---|---|---|---|---|---|---|"]
    for r in calibration_table(fc):
        tg = r["target"]
        chk = "P10 <= value <= P90" if tg.kind == "approx" else "value <= P50"
        lines.append(f"| {tg.label} ({tg.source}) | {chk} | {_fmt(tg.value / tg.scale)} {tg.unit} | "
                     f"`{tg.output}[{tg.year}]` | {_fmt(r['p10'] / tg.scale)} | {_fmt(r['p50'] / tg.scale)} | "
                     f"{_fmt(r['p90'] / tg.scale)} | {'yes' if r['ok'] else 'NO'} |")
    lines += ["", "| ceiling (every year) | bound | largest P95 (year) | mean in that year | source |",
              "|---|---|---|---|---|"]
    for output, bound, scale, unit, src in CEILINGS:
        o = fc.outputs.index(output)
        t = int(fc.quantiles[o, :, -1].argmax())
        lines.append(f"| `{output}` P95 | {_fmt(bound / scale)} {unit} | {_fmt(fc.quantiles[o, t, -1] / scale)} "
                     f"({int(fc.years[t])}) | {_fmt(fc.mean[o, t] / scale)} | {src} |")
    return "\n".join(lines)


def _doc_forecast():
    from .scenario import load_scenario
    from .simulate import forecast
    return forecast(load_scenario("default").build(), DOC_DRAWS, seed=DOC_SEED, threads=2)


if __name__ == "__main__":  # pragma: no cover - regenerates the docs table
    print(markdown_table(_doc_forecast()))
