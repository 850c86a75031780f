"""infercast: a high-performance modelling engine for the economics of AI inference.

Public API
----------
estimate, sweep, latency_profile
    Roofline latency, throughput, memory fit and cost per scenario point.
max_throughput
    The batch within memory that maximises output tokens/s, optionally under
    TTFT/TPOT limits (MLPerf Offline/Server-style operating points).
calibrate
    Fit per-family efficiency factors to measured results (docs/validation.md).
Chip, Model
    Validated definitions; ``get_chip``/``get_model`` look up the catalog.
show_config
    Backends, OpenMP and thread counts.
"""
from __future__ import annotations

from .api import chips_needed, estimate, latency_profile, sweep
from .catalog import chips, get_chip, get_model, load_catalog, models
from .chip import Chip
from .config import show_config
from .model import Model
from .results import Estimate, SweepResult
from .serving import max_throughput


def calibrate(*args, **kwargs):
    """Fit per-family efficiency factors (:func:`engine.calibration.calibrate`; needs scipy)."""
    from .calibration import calibrate as _calibrate
    return _calibrate(*args, **kwargs)

__version__ = "0.1.0"

__all__ = ["estimate", "sweep", "latency_profile", "chips_needed", "max_throughput", "calibrate", "Chip", "Model", "get_chip", "get_model",
           "chips", "models", "load_catalog", "show_config", "Estimate", "SweepResult",
           "__version__"]
