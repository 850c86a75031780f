"""Result containers: a single :class:`Estimate` and a columnar :class:`SweepResult`."""
from __future__ import annotations

import json
import math
import os

import numpy as np

from .core import layout as L
from .files import atomic_write

#: output keys of every point, in the order they are reported
OUTPUT_KEYS = (
    "ttft_s", "tpot_s", "e2e_s", "output_tokens_per_s", "output_tokens_per_s_per_chip",
    "prefill_bound", "decode_bound", "weight_bytes_per_chip", "kv_cache_bytes_per_chip", "fits",
    "max_batch", "cost_per_million_output_tokens_usd", "joules_per_output_token",
)
INPUT_KEYS = ("model", "chip", "tp", "pp", "n_chips", "batch", "prompt_tokens", "output_tokens",
              "weight_dtype", "kv_dtype", "act_dtype")
#: bound label by code + 1 (codes run from BOUND_NONE = -1 upward)
_BOUND_LABELS = np.array([L.BOUND_NAMES[c] for c in sorted(L.BOUND_NAMES)], dtype=object)


def _json_value(v):
    if isinstance(v, (np.floating, float)):
        v = float(v)
        return None if not math.isfinite(v) else v
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


class Estimate(dict):
    """One scenario's inputs and outputs; keys are also attributes.

    ``float('nan')`` marks an undefined value (no price, no fit); JSON output
    writes those as ``null``.
    """

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def to_json_dict(self) -> dict:
        return {k: _json_value(v) for k, v in self.items()}

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_json_dict(), **kw)


class SweepResult:
    """Columns of a sweep over a Cartesian grid, evaluated by the roofline kernel.

    Input columns are derived from the grid on access (no copy is held);
    output columns are the kernel's buffers. ``res["tpot_s"]`` returns a numpy
    array, ``len(res)`` the number of points.
    """

    def __init__(self, grid, out, backend: str, n_threads: int):
        self._grid = grid
        self._out = out
        self.backend = backend
        self.n_threads = n_threads

    def __len__(self) -> int:
        return self._grid.size

    @property
    def columns(self) -> tuple[str, ...]:
        return INPUT_KEYS + OUTPUT_KEYS

    def __contains__(self, key) -> bool:
        return key in self.columns

    def __getitem__(self, key: str) -> np.ndarray:
        out = self._out
        if key in L.FLOAT_OUTPUTS:
            return out.out_f[L.FLOAT_OUTPUTS.index(key)]
        if key == "fits":
            return out.fits
        if key == "max_batch":
            return out.max_batch
        if key in ("prefill_bound", "decode_bound"):
            codes = out.out_bound[L.B_PREFILL if key == "prefill_bound" else L.B_DECODE]
            return _BOUND_LABELS[codes.astype(np.intp) + 1]
        if key == "n_chips":
            return self._grid.column("tp", 0, len(self)) * self._grid.column("pp", 0, len(self))
        if key in INPUT_KEYS:
            return self._grid.column(key, 0, len(self))
        raise KeyError(f"unknown column {key!r}; columns are: {', '.join(self.columns)}")

    def bound_codes(self, phase: str) -> np.ndarray:
        """Raw int8 bound codes (``layout.BOUND_*``) for ``"prefill"`` or ``"decode"``."""
        return self._out.out_bound[L.B_PREFILL if phase == "prefill" else L.B_DECODE]

    def row(self, i: int) -> Estimate:
        """Point ``i`` as an :class:`Estimate`."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"point index {i} out of range for {len(self)} points")
        i %= len(self)
        est = Estimate()
        for k in INPUT_KEYS:
            v = self._grid.column(k, i, i + 1)[0] if k != "n_chips" else None
            est[k] = v.item() if hasattr(v, "item") else v
        est["n_chips"] = est["tp"] * est["pp"]
        for k in OUTPUT_KEYS:
            v = self[k][i] if k not in INPUT_KEYS else None
            est[k] = v.item() if hasattr(v, "item") else v
        return est

    def to_pandas(self):
        """A pandas DataFrame; names and bounds as categoricals."""
        import pandas as pd
        data = {}
        for k in INPUT_KEYS:
            col = self._grid.column(k, 0, len(self)) if k != "n_chips" else self["n_chips"]
            if k in ("model", "chip", "weight_dtype", "kv_dtype", "act_dtype"):
                col = pd.Categorical(col)
            data[k] = col
        for k in OUTPUT_KEYS:
            col = self[k]
            if k in ("prefill_bound", "decode_bound"):
                col = pd.Categorical(col, categories=list(_BOUND_LABELS))
            data[k] = col
        return pd.DataFrame(data)

    def write(self, path: str) -> None:
        """Write ``.parquet`` or ``.csv`` atomically: a failure leaves no partial file."""
        ext = os.path.splitext(path)[1].lower()
        if ext not in (".parquet", ".csv"):
            raise ValueError(f"output file must end in .parquet or .csv, got {path!r}")
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise ValueError(f"output directory does not exist: {directory!r}")
        df = self.to_pandas()

        def write(tmp):
            if ext == ".parquet":
                df.to_parquet(tmp, index=False)
            else:
                df.to_csv(tmp, index=False)

        atomic_write(path, write)

    def summary(self) -> dict:
        fits = self._out.fits
        tps = self["output_tokens_per_s_per_chip"]
        return {"points": len(self), "fits": int(fits.sum()),
                "best_output_tokens_per_s_per_chip": float(np.nanmax(tps)) if fits.any() else None,
                "backend": self.backend, "n_threads": self.n_threads}

    def __repr__(self) -> str:
        return f"SweepResult({len(self)} points, backend={self.backend!r})"
