"""``engine.show_config()``: which backends exist, OpenMP, thread counts."""
from __future__ import annotations

import platform
import sys

from .core import dispatch


def config_info() -> dict:
    """Backends available, OpenMP on/off and thread counts, as a dict."""
    info = {"python": sys.version.split()[0], "platform": platform.platform(),
            "backends_available": list(dispatch.available_backends()),
            "default_backend": dispatch.resolve_backend(None),
            "default_threads": dispatch.default_threads()}
    try:
        import numpy
        info["numpy"] = numpy.__version__
    except ImportError:  # pragma: no cover - numpy is a hard dependency
        pass
    cy = dispatch._cython_module()
    info["cython_extension"] = cy is not None
    info["cython_openmp"] = bool(cy.openmp_enabled()) if cy is not None else False
    info["cython_max_threads"] = int(cy.max_threads()) if cy is not None else 0
    info["cython_simd_kernel"] = cy.simd_isa() if cy is not None else None
    try:
        from ._ext import _market
        info["cython_market_simd_kernel"] = _market.simd_isa()
    except ImportError:
        info["cython_market_simd_kernel"] = None
    nb = dispatch._numba_module()
    if nb is not None:
        import numba
        info["numba"] = numba.__version__
        info["numba_threading_layer_threads"] = int(nb.max_threads())
    else:
        info["numba"] = None
    return info


def show_config(file=None) -> dict:
    """Print and return the configuration (backends, OpenMP, threads)."""
    info = config_info()
    out = file or sys.stdout
    for k, v in info.items():
        print(f"{k:32s} {v}", file=out)
    if info["cython_extension"] and not info["cython_openmp"]:
        print("note: the Cython extension was built without OpenMP; it runs serially", file=out)
    return info
