"""Definitions layer of the market model: declared inputs, the assembled model,
sampling of input matrices, events.

Design
------
``INPUTS`` declares, once, the unit, domain and meaning of every kernel input
(the order is ``kernels.layout.INPUT_NAMES``). A :class:`MarketModel` holds one
:class:`~engine.market.distributions.Distribution` per input, an optional rank
correlation, the horizon and the per-year roadmap array; it validates all of it
before any compiled code runs (each distribution's support must lie in its
input's domain; vendor shares must be able to sum to one) and turns standard
normal scores and uniform variates into the C-contiguous input matrix the kernels
take. The normal scores are AS 241 ``Phi^-1`` of uniforms from the normal stream
(``sample_inputs``; ``kernels.sample_kernel``, ``ext/market_sample_simd.h``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .correlation import CorrelationSpec
from .distributions import Distribution, Domain, LogNormal, Normal, Triangular, Truncated, Uniform
from .kernels import layout as L
from .kernels.sample_kernel import (
    _FAST_FIXED, _FAST_LOGNORMAL, _FAST_NORMAL, _FAST_TRIANGULAR, _FAST_TRUNC_LOGNORMAL, _FAST_TRUNC_NORMAL,
    _FAST_U_TRIANGULAR, _FAST_U_TRUNC_LOGNORMAL, _FAST_U_TRUNC_NORMAL, _FAST_U_UNIFORM, _FAST_UNIFORM, _N_PARAMS,
    correlate_numba, scores_from_uniforms_numba, transform_numba)

__all__ = ["InputSpec", "INPUTS", "OUTPUTS", "MarketModel", "Event", "parse_event"]


@dataclass(frozen=True)
class InputSpec:
    """A kernel input: unit, allowed domain and meaning."""

    name: str
    unit: str
    domain: Domain
    description: str


_POS = Domain(0.0, lo_open=True)
_NONNEG = Domain(0.0)
_FRAC = Domain(0.0, 1.0)
_FRAC_POS = Domain(0.0, 1.0, lo_open=True)
_YEAR = Domain(1900.0, 2200.0)
_GE1 = Domain(1.0)

INPUTS: dict[str, InputSpec] = {s.name: s for s in [
    InputSpec("tokens_per_day_base", "tokens/day", _POS, "output tokens generated per day by all LLM providers in the base year"),
    InputSpec("demand_growth_initial", "1/yr", _POS, "demand multiple from the base year to the next, at constant price and mix"),
    InputSpec("demand_growth_decay", "1", _FRAC, "fraction of the excess growth (growth - 1) kept each following year"),
    InputSpec("price_per_mtok_base", "USD/1e6 tokens", _POS, "blended API price per million output tokens in the base year"),
    InputSpec("price_decline_initial", "1/yr", _POS, "price divisor from the base year to the next (10 = 10x cheaper)"),
    InputSpec("price_decline_decay", "1", _FRAC, "fraction of the log-rate of price decline kept each following year"),
    InputSpec("price_elasticity", "1", Domain(0.0, 5.0), "constant price elasticity of token demand"),
    InputSpec("reasoning_share_max", "1", _FRAC, "long-run share of queries answered by reasoning models"),
    InputSpec("reasoning_midpoint_year", "yr", _YEAR, "year the reasoning share reaches half its maximum"),
    InputSpec("reasoning_adoption_rate", "1/yr", Domain(0.0, 20.0, lo_open=True), "logistic rate of reasoning adoption"),
    InputSpec("reasoning_token_multiplier", "1", _GE1, "output tokens of a reasoning answer / a plain answer"),
    InputSpec("agent_share_max", "1", _FRAC, "long-run share of tasks run by agents"),
    InputSpec("agent_midpoint_year", "yr", _YEAR, "year the agent share reaches half its maximum"),
    InputSpec("agent_adoption_rate", "1/yr", Domain(0.0, 20.0, lo_open=True), "logistic rate of agent adoption"),
    InputSpec("agent_calls_per_task", "1", _GE1, "model calls per agentic task"),
    InputSpec("serving_efficiency", "1", _FRAC_POS, "achieved / roofline throughput of a serving replica"),
    InputSpec("serving_utilisation", "1", _FRAC_POS, "average / provisioned serving capacity"),
    InputSpec("software_gain_per_year", "1/yr", _POS, "serving throughput multiple per year from software (kernels, quantisation, speculative decoding)"),
    InputSpec("hardware_gain_per_year", "1/yr", _POS, "per-chip performance multiple per year after the chip roadmap ends"),
    InputSpec("peak_to_average", "1", _GE1, "provisioned peak / average token demand"),
    InputSpec("other_inference_chips_base", "chips", _NONNEG, "non-LLM AI inference fleet (recommenders, vision, speech) in base-year chips"),
    InputSpec("other_inference_growth", "1/yr", _POS, "growth of the non-LLM inference compute"),
    InputSpec("frontier_runs_base", "runs/yr", _NONNEG, "frontier-scale pre-training runs per year, base year"),
    InputSpec("frontier_runs_growth", "1/yr", _POS, "growth of the number of frontier runs"),
    InputSpec("compute_per_run_base", "FLOP", _NONNEG, "pre-training compute of a frontier run, base year"),
    InputSpec("compute_per_run_growth", "1/yr", _POS, "growth of the compute per frontier run"),
    InputSpec("compute_growth_decay", "1", _FRAC, "fraction of the excess growth of compute per run kept each following year"),
    InputSpec("post_training_multiplier", "1", _POS, "all training-side compute (post-training, RL, experiments, smaller models) per frontier pre-training FLOP"),
    InputSpec("training_utilisation", "1", _FRAC_POS, "achieved model FLOP utilisation of the training fleet over the year"),
    InputSpec("accelerator_price_factor", "1", _POS, "multiplier on the roadmap accelerator price"),
    InputSpec("useful_life_years", "yr", Domain(1.0, 50.0), "useful life of an accelerator (straight-line retirement)"),
    InputSpec("prior_fleet_growth", "1", _POS, "installed capacity growth into the base year (sets the initial fleet)"),
    InputSpec("pue", "1", Domain(1.0, 3.0), "data-centre power usage effectiveness"),
    InputSpec("electricity_price_usd_per_kwh", "USD/kWh", Domain(0.0, 10.0), "electricity price"),
    *[InputSpec(f"share_{v}_{end}", "1", _FRAC_POS,
                f"{v.replace('_', ' ')} share of accelerator spend in the {'first' if end == 'start' else 'last'} "
                "year (normalised per draw)")
      for v in L.VENDORS for end in ("start", "end")],
    InputSpec("spend_ceiling_usd", "USD/yr", _POS,
              "asymptotic ceiling on annual AI accelerator spend of all buyers (budget constraint)"),
    InputSpec("software_gain_decay", "1", _FRAC, "fraction of the excess software gain kept each following year"),
    InputSpec("price_markup_max", "1", _GE1,
              "largest sustainable ratio of token price to serving cost (accelerator amortisation + power)"),
]}
assert tuple(INPUTS) == L.INPUT_NAMES, "INPUTS must follow kernels.layout.INPUT_NAMES"

OUTPUTS: dict[str, tuple[str, str]] = {
    "tokens_per_day": ("tokens/day", "output tokens served per day (demand capped by the installed fleet)"),
    "price_per_mtok_usd": ("USD/1e6 tokens", "blended API price per million output tokens"),
    "serving_cost_per_mtok_usd": ("USD/1e6 tokens", "fleet cost (amortised accelerator + power) per million output tokens"),
    "llm_revenue_usd": ("USD/yr", "API-equivalent LLM revenue = tokens * price"),
    "inference_compute_flops": ("FLOP/s", "installed peak accelerator compute in use for inference (LLM + other)"),
    "training_compute_flop": ("FLOP/yr", "training compute achieved per year"),
    "inference_share_compute": ("1", "inference share of the installed peak compute in use"),
    "accelerators_installed": ("chips", "installed AI accelerators"),
    "accelerators_shipped": ("chips/yr", "accelerators bought in the year"),
    "power_gw": ("GW", "facility power of the installed accelerators at TDP"),
    "spend_inference_usd": ("USD/yr", "accelerator spend for inference"),
    "spend_training_usd": ("USD/yr", "accelerator spend for training"),
    "spend_total_usd": ("USD/yr", "accelerator spend"),
    "inference_share_spend": ("1", "inference share of accelerator spend"),
    **{f"revenue_{v}_usd": ("USD/yr", f"accelerator revenue of {v.replace('_', ' ')}") for v in L.VENDORS},
}
assert tuple(OUTPUTS) == L.OUTPUT_NAMES


def _truncated_params(d: Truncated) -> tuple:
    """``_fast_from_scores``' parameters of a truncated normal or lognormal: (m or mu, s,
    Phi(a), Phi(b) - Phi(a), lo, hi), with ``d._flo``, ``d._fhi`` as ``Truncated.ppf``
    uses them (the same rounding)."""
    b = d.base
    loc, scale = (b.mean, b.sd) if type(b) is Normal else (b.mu, b.sigma)
    return (loc, scale, d._flo, d._fhi - d._flo, d.lo, d.hi)


def _params_array(rows) -> np.ndarray:
    """``(len(rows), _N_PARAMS)`` C-contiguous parameters of ``_fast_from_scores``,
    each row padded with zeros."""
    a = np.zeros((len(rows), _N_PARAMS))
    for i, row in enumerate(rows):
        a[i, :len(row)] = row
    return a


@dataclass
class Event:
    """``P(output[year] > threshold)`` (or ``<``)."""

    output: str
    year: int
    op: str
    threshold: float
    text: str = ""

    def label(self) -> str:
        return self.text or f"P({self.output}[{self.year}] {self.op} {self.threshold:g})"


_EVENT_RE = re.compile(r"^\s*(?:P\s*\(\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*(?:\[\s*(\d{4})\s*\]|\s+(\d{4}))\s*"
                       r"(>=|<=|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*\)?\s*$")


def parse_event(text: str) -> Event:
    """Parse ``"inference_share_spend[2026] > 0.6"`` (optionally wrapped in ``P( )``)."""
    m = _EVENT_RE.match(text)
    if not m:
        raise ValueError(f"event {text!r} is not of the form 'output[YEAR] > value' (or <, >=, <=)")
    name, y1, y2, op, thr = m.groups()
    if name not in OUTPUTS:
        raise ValueError(f"event {text!r}: unknown output {name!r}; outputs are {', '.join(OUTPUTS)}")
    return Event(name, int(y1 or y2), op, float(thr), text.strip())


class MarketModel:
    """The market model: one distribution per input, correlation, horizon and roadmap.

    Parameters
    ----------
    inputs : mapping name -> Distribution
        Every name of ``INPUTS``.
    years : sequence of int
        Consecutive calendar years of the horizon [yr].
    year_params : ndarray, shape (len(years), N_YEAR_PARAMS)
        Roadmap values per year (``kernels.layout.YEAR_PARAM_NAMES``), canonical units.
    correlation : CorrelationSpec, optional
    roadmap : list of dict, optional
        Provenance of ``year_params`` (chip, model, batch, ... per year), for reports.
    """

    def __init__(self, inputs: Mapping[str, Distribution], years: Sequence[int], year_params: np.ndarray,
                 correlation: CorrelationSpec | None = None, roadmap: list | None = None, name: str = "market"):
        self.name = name
        missing = [k for k in INPUTS if k not in inputs]
        if missing:
            raise ValueError(f"market model {name!r} is missing inputs: {', '.join(missing)}")
        unknown = [k for k in inputs if k not in INPUTS]
        if unknown:
            raise ValueError(f"market model {name!r} has unknown inputs: {', '.join(unknown)}")
        self.inputs = {k: inputs[k] for k in INPUTS}
        for k, d in self.inputs.items():
            if not isinstance(d, Distribution):
                raise ValueError(f"input {k!r} must be a Distribution, got {type(d).__name__}")
            if not d.name:
                d.name = k
            spec = INPUTS[k]
            lo, hi = d.support
            if not d.is_random:
                inside = spec.domain.contains(lo)
            else:  # a continuous support may touch an open bound (lognormal on (0, inf))
                inside = lo >= spec.domain.lo and hi <= spec.domain.hi
            if not inside:
                raise ValueError(f"input {k!r} [{spec.unit}]: {d.describe()} has support [{lo:g}, {hi:g}] "
                                 f"outside the input's domain ({spec.domain.describe()}); "
                                 f"use a bounded or truncated distribution")
        years = [int(y) for y in years]
        if len(years) < 1:
            raise ValueError("the horizon must contain at least one year")
        if any(b != a + 1 for a, b in zip(years, years[1:])):
            raise ValueError(f"horizon years must be consecutive, got {years}")
        self.years = np.asarray(years, dtype=np.int64)
        yp = np.ascontiguousarray(year_params, dtype=np.float64)
        if yp.shape != (len(years), L.N_YEAR_PARAMS):
            raise ValueError(f"year_params must have shape ({len(years)}, {L.N_YEAR_PARAMS}), got {yp.shape}")
        for j, col in enumerate(L.YEAR_PARAM_NAMES[1:5], start=1):
            bad = ~(np.isfinite(yp[:, j]) & (yp[:, j] > 0))
            if bad.any():
                y = years[int(np.argmax(bad))]
                raise ValueError(f"roadmap {col} must be finite and > 0, got {yp[bad, j][0]!r} in {y}")
        self.year_params = yp
        self.roadmap = roadmap or []
        self._check_vendor_shares()
        self.random_names = [k for k, d in self.inputs.items() if d.is_random]
        self.correlation = correlation
        if correlation is not None:
            for n in correlation.names:
                if n not in self.inputs:
                    raise ValueError(f"correlation names unknown input {n!r}")
                if not self.inputs[n].is_random:
                    raise ValueError(f"correlation names input {n!r}, which is fixed")
        self._plan_streams()

    def _plan_streams(self):
        """Which random inputs draw a normal score and which a uniform variate.

        Uniform, triangular and truncated normal/lognormal inputs outside the correlation
        block are sampled from a uniform variate (cheaper than a normal score followed by
        the normal CDF); every other random input, and every correlated one, from a
        normal score."""
        corr = set(self.correlation.names) if self.correlation is not None else set()
        self.normal_names, self.uniform_names = [], []
        codes, params, cols, oc, slow = [], [], [], [], []
        for col, (k, d) in enumerate(self.inputs.items()):
            if not d.is_random:
                codes.append(_FAST_FIXED); params.append((d.value, 0.0, 0.0)); cols.append(0); oc.append(col)  # type: ignore[attr-defined]
                continue
            truncated = type(d) is Truncated and type(d.base) in (Normal, LogNormal)
            if (type(d) in (Uniform, Triangular) or truncated) and k not in corr:
                j = len(self.uniform_names)
                self.uniform_names.append(k)
                if type(d) is Uniform:
                    codes.append(_FAST_U_UNIFORM); params.append((d.lo, d.hi, 0.0))
                elif type(d) is Triangular:
                    codes.append(_FAST_U_TRIANGULAR); params.append((d.lo, d.mode, d.hi))
                else:
                    b = d.base
                    codes.append(_FAST_U_TRUNC_NORMAL if type(b) is Normal else _FAST_U_TRUNC_LOGNORMAL)
                    params.append(_truncated_params(d))
                cols.append(j); oc.append(col)
                continue
            j = len(self.normal_names)
            self.normal_names.append(k)
            if type(d) is Normal:
                codes.append(_FAST_NORMAL); params.append((d.mean, d.sd, 0.0))
            elif type(d) is LogNormal:
                codes.append(_FAST_LOGNORMAL); params.append((d.mu, d.sigma, 0.0))
            elif type(d) is Uniform:
                codes.append(_FAST_UNIFORM); params.append((d.lo, d.hi, 0.0))
            elif type(d) is Triangular:
                codes.append(_FAST_TRIANGULAR); params.append((d.lo, d.mode, d.hi))
            elif truncated:
                codes.append(_FAST_TRUNC_NORMAL if type(d.base) is Normal else _FAST_TRUNC_LOGNORMAL)
                params.append(_truncated_params(d))
            else:
                slow.append((col, j, d))
                continue
            cols.append(j); oc.append(col)
        self._corr_cols_normal = (np.array([self.normal_names.index(n) for n in self.correlation.names], np.int64)
                                  if self.correlation is not None else np.zeros(0, np.int64))
        self._streams = (np.array(cols, np.int64), np.array(oc, np.int64), np.array(codes, np.int64),
                         _params_array(params))
        self._slow_streams = slow

    def _check_vendor_shares(self):
        for end in ("start", "end"):
            ds = [self.inputs[f"share_{v}_{end}"] for v in L.VENDORS]
            lo = sum(d.support[0] for d in ds)
            hi = sum(d.support[1] for d in ds)
            label = "first" if end == "start" else "last"
            if all(not d.is_random for d in ds):
                if abs(lo - 1.0) > 1e-6:
                    raise ValueError(f"vendor shares in the {label} year are fixed and sum to {lo:g}, not 1 "
                                     f"(share_*_{end})")
            elif lo > 1.0 + 1e-12 or hi < 1.0 - 1e-12:
                raise ValueError(f"vendor shares in the {label} year cannot sum to one: their supports sum to "
                                 f"[{lo:g}, {hi:g}] (share_*_{end})")

    # -- sampling ---------------------------------------------------------------------------
    @property
    def n_years(self) -> int:
        return int(self.years.size)

    @property
    def n_random(self) -> int:
        return len(self.random_names)

    @property
    def n_series(self) -> int:
        return L.N_OUTPUTS * self.n_years

    def inputs_from_scores(self, z: np.ndarray, u: np.ndarray, correlate: bool = True,
                           out: np.ndarray | None = None, transform=None, correlate_fn=None) -> np.ndarray:
        """Input matrix (n, N_INPUTS) from normal scores ``z`` (n, n_normal) of the inputs
        ``normal_names`` and uniform variates ``u`` (n, n_uniform) of ``uniform_names``.

        ``z`` is modified in place when ``correlate`` and a correlation is set.
        ``transform``, ``correlate_fn``: a backend's ``Backend.transform`` and
        ``Backend.correlate`` (bit-identical on every backend; default the numba ones of
        ``kernels.sample_kernel``).
        """
        n = z.shape[0]
        if out is None:
            out = np.empty((n, L.N_INPUTS))
        if correlate and self.correlation is not None and self._corr_cols_normal.size:
            (correlate_numba if correlate_fn is None else correlate_fn)(z, self._corr_cols_normal,
                                                                          self.correlation.factor)
        cols, oc, codes, params = self._streams
        (transform_numba if transform is None else transform)(z, u, cols, out, oc, codes, params)
        for col, j, d in self._slow_streams:
            out[:, col] = d.from_normal(z[:, j])
        return out

    def sample_inputs(self, rng: np.random.Generator, n: int, correlate: bool = True,
                      rng_uniform: np.random.Generator | None = None, out: np.ndarray | None = None,
                      z: np.ndarray | None = None, u: np.ndarray | None = None, scores=None,
                      transform=None, correlate_fn=None) -> np.ndarray:
        """``n`` draws of the input matrix: ``n x n_normal`` standard normal scores from
        ``rng`` and ``n x n_uniform`` uniforms on [0, 1) from ``rng_uniform``
        (``Generator.random``, row-major; ``rng`` itself when not given, after the
        normal stream's variates). The scores are ``Phi^-1`` of the midpoints of the cells
        of ``rng.random``'s uniforms ``k 2^-53`` (AS 241; ``scores(u, z)``, by default
        ``kernels.sample_kernel.scores_from_uniforms_numba``, or a backend's bit-identical
        ``Backend.scores``); ``transform``, ``correlate_fn``: see ``inputs_from_scores``. ``out``, ``z``,
        ``u``: optional C-contiguous buffers of at least ``n`` rows.
        """
        nn, nu = len(self.normal_names), len(self.uniform_names)
        z = np.empty((n, nn)) if z is None else z[:n]
        u = np.empty((n, nu)) if u is None else u[:n]
        out = None if out is None else out[:n]
        if nn:
            rng.random(out=z)
            (scores_from_uniforms_numba if scores is None else scores)(z, z)
        if nu:
            (rng if rng_uniform is None else rng_uniform).random(out=u)
        return self.inputs_from_scores(z, u, correlate=correlate, out=out, transform=transform,
                                       correlate_fn=correlate_fn)

    # -- names ------------------------------------------------------------------------------
    def series_index(self, output: str, year: int) -> int:
        """Flat series index of ``output`` in ``year`` (``o * n_years + t``)."""
        if output not in OUTPUTS:
            raise ValueError(f"unknown output {output!r}; outputs are {', '.join(OUTPUTS)}")
        if year not in self.years:
            raise ValueError(f"year {year} is outside the horizon {self.years[0]}-{self.years[-1]}")
        return L.OUTPUT_NAMES.index(output) * self.n_years + int(year - self.years[0])

    def event_arrays(self, events: Sequence[Event]):
        ser = np.array([self.series_index(e.output, e.year) for e in events], dtype=np.int64)
        op = np.array([L.EVENT_GT if e.op in (">", ">=") else L.EVENT_LT for e in events], dtype=np.int64)
        thr = np.array([np.nextafter(e.threshold, -np.inf) if e.op == ">=" else
                        np.nextafter(e.threshold, np.inf) if e.op == "<=" else e.threshold for e in events],
                       dtype=np.float64)
        return ser, op, thr
