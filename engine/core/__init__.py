"""Kernel layer: per-point roofline physics over struct-of-arrays inputs.

Design
------
* Everything here takes C-contiguous arrays in canonical units (FLOP, byte,
  second, USD, joule) and imports nothing from the definitions, catalogs,
  pandas or the CLI (the import direction is one way: ``engine.api`` ->
  ``engine.core``; ``tests/test_layers.py`` enforces it).
* :mod:`engine.core.layout` fixes the column layout of the small model and
  chip tables and the order of the output rows: the kernel ABI.
* :mod:`engine.core.reference` is the readable NumPy specification of every
  formula and the test oracle; :mod:`engine.core.numba_kernels` and the
  Cython extension ``engine._ext._roofline`` are compiled twins.
* :mod:`engine.core.dispatch` is the explicit backend registry
  (``backend="cython" | "numba" | "numpy"``).
"""
