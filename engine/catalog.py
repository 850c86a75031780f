"""Chip and model catalogs: dated, sourced data files and their loader.

Design
------
* The built-in catalogs are ``engine/data/chips.toml`` and
  ``engine/data/models.toml``. Figures are written in spec-sheet units
  (TFLOP/s, GB, TB/s, GB/s, us, W, USD) as inline tables
  ``{ value = ..., source = "...", note = "...", estimate = true, unit = "GiB" }``
  and converted once, here, into the canonical units of :class:`engine.chip.Chip`
  (FLOP/s, byte, byte/s, s, W, USD, USD/h). Nothing downstream sees spec-sheet units.
* A figure without a source is rejected; a figure no source gives is left out
  (the ``Chip`` field stays ``None``), never guessed.
* User catalogs (TOML, JSON or YAML, same schema) add entries or override
  built-ins of the same name. :func:`load_catalog` registers them for later
  :func:`get_chip` / :func:`get_model` calls; :func:`use_catalog` does the same
  for the duration of a ``with`` block; :func:`read_catalog` only parses.
* An entry may start from another with ``base = "NAME"`` and override some
  fields (``[[chip]] name = "h100-cheap"  base = "h100-sxm"  hourly_usd = {...}``).
* Every error is a one-line ``ValueError`` naming the file, the entry, the
  field and the value.
"""
from __future__ import annotations

import contextlib
import dataclasses
import difflib
import json
import math
import os
import tomllib
from functools import lru_cache
from importlib import resources
from pathlib import Path

from .chip import KINDS, Chip
from .files import atomic_write
from .model import Model

__all__ = [
    "CHIP_FIGURES", "calibration", "catalog_date", "chip_family", "chips", "get_chip",
    "get_model", "ideal_chip", "load_catalog", "models", "read_catalog", "register",
    "reset_catalog", "use_calibration", "use_catalog", "CALIBRATED_BY_DEFAULT",
]

# ----------------------------------------------------------------- units
#: unit name -> factor to the canonical unit, per dimension.
UNITS: dict[str, dict[str, float]] = {
    "rate": {"TFLOP/s": 1e12, "TOP/s": 1e12, "PFLOP/s": 1e15, "POP/s": 1e15, "GFLOP/s": 1e9,
             "FLOP/s": 1.0},
    "bytes": {"B": 1.0, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
              "KiB": 2.0**10, "MiB": 2.0**20, "GiB": 2.0**30, "TiB": 2.0**40},
    "bandwidth": {"B/s": 1.0, "MB/s": 1e6, "GB/s": 1e9, "TB/s": 1e12,
                  "MiB/s": 2.0**20, "GiB/s": 2.0**30, "TiB/s": 2.0**40},
    "time": {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9},
    "power": {"W": 1.0, "kW": 1e3},
    "usd": {"USD": 1.0},
    "usd_per_hour": {"USD/h": 1.0},
    "ratio": {"1": 1.0},
    "count": {"chips": 1.0},
}

#: catalog key -> (Chip field, dimension, default unit). Keys carry their
#: spec-sheet unit in the name; ``unit = "..."`` in the figure overrides it.
CHIP_FIGURES: dict[str, tuple[str, str, str]] = {
    "peak_tflops_fp32": ("peak_flops_fp32", "rate", "TFLOP/s"),
    "peak_tflops_bf16": ("peak_flops_bf16", "rate", "TFLOP/s"),
    "peak_tflops_fp8": ("peak_flops_fp8", "rate", "TFLOP/s"),
    "peak_tops_int8": ("peak_ops_int8", "rate", "TOP/s"),
    "peak_tflops_fp4": ("peak_flops_fp4", "rate", "TFLOP/s"),
    "memory_gb": ("memory_bytes", "bytes", "GB"),
    "memory_bandwidth_tbs": ("memory_bandwidth", "bandwidth", "TB/s"),
    "sram_mb": ("sram_bytes", "bytes", "MB"),
    "sram_bandwidth_tbs": ("sram_bandwidth", "bandwidth", "TB/s"),
    "link_bandwidth_gbs": ("link_bandwidth", "bandwidth", "GB/s"),
    "link_latency_us": ("link_latency", "time", "us"),
    "scaleup_domain": ("scaleup_domain", "count", "chips"),
    "scaleout_bandwidth_gbs": ("scaleout_bandwidth", "bandwidth", "GB/s"),
    "scaleout_latency_us": ("scaleout_latency", "time", "us"),
    "tdp_w": ("tdp", "power", "W"),
    "price_usd": ("price", "usd", "USD"),
    "hourly_usd": ("hourly_price", "usd_per_hour", "USD/h"),
    "compute_efficiency": ("compute_efficiency", "ratio", "1"),
    "memory_efficiency": ("memory_efficiency", "ratio", "1"),
    "network_efficiency": ("network_efficiency", "ratio", "1"),
    "step_overhead_us": ("step_overhead", "time", "us"),
    "memory_reserve_fraction": ("memory_reserve_fraction", "ratio", "1"),
}
_CHIP_FIELD_TO_KEY = {v[0]: k for k, v in CHIP_FIGURES.items()}
_CHIP_TEXT = {"full_name": str, "vendor": str, "kind": str, "memory_type": str,
              "source_quality": str, "notes": str}
_CHIP_INT = {"year"}

#: Published counts in models.toml [billion parameters] -> Model field.
MODEL_FIGURES: dict[str, str] = {
    "published_total_params_b": "published_total_params",
    "published_active_params_b": "published_active_params",
}
_MODEL_FIELD_TO_KEY = {v: k for k, v in MODEL_FIGURES.items()}
_FIGURE_KEYS = {"value", "source", "note", "estimate", "unit"}
_NOT_MODEL_KEYS = {"name", "sources", "published_total_params", "published_active_params"}


def _model_field_types() -> dict[str, type]:
    out = {}
    for f in dataclasses.fields(Model):
        if f.name in _NOT_MODEL_KEYS:
            continue
        t = str(f.type)
        out[f.name] = bool if t == "bool" else int if t == "int" else str
    return out


_MODEL_FIELDS = _model_field_types()


# ------------------------------------------------------------ file reading
def _read_document(path: Path) -> dict:
    """Parse a TOML, JSON or YAML file into a dict (errors name the file)."""
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ValueError(f"cannot read catalog file {str(path)!r}: {e.strerror or e}") from None
    try:
        if suffix == ".toml":
            doc = tomllib.loads(text)
        elif suffix == ".json":
            doc = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise ValueError(f"{path}: YAML catalogs need PyYAML (pip install pyyaml); "
                                 "or write the file as TOML or JSON") from None
            doc = yaml.safe_load(text)
        else:
            raise ValueError(f"{path}: catalog files must end in .toml, .json, .yaml or .yml")
    except ValueError as e:
        if str(e).startswith(str(path)):
            raise
        msg = " ".join(str(e).split())
        raise ValueError(f"{path}: not a valid {suffix[1:].upper()} file: {msg}") from None
    except Exception as e:  # yaml.YAMLError and friends
        msg = " ".join(str(e).split())
        raise ValueError(f"{path}: not a valid {suffix[1:].upper()} file: {msg}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: a catalog must be a table/object with [[chip]] and/or "
                         f"[[model]] entries, got {type(doc).__name__}")
    return doc


def _entries(doc: dict, key: str, where: str) -> list:
    items = doc.get(key, [])
    if isinstance(items, dict):  # a single table written as [chip] / {"chip": {...}}
        items = [items]
    if not isinstance(items, list) or not all(isinstance(e, dict) for e in items):
        raise ValueError(f"{where}: '{key}' must be a list of tables ([[{key}]])")
    return items


# ------------------------------------------------------------ conversion
def _figure(raw, where: str, key: str, dimension: str, default_unit: str):
    """Validate one ``{value, source, ...}`` figure; return (canonical value, source, estimate)."""
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: field '{key}' must be a table "
                         f"{{ value = ..., source = \"...\" }}, got {raw!r}")
    extra = set(raw) - _FIGURE_KEYS
    if extra:
        raise ValueError(f"{where}: field '{key}' has unknown key(s) {', '.join(sorted(extra))} "
                         f"(allowed: {', '.join(sorted(_FIGURE_KEYS))})")
    value = raw.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where}: field '{key}' value must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{where}: field '{key}' value must be finite, got {value!r}")
    source = raw.get("source")
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"{where}: field '{key}' needs a non-empty 'source' "
                         f"(a figure without a source is left out, never guessed)")
    note = raw.get("note", "")
    if not isinstance(note, str):
        raise ValueError(f"{where}: field '{key}' note must be a string, got {note!r}")
    estimate = raw.get("estimate", False)
    if not isinstance(estimate, bool):
        raise ValueError(f"{where}: field '{key}' estimate must be true or false, got {estimate!r}")
    unit = raw.get("unit", default_unit)
    units = UNITS[dimension]
    if unit not in units:
        raise ValueError(f"{where}: field '{key}' unit must be one of {', '.join(units)}, "
                         f"got {unit!r}")
    text = source.strip() + (f" — {note.strip()}" if note.strip() else "")
    return _scale(value, units[unit]), text, estimate


def _scale(value, factor: float) -> float:
    """``value * factor`` without binary round-off for decimal factors (2.039 TB/s -> 2.039e12)."""
    exp = math.log10(factor)
    if exp == round(exp):
        return float(f"{value!r}e{int(round(exp))}")
    return float(value) * factor


def _text(raw, where: str, key: str, typ: type):
    if typ is str and not isinstance(raw, str):
        raise ValueError(f"{where}: field '{key}' must be a string, got {raw!r}")
    return raw


def _unknown(where: str, key: str, allowed) -> ValueError:
    close = difflib.get_close_matches(key, list(allowed), n=3, cutoff=0.6)
    hint = f"; did you mean: {', '.join(close)}?" if close else ""
    return ValueError(f"{where}: unknown field '{key}'{hint}")


def _entry_name(entry: dict, where: str, kind: str) -> str:
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{where}: every [[{kind}]] entry needs a non-empty string 'name', "
                         f"got {name!r}")
    name = name.strip()
    if name != name.lower() or any(c.isspace() for c in name):
        raise ValueError(f"{where}: {kind} name must be lower-case without spaces "
                         f"(hyphenated), got {name!r}")
    return name


def _chip_from_entry(entry: dict, file: str, known: dict[str, Chip]) -> Chip:
    name = _entry_name(entry, file, "chip")
    where = f"{file}: chip '{name}'"
    kw: dict = {}
    sources: dict = {}
    estimates: set = set()
    base = entry.get("base")
    if base is not None:
        if not isinstance(base, str) or base.lower() not in known:
            raise ValueError(f"{where}: field 'base' names no known chip: {base!r}")
        b = known[base.lower()]
        kw = {f.name: getattr(b, f.name) for f in dataclasses.fields(Chip)
              if f.name not in ("sources", "estimates")}
        sources = dict(b.sources)
        estimates = set(b.estimates)
    kw["name"] = name
    for key, raw in entry.items():
        if key in ("name", "base"):
            continue
        if key in CHIP_FIGURES:
            field, dim, unit = CHIP_FIGURES[key]
            value, text, est = _figure(raw, where, key, dim, unit)
            kw[field] = value
            sources[field] = text
            estimates.discard(field)
            if est:
                estimates.add(field)
        elif key in _CHIP_TEXT:
            kw[key] = _text(raw, where, key, str)
        elif key in _CHIP_INT:
            if isinstance(raw, bool) or not isinstance(raw, int):
                raise ValueError(f"{where}: field '{key}' must be an integer, got {raw!r}")
            kw[key] = raw
        else:
            raise _unknown(where, key, [*CHIP_FIGURES, *_CHIP_TEXT, *_CHIP_INT, "name", "base"])
    if kw.get("kind", "both") not in KINDS:
        raise ValueError(f"{where}: field 'kind' must be one of {', '.join(KINDS)}, "
                         f"got {kw.get('kind')!r}")
    try:
        return Chip(**kw, sources=sources, estimates=frozenset(estimates))
    except ValueError as e:
        raise ValueError(f"{file}: {_with_key(str(e), _CHIP_FIELD_TO_KEY)}") from None


def _with_key(msg: str, field_to_key: dict) -> str:
    """Add the catalog key to a Chip/Model validation message (``memory_bytes (memory_gb)``)."""
    head = msg.split(" ", 1)[0]
    if head in field_to_key:
        return f"{head} (catalog field '{field_to_key[head]}') {msg.split(' ', 1)[1]}"
    return msg


def _model_from_entry(entry: dict, file: str, known: dict[str, Model]) -> Model:
    name = _entry_name(entry, file, "model")
    where = f"{file}: model '{name}'"
    kw: dict = {}
    sources: dict = {}
    base = entry.get("base")
    if base is not None:
        if not isinstance(base, str) or base.lower() not in known:
            raise ValueError(f"{where}: field 'base' names no known model: {base!r}")
        b = known[base.lower()]
        kw = {f.name: getattr(b, f.name) for f in dataclasses.fields(Model) if f.name != "sources"}
        sources = dict(b.sources)
    kw["name"] = name
    for key, raw in entry.items():
        if key in ("name", "base"):
            continue
        if key in MODEL_FIGURES:
            value, text, est = _figure(raw, where, key, "ratio", "1")
            field = MODEL_FIGURES[key]
            if value <= 0:
                raise ValueError(f"{where}: field '{key}' must be > 0, got {raw.get('value')!r}")
            kw[field] = _scale(raw["value"], 1e9)
            sources[field] = text + (" (estimate)" if est else "")
        elif key == "sources":
            if not isinstance(raw, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in raw.items()):
                raise ValueError(f"{where}: field 'sources' must be a table of non-empty strings")
            for k in raw:
                if k != "architecture" and k not in _MODEL_FIELDS:
                    raise _unknown(f"{where}: sources", k, ["architecture", *_MODEL_FIELDS])
            sources.update(raw)
        elif key in _MODEL_FIELDS:
            typ = _MODEL_FIELDS[key]
            ok = (isinstance(raw, bool) if typ is bool else
                  isinstance(raw, int) and not isinstance(raw, bool) if typ is int else
                  isinstance(raw, str))
            if not ok:
                raise ValueError(f"{where}: field '{key}' must be "
                                 f"{ {bool: 'true or false', int: 'an integer', str: 'a string'}[typ]}"
                                 f", got {raw!r}")
            kw[key] = raw
        else:
            raise _unknown(where, key, [*_MODEL_FIELDS, *MODEL_FIGURES, "sources", "name", "base"])
    missing = [f.name for f in dataclasses.fields(Model)
               if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
               and f.name not in kw]
    if missing:
        raise ValueError(f"{where}: missing required field(s) {', '.join(missing)}")
    if "architecture" not in sources:
        raise ValueError(f"{where}: needs [model.sources] architecture = \"<where the "
                         f"dimensions come from>\"")
    try:
        return Model(**kw, sources=sources)
    except ValueError as e:
        raise ValueError(f"{file}: {e}") from None


def _parse(doc: dict, file: str, base_chips: dict, base_models: dict) -> dict:
    """Build entries of one document. ``base_*`` are the entries ``base = ...`` may name."""
    allowed = {"catalog", "catalog_date", "chip", "model"}
    extra = set(doc) - allowed
    if extra:
        raise ValueError(f"{file}: unknown top-level key(s) {', '.join(sorted(extra))} "
                         f"(allowed: {', '.join(sorted(allowed))})")
    out_chips: dict[str, Chip] = {}
    out_models: dict[str, Model] = {}
    for kind, out, known, build in (("chip", out_chips, base_chips, _chip_from_entry),
                                    ("model", out_models, base_models, _model_from_entry)):
        for entry in _entries(doc, kind, file):
            obj = build(entry, file, {**known, **out})
            if obj.name in out:
                raise ValueError(f"{file}: duplicate {kind} name '{obj.name}'")
            out[obj.name] = obj
    return {"chips": out_chips, "models": out_models,
            "catalog_date": str(doc.get("catalog_date", ""))}


# ------------------------------------------------------------ built-ins
@lru_cache(maxsize=None)
def _builtin(kind: str) -> dict:
    fname = {"chips": "chips.toml", "models": "models.toml"}[kind]
    ref = resources.files("engine") / "data" / fname
    with resources.as_file(ref) as p:
        doc = _read_document(Path(p))
    return _parse(doc, f"engine/data/{fname}", {}, {})


def catalog_date(kind: str) -> str:
    """Date the figures of a built-in catalog were gathered (``"chips"`` or ``"models"``)."""
    if kind not in ("chips", "models"):
        raise ValueError(f"kind must be 'chips' or 'models', got {kind!r}")
    return _builtin(kind)["catalog_date"]


# ------------------------------------------------------------ registry
#: user entries layered over the built-ins, in load order (latest wins).
_user_chips: dict[str, Chip] = {}
_user_models: dict[str, Model] = {}


def _merged(builtin: dict, user: dict) -> dict:
    out = dict(builtin)
    out.update(user)  # same name keeps its built-in position, new names go last
    return out


def chips() -> dict[str, Chip]:
    """Every known chip by name: built-ins in file order, then user entries."""
    return _merged(_builtin("chips")["chips"], _user_chips)


def models() -> dict[str, Model]:
    """Every known model by name: built-ins in file order, then user entries."""
    return _merged(_builtin("models")["models"], _user_models)


def read_catalog(path) -> dict:
    """Parse and validate a user catalog without registering it.

    Parameters
    ----------
    path : str or os.PathLike
        TOML, JSON or YAML file with ``[[chip]]`` and/or ``[[model]]`` entries
        in the schema of the built-in catalogs (docs/catalog.md).

    Returns
    -------
    dict
        ``{"chips": {name: Chip}, "models": {name: Model}, "catalog_date": str}``.
    """
    p = Path(os.fspath(path))
    return _parse(_read_document(p), str(p), chips(), models())


def load_catalog(path) -> dict:
    """Read a user catalog and register its entries for later lookups.

    Entries with a built-in name override it; new names are added. Returns
    the entries read (see :func:`read_catalog`).
    """
    cat = read_catalog(path)
    _user_chips.update(cat["chips"])
    _user_models.update(cat["models"])
    return cat


def register(*objs) -> None:
    """Add (or override by name) :class:`Chip` / :class:`Model` objects for later lookups.

    For ``infercast models add config.json``: ``register(Model.from_hf_config(path))``.
    """
    for obj in objs:
        if isinstance(obj, Chip):
            _user_chips[obj.name] = obj
        elif isinstance(obj, Model):
            _user_models[obj.name] = obj
        else:
            raise ValueError(f"register takes Chip or Model objects, got {type(obj).__name__}")


def model_entry_toml(model: Model, source: str) -> str:
    """A ``[[model]]`` entry of the catalog schema for ``model`` (TOML text).

    Every architecture field that differs from the :class:`Model` default is
    written; ``source`` is recorded as the architecture's source.
    """
    import dataclasses
    import json

    lines = ["[[model]]", f"name = {json.dumps(model.name)}"]
    for f in dataclasses.fields(Model):
        if f.name in ("name", "sources", "published_total_params", "published_active_params"):
            continue
        v = getattr(model, f.name)
        if f.default is not dataclasses.MISSING and v == f.default:
            continue
        if isinstance(v, bool):
            lines.append(f"{f.name} = {'true' if v else 'false'}")
        elif isinstance(v, int):
            lines.append(f"{f.name} = {v}")
        elif isinstance(v, str):
            lines.append(f"{f.name} = {json.dumps(v)}")
    lines += ["[model.sources]", f"architecture = {json.dumps(source)}"]
    return "\n".join(lines) + "\n"


def add_model_to_catalog(model: Model, path, source: str) -> None:
    """Append ``model`` to the user catalog ``path`` (created if missing), atomically.

    The new file is parsed and validated before it replaces the old one, so a
    failure leaves the catalog as it was. A name already in the file is an error.
    """

    p = Path(os.fspath(path))
    if p.suffix.lower() != ".toml":
        raise ValueError(f"models add writes TOML catalogs; path must end in .toml, got {str(p)!r}")
    old = p.read_text() if p.exists() else ""
    if old:
        existing = read_catalog(p)["models"]
        if model.name in existing:
            raise ValueError(f"{p}: already has a model named {model.name!r}; choose another "
                             f"with --name")
    new = (old.rstrip("\n") + "\n\n" if old else "") + model_entry_toml(model, source)
    directory = p.parent if str(p.parent) else Path(".")
    if not directory.is_dir():
        raise ValueError(f"catalog directory does not exist: {str(directory)!r}")
    def write(tmp):
        Path(tmp).write_text(new)
        read_catalog(tmp)          # the whole new file must parse and validate

    atomic_write(p, write)


def reset_catalog() -> None:
    """Forget every user entry (back to the built-in catalogs)."""
    _user_chips.clear()
    _user_models.clear()


@contextlib.contextmanager
def use_catalog(path):
    """Register a user catalog for the duration of a ``with`` block."""
    saved = dict(_user_chips), dict(_user_models)
    try:
        yield load_catalog(path)
    finally:
        _user_chips.clear()
        _user_chips.update(saved[0])
        _user_models.clear()
        _user_models.update(saved[1])


# ------------------------------------------------------------ lookups
def _unknown_name(kind: str, x, names) -> ValueError:
    q = str(x).strip().lower()
    # names that extend what was typed ('h100' -> 'h100-sxm, h100-pcie') first
    close = [n for n in names if n.startswith(q)][:5] if q else []
    if not close:
        close = difflib.get_close_matches(q, list(names), n=3, cutoff=0.5)
    hint = f"; did you mean: {', '.join(close)}?" if close else f" (see `infercast {kind}s`)"
    return ValueError(f"unknown {kind} {str(x)!r}{hint}")


# ------------------------------------------------------------ calibration
#: fields the calibration sets; a catalog entry that gives any of them keeps its own values
_EFFICIENCY_FIELDS = ("compute_efficiency", "memory_efficiency", "network_efficiency",
                      "step_overhead")
#: Whether names resolve to calibrated chips when ``get_chip(calibrated=None)``: the
#: fitted factors of engine/data/calibration.toml are the default (issue 3); pass
#: ``calibrated=False``, ``--ideal`` or use ``use_calibration(False)`` for the ideal roofline.
CALIBRATED_BY_DEFAULT = True
_calibration_enabled = [CALIBRATED_BY_DEFAULT]


@lru_cache(maxsize=None)
def calibration() -> dict:
    """The shipped calibration (``engine/data/calibration.toml``), parsed once.

    Returns
    -------
    dict
        ``{"fit_date", "data_sha256", "families": {family: [chip names]},
        "factors": {family: {"compute_efficiency", "memory_efficiency",
        "network_efficiency", "step_overhead_us", ...}}, ...}``; an empty
        ``factors`` table when the file is absent.
    """
    ref = resources.files("engine") / "data" / "calibration.toml"
    if not ref.is_file():
        return {"families": {}, "factors": {}}
    doc = tomllib.loads(ref.read_text(encoding="utf-8"))
    doc.setdefault("families", {})
    doc.setdefault("factors", {})
    return doc


def chip_family(name: str) -> str | None:
    """Calibration family of a catalog chip name (``"h100-sxm"`` -> ``"nvidia-hopper"``)."""
    key = str(name).strip().lower()
    for fam, members in calibration()["families"].items():
        if key in members:
            return fam
    return None


@lru_cache(maxsize=256)
def _calibrated(chip: Chip) -> Chip:
    """``chip`` with its family's fitted factors, unless its entry sets any factor itself."""
    fam = chip_family(chip.name)
    fac = calibration()["factors"].get(fam) if fam else None
    if not fac or any(f in chip.sources for f in _EFFICIENCY_FIELDS):
        return chip
    src = (f"engine/data/calibration.toml (family '{fam}', fit {calibration().get('fit_date', '')}"
           f", data sha256 {str(calibration().get('data_sha256', ''))[:12]})")
    out = chip.with_efficiency(compute=fac["compute_efficiency"], memory=fac["memory_efficiency"],
                               network=fac["network_efficiency"],
                               step_overhead=fac["step_overhead_us"] * 1e-6)
    sources = dict(chip.sources)
    sources.update({f: src for f in _EFFICIENCY_FIELDS})
    return dataclasses.replace(out, sources=sources,
                               estimates=frozenset(chip.estimates | set(_EFFICIENCY_FIELDS)))


def ideal_chip(x) -> Chip:
    """A catalog chip on the ideal roofline (factors 1, no overhead), or a :class:`Chip` as is."""
    return get_chip(x, calibrated=False)


@contextlib.contextmanager
def use_calibration(enabled: bool):
    """Inside the block, names resolve to calibrated (True) or ideal (False) built-in chips."""
    saved = _calibration_enabled[0]
    _calibration_enabled[0] = bool(enabled)
    try:
        yield
    finally:
        _calibration_enabled[0] = saved


def get_chip(x, calibrated: bool | None = None) -> Chip:
    """A chip by catalog name (case-insensitive), or a :class:`Chip` returned as is.

    Parameters
    ----------
    x : str or Chip
    calibrated : bool or None
        True: built-in chips of a calibrated family get the fitted efficiency
        factors of ``engine/data/calibration.toml``; False: the ideal roofline
        (factors 1, no overhead); None: the setting of :func:`use_calibration`
        (default :data:`CALIBRATED_BY_DEFAULT`). A built-in entry that sets any
        efficiency field itself keeps its values; user-catalog entries and
        :class:`Chip` objects are returned as given.
    """
    if isinstance(x, Chip):
        return x
    if not isinstance(x, str):
        raise ValueError(f"chip must be a name or a Chip, got {type(x).__name__} {x!r}")
    table = chips()
    key = x.strip().lower()
    if key in table:
        chip = table[key]
        use = _calibration_enabled[0] if calibrated is None else bool(calibrated)
        if use and key not in _user_chips:
            return _calibrated(chip)
        return chip
    raise _unknown_name("chip", x, table)


def get_model(x) -> Model:
    """A model by catalog name, a :class:`Model`, or a path to a Hugging Face ``config.json``.

    A string that is not a catalog name is read as a config file when it names
    an existing file or ends in ``.json``.
    """
    if isinstance(x, Model):
        return x
    if isinstance(x, os.PathLike):
        return Model.from_hf_config(x)
    if not isinstance(x, str):
        raise ValueError(f"model must be a name, a config.json path or a Model, got "
                         f"{type(x).__name__} {x!r}")
    table = models()
    key = x.strip().lower()
    if key in table:
        return table[key]
    if x.lower().endswith(".json") or os.path.isfile(x):
        return Model.from_hf_config(x)
    raise _unknown_name("model", x, table)
