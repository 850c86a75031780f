"""Scenario files (TOML): inputs, correlation, horizon, roadmap, events.

A scenario names a distribution for every input of ``model.INPUTS``; a file may
``extends = "default"`` (or a path) and override only some inputs. Every error
names the key and, where the file defines it, its line.

Format (see ``engine/data/scenarios/default.toml`` and ``docs/market.md``)::

    [scenario]
    name = "default"
    start_year = 2023
    end_year = 2035
    events = ["inference_share_spend[2026] > 0.6"]

    [inputs.tokens_per_day_base]
    dist = "lognormal_ci"   # fixed, normal, lognormal, lognormal_ci, uniform, triangular,
    lo = 1e11               # pert, beta, discrete, empirical, mixture (+ optional
    hi = 6e11               # truncate = [lo, hi])
    source = "..."

    [correlation]
    inputs = ["a", "b"]
    matrix = [[1.0, 0.3], [0.3, 1.0]]
    repair = false

    [[roadmap]]
    year = 2023
    chip = "h100-sxm"
    model = "llama-2-70b"
    accelerator_price_usd = 32500
"""
from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import distributions as dist
from .correlation import CorrelationSpec
from .kernels import layout as L
from .model import INPUTS, MarketModel, parse_event
from .serving import RoadmapEntry, serving_point

__all__ = ["ScenarioError", "Scenario", "load_scenario", "scenario_path", "DEFAULT_SCENARIO"]

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "scenarios"
DEFAULT_SCENARIO = DATA_DIR / "default.toml"


class ScenarioError(ValueError):
    """Invalid scenario file: the message names the file, key and line."""


def scenario_path(name_or_path: str | os.PathLike) -> Path:
    p = Path(name_or_path)
    if p.suffix != ".toml" and (DATA_DIR / f"{name_or_path}.toml").exists():
        return DATA_DIR / f"{name_or_path}.toml"
    return p


class _Locator:
    """Line numbers of tables and keys in a TOML text (tomllib does not keep them)."""

    _HDR = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
    _KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'.]+)\s*=")

    def __init__(self, text: str):
        self.entries: list[tuple[str, int, str, int]] = []  # (table, occurrence, key, line)
        table, occ = "", 0
        counts: dict[str, int] = {}
        for i, line in enumerate(text.splitlines(), start=1):
            m = self._HDR.match(line)
            if m:
                table = m.group(2).replace(" ", "").replace('"', "")
                occ = counts.get(table, -1) + 1 if m.group(1) == "[[" else 0
                counts[table] = occ
                self.entries.append((table, occ, "", i))
                continue
            k = self._KEY.match(line)
            if k:
                key = k.group(1).strip("\"'")
                full_table = table
                if "." in key:  # dotted key: inputs.x.lo = ...
                    head, key = key.rsplit(".", 1)
                    full_table = f"{table}.{head}" if table else head
                self.entries.append((full_table, occ, key, i))

    def line(self, table: str, key: str = "", occurrence: int = 0) -> int | None:
        for t, o, k, ln in self.entries:
            if t == table and k == key and o == occurrence:
                return ln
        if key:
            return self.line(table, "", occurrence)
        return None


@dataclass
class Scenario:
    """A parsed scenario: distributions per input, horizon, roadmap, correlation, events."""

    name: str
    path: Path | None
    years: list
    inputs: dict
    roadmap: list
    extrapolation: dict
    correlation: CorrelationSpec | None = None
    events: list = field(default_factory=list)
    description: str = ""

    def build(self) -> MarketModel:
        """Evaluate the roadmap with the engine and assemble the :class:`MarketModel`."""
        yp, info = build_year_params(self.years, self.roadmap, self.extrapolation)
        return MarketModel(self.inputs, self.years, yp, self.correlation, info, name=self.name)


def build_year_params(years, roadmap: list[RoadmapEntry], extrapolation: dict):
    """Per-year roadmap array (``layout.YEAR_PARAM_NAMES``) and its provenance.

    A year uses the latest roadmap entry whose year is <= it. After the last entry,
    price and power follow ``extrapolation`` growth per year (deterministic) and the
    kernel applies the uncertain ``hardware_gain_per_year``.
    """
    entries = sorted(roadmap, key=lambda e: e.year)
    if not entries:
        raise ScenarioError("scenario has no [[roadmap]] entries")
    if years[0] < entries[0].year:
        raise ScenarioError(f"roadmap starts in {entries[0].year}, after the horizon start {years[0]}")
    points = {e.year: serving_point(e) for e in entries}
    last = entries[-1].year
    pg = float(extrapolation.get("price_growth_per_year", 1.0))
    wg = float(extrapolation.get("power_growth_per_year", 1.0))
    yp = np.zeros((len(years), L.N_YEAR_PARAMS))
    info = []
    for t, y in enumerate(years):
        e = [r for r in entries if r.year <= y][-1]
        p = points[e.year]
        beyond = max(0, y - last)
        yp[t] = (y, p.throughput_tokens_per_s_per_chip, p.peak_flops_per_chip,
                 e.accelerator_price_usd * pg ** beyond, p.power_w * wg ** beyond, beyond)
        info.append({"year": y, "chip": e.chip, "model": e.model, "tp": p.tp, "batch": p.batch,
                     "tpot_s": p.tpot_s, "throughput_tokens_per_s_per_chip": p.throughput_tokens_per_s_per_chip,
                     "peak_flops_per_chip": p.peak_flops_per_chip, "accelerator_price_usd": yp[t, 3],
                     "accelerator_power_w": yp[t, 4], "years_beyond_roadmap": beyond})
    return yp, info


_DIST_KEYS = {
    "fixed": ("value",),
    "normal": ("mean", "sd"),
    "lognormal": ("mu", "sigma"),
    "lognormal_ci": ("lo", "hi"),
    "uniform": ("lo", "hi"),
    "triangular": ("lo", "mode", "hi"),
    "pert": ("lo", "mode", "hi"),
    "beta": ("a", "b"),
    "discrete": ("values",),
    "empirical": ("samples",),
    "mixture": ("components", "weights"),
}
_OPTIONAL = {"pert": ("shape",), "beta": ("lo", "hi"), "discrete": ("p",)}
_META = ("source", "description", "unit", "truncate", "dist", "note")


def _make_dist(name: str, spec, where) -> dist.Distribution:
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return dist.fixed(spec, name=name, unit=INPUTS[name].unit if name in INPUTS else "1")
    if not isinstance(spec, dict):
        raise ScenarioError(f"{where(None)}: must be a number or a table with 'dist', got {spec!r}")
    kind = spec.get("dist")
    if kind not in _DIST_KEYS:
        raise ScenarioError(f"{where('dist')}: dist must be one of {', '.join(_DIST_KEYS)}, got {kind!r}")
    allowed = set(_DIST_KEYS[kind]) | set(_OPTIONAL.get(kind, ())) | set(_META)
    extra = [k for k in spec if k not in allowed]
    if extra:
        raise ScenarioError(f"{where(extra[0])}: unknown key {extra[0]!r} for dist {kind!r} "
                            f"(expected {', '.join(_DIST_KEYS[kind])})")
    missing = [k for k in _DIST_KEYS[kind] if k not in spec]
    if missing:
        raise ScenarioError(f"{where('dist')}: dist {kind!r} needs {', '.join(missing)}")
    meta = dict(name=name, unit=INPUTS[name].unit if name in INPUTS else spec.get("unit", "1"),
                description=spec.get("description", INPUTS[name].description if name in INPUTS else ""),
                source=spec.get("source", ""))
    args = {k: spec[k] for k in _DIST_KEYS[kind] + _OPTIONAL.get(kind, ()) if k in spec}
    try:
        if kind == "mixture":
            comps = args["components"]
            if not isinstance(comps, list):
                raise ValueError("components must be an array of tables")
            d = dist.mixture([_make_dist(name, c, lambda k: f"{where('components')}") for c in comps],
                             args["weights"], **meta)
        elif kind == "empirical":
            d = dist.empirical(args["samples"], **meta)
        else:
            d = getattr(dist, kind)(**args, **meta)
        if "truncate" in spec:
            tr = spec["truncate"]
            if not (isinstance(tr, list) and len(tr) == 2):
                raise ValueError(f"truncate must be [lo, hi], got {tr!r}")
            d = dist.truncated(d, float(tr[0]), float(tr[1]), **meta)
    except ScenarioError:
        raise
    except (ValueError, TypeError) as exc:
        key = None
        for k in list(args) + ["truncate"]:
            if re.search(rf"\b{k}\b", str(exc)):
                key = k
                break
        raise ScenarioError(f"{where(key)}: {exc}") from None
    return d


def _load_toml(path: Path) -> tuple[dict, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario {str(path)!r}: {exc.strerror or exc}") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: invalid TOML: {exc}") from None


def load_scenario(path: str | os.PathLike = DEFAULT_SCENARIO, overrides: dict | None = None,
                  _seen: tuple = ()) -> Scenario:
    """Read and validate a scenario file.

    Parameters
    ----------
    path : path or name
        A ``.toml`` file or the name of a bundled scenario (``"default"``).
    overrides : dict, optional
        ``{input: number or dist table}`` applied after the file.
    """
    p = scenario_path(path)
    data, text = _load_toml(p)
    loc = _Locator(text)

    def at(table, key=None, occ=0):
        ln = loc.line(table, key or "", occ)
        label = f"{table}.{key}" if key else table
        return f"{p.name}: {label}" + (f" (line {ln})" if ln else "")

    known_top = {"scenario", "inputs", "correlation", "roadmap", "roadmap_extrapolation", "extends"}
    for k in data:
        if k not in known_top:
            raise ScenarioError(f"{at(k)}: unknown section {k!r} (expected {', '.join(sorted(known_top))})")
    base = None
    if "extends" in data:
        ext = data["extends"]
        target = scenario_path(ext) if not str(ext).endswith(".toml") else (p.parent / ext)
        if target.resolve() in _seen:
            raise ScenarioError(f"{at('extends')}: circular extends {ext!r}")
        base = load_scenario(target, None, _seen + (p.resolve(),))

    sc = data.get("scenario", {})
    if not isinstance(sc, dict):
        raise ScenarioError(f"{at('scenario')}: must be a table")
    allowed_sc = {"name", "description", "start_year", "end_year", "events"}
    for k in sc:
        if k not in allowed_sc:
            raise ScenarioError(f"{at('scenario', k)}: unknown key {k!r}")
    name = sc.get("name", base.name if base else p.stem)
    start = sc.get("start_year", base.years[0] if base else None)
    end = sc.get("end_year", base.years[-1] if base else None)
    for key, v in (("start_year", start), ("end_year", end)):
        if not isinstance(v, int) or isinstance(v, bool) or not 1900 <= v <= 2200:
            raise ScenarioError(f"{at('scenario', key)}: {key} must be an integer year in [1900, 2200], got {v!r}")
    if end < start:
        raise ScenarioError(f"{at('scenario', 'end_year')}: the horizon ends ({end}) before it starts ({start})")
    years = list(range(start, end + 1))

    inputs = dict(base.inputs) if base else {}
    raw_inputs = data.get("inputs", {})
    if not isinstance(raw_inputs, dict):
        raise ScenarioError(f"{at('inputs')}: must be a table")
    for k, spec in raw_inputs.items():
        if k not in INPUTS:
            close = [n for n in INPUTS if n.split("_")[0] == k.split("_")[0]]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ScenarioError(f"{at('inputs.' + k)}: unknown input {k!r}{hint}")
        inputs[k] = _make_dist(k, spec, lambda key, k=k: at(f"inputs.{k}", key))
    for k, spec in (overrides or {}).items():
        if k not in INPUTS:
            raise ScenarioError(f"override: unknown input {k!r}")
        inputs[k] = _make_dist(k, spec, lambda key, k=k: f"override {k}" + (f".{key}" if key else ""))
    missing = [k for k in INPUTS if k not in inputs]
    if missing:
        raise ScenarioError(f"{p.name}: [inputs] is missing {', '.join(missing)}")

    roadmap = list(base.roadmap) if base else []
    if "roadmap" in data:
        rm = data["roadmap"]
        if not isinstance(rm, list):
            raise ScenarioError(f"{at('roadmap')}: must be an array of tables [[roadmap]]")
        roadmap = []
        fields = set(RoadmapEntry.__dataclass_fields__)
        for i, e in enumerate(rm):
            for k in e:
                if k not in fields:
                    raise ScenarioError(f"{at('roadmap', k, i)}: unknown roadmap key {k!r}")
            for k in ("year", "chip", "model", "accelerator_price_usd"):
                if k not in e:
                    raise ScenarioError(f"{at('roadmap', '', i)}: roadmap entry {i} needs {k!r}")
            price = e["accelerator_price_usd"]
            if not isinstance(price, (int, float)) or isinstance(price, bool) or not (price > 0 and math.isfinite(price)):
                raise ScenarioError(f"{at('roadmap', 'accelerator_price_usd', i)}: must be a number > 0, got {price!r}")
            if "tpot_slo_s" in e and not (isinstance(e["tpot_slo_s"], (int, float)) and e["tpot_slo_s"] > 0):
                raise ScenarioError(f"{at('roadmap', 'tpot_slo_s', i)}: must be > 0, got {e['tpot_slo_s']!r}")
            kw = dict(e)
            for k in ("tp", "batch"):
                if k in kw:
                    kw[k] = tuple(kw[k]) if isinstance(kw[k], list) else (kw[k],)
            roadmap.append(RoadmapEntry(**kw))
        years_rm = [r.year for r in roadmap]
        if len(set(years_rm)) != len(years_rm):
            raise ScenarioError(f"{at('roadmap')}: duplicate roadmap years {years_rm}")
    extrap = dict(base.extrapolation) if base else {}
    extrap.update(data.get("roadmap_extrapolation", {}))
    for k, v in extrap.items():
        if k not in ("price_growth_per_year", "power_growth_per_year", "source"):
            raise ScenarioError(f"{at('roadmap_extrapolation', k)}: unknown key {k!r}")
        if k != "source" and not (isinstance(v, (int, float)) and v > 0):
            raise ScenarioError(f"{at('roadmap_extrapolation', k)}: must be a number > 0, got {v!r}")

    corr = base.correlation if base else None
    if "correlation" in data:
        c = data["correlation"]
        names = c.get("inputs")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ScenarioError(f"{at('correlation', 'inputs')}: must be a list of input names")
        for n in names:
            if n not in INPUTS:
                raise ScenarioError(f"{at('correlation', 'inputs')}: unknown input {n!r}")
        matrix = c.get("matrix")
        if "pairs" in c:
            matrix = np.eye(len(names))
            for i, pr in enumerate(c["pairs"]):
                try:
                    a, b, r = pr
                    ia, ib = names.index(a), names.index(b)
                except (ValueError, TypeError):
                    raise ScenarioError(f"{at('correlation', 'pairs')}: pair {i} must be [input, input, rho] "
                                        f"with inputs listed in correlation.inputs, got {pr!r}") from None
                matrix[ia, ib] = matrix[ib, ia] = float(r)
        if matrix is None:
            raise ScenarioError(f"{at('correlation')}: needs 'matrix' or 'pairs'")
        try:
            corr = CorrelationSpec(names, np.asarray(matrix, dtype=float), repair=bool(c.get("repair", False)))
        except (ValueError, TypeError) as exc:
            raise ScenarioError(f"{at('correlation', 'matrix')}: {exc}") from None
        for n in names:
            if not inputs[n].is_random:
                raise ScenarioError(f"{at('correlation', 'inputs')}: input {n!r} is fixed and cannot be correlated")

    events = list(base.events) if base else []
    if "events" in sc:
        if not isinstance(sc["events"], list):
            raise ScenarioError(f"{at('scenario', 'events')}: must be a list of strings")
        events = []
        for ev in sc["events"]:
            try:
                e = parse_event(str(ev))
            except ValueError as exc:
                raise ScenarioError(f"{at('scenario', 'events')}: {exc}") from None
            if e.year not in years:
                raise ScenarioError(f"{at('scenario', 'events')}: event {ev!r} is outside the horizon {start}-{end}")
            events.append(e)
    return Scenario(name=name, path=p, years=years, inputs=inputs, roadmap=roadmap, extrapolation=extrap,
                    correlation=corr, events=events, description=sc.get("description", ""))
