"""Monte Carlo market forecasts: the training-vs-inference accelerator market.

Public API
----------
distributions (``lognormal_ci``, ``normal``, ``uniform``, ``triangular``, ``pert``, ``beta``,
``truncated``, ``discrete``, ``empirical``, ``mixture``, ``fixed``), ``CorrelationSpec``,
``MarketModel``, ``load_scenario``, ``forecast``, ``Simulation``, ``sample_values``,
``tornado``, ``sobol_indices``, ``market_sobol``, ``run_until_converged``.
See ``docs/market.md`` and ``docs/reproducibility.md``.
"""
from .correlation import CorrelationSpec
from .convergence import run_until_converged
from .distributions import (beta, discrete, empirical, fixed, lognormal, lognormal_ci, mixture, normal, pert,
                            triangular, truncated, uniform)
from .model import INPUTS, OUTPUTS, MarketModel, parse_event
from .scenario import DEFAULT_SCENARIO, ScenarioError, load_scenario
from .sensitivity import market_sobol, sobol_indices, tornado
from .simulate import BLOCK_DRAWS, Forecast, Simulation, forecast, sample_values

__all__ = ["CorrelationSpec", "run_until_converged", "beta", "discrete", "empirical", "fixed", "lognormal",
           "lognormal_ci", "mixture", "normal", "pert", "triangular", "truncated", "uniform", "INPUTS", "OUTPUTS",
           "MarketModel", "parse_event", "DEFAULT_SCENARIO", "ScenarioError", "load_scenario", "market_sobol",
           "sobol_indices", "tornado", "BLOCK_DRAWS", "Forecast", "Simulation", "forecast", "sample_values"]
