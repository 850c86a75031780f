"""Fit efficiency factors per chip family to measured results.

Design
------
The roofline (docs/physics.md) has four knobs per chip: achieved fractions of
peak compute, memory bandwidth and link bandwidth, and a fixed time per
forward pass. :func:`calibrate` fits them per *family* (chips sharing an
architecture and software stack, :data:`FAMILIES`) to the rows of
``measured_calibration.csv`` that :func:`engine.validate.map_row` maps:

1. map every row; keep mapped rows whose chip belongs to a family; drop exact
   duplicate scenarios (the MLPerf table lists some results twice: "best
   result" and "vendor's own submission");
2. exclude rows whose measured value beats the *ideal* roofline (throughput
   above, or latency below, the prediction with all factors 1 and no
   overhead): no factor in (0, 1] can reach them, so they say the mapped
   precision or lengths are not what ran. Rows sharing that mapping (same
   chip, model, lengths and precision: e.g. the Server rows of a chip whose
   Offline rows beat the roofline) are excluded too, since keeping only the
   rows that happen to fall below the roofline would bias the fit. They stay
   in ``infercast validate`` with their error; the reason is recorded in the
   calibration file;
3. a family is fitted only when its rows span at least :data:`MIN_CONFIGS`
   distinct configurations (as many as there are factors); with fewer the
   factors are not identifiable and the family stays on the ideal roofline
   (the rows are recorded as excluded with that reason);
4. per family, minimise ``sum_i log(predicted_i / measured_i)^2`` over
   ``compute, memory, network in [0.05, 1]`` and ``step_overhead in
   [0, STEP_OVERHEAD_MAX_US[family]]`` with ``scipy.optimize.least_squares``
   (trust-region reflective, 2-point finite differences, fixed start
   ``(0.7, 0.7, 0.7, 10 us)``; deterministic). The overhead bound is
   per family (:data:`STEP_OVERHEAD_MAX_US`, each with its reason): a fixed
   per-step cost is otherwise free to absorb a memory-efficiency shortfall of
   large-batch rows and then dominates small-batch latency (v1 fitted 7.6 ms
   per step on Hopper from throughput-only rows);
5. a factor the family's rows do not constrain (its Jacobian column is zero,
   e.g. the network factor when every row runs on one chip) is reported as
   not identified and set to its ideal value (1, or 0 s of overhead).

Out-of-sample error: for a family with two or more chips, leave-one-chip-out
(fit on the other chips, predict the held-out chip); for a one-chip family,
5-fold cross-validation over *configurations* (rows sharing chip, model,
lengths, batch and precision stay in one fold, so TTFT/TPOT/throughput of one
configuration never straddle train and test). Fold of configuration k (in
sorted order) = k mod 5.

scipy is imported inside :func:`calibrate` only (extra ``calibrate``); the
core import stays light. The fitted factors ship as
``engine/data/calibration.toml`` (:func:`write_toml`).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import math
from collections import OrderedDict
from pathlib import Path

import numpy as np

from . import catalog
from . import validate as V
from .files import atomic_write

__all__ = ["FAMILIES", "calibrate", "write_toml", "PARAMS", "LOWER", "UPPER", "X0",
           "STEP_OVERHEAD_MAX_US", "MIN_CONFIGS", "upper_bounds"]

#: family -> catalog chips. Families group one architecture generation; chips
#: without measured rows inherit their family's factors (e.g. GB200 from B200).
FAMILIES = OrderedDict([
    ("nvidia-hopper", ["h100-sxm", "h100-pcie", "h200"]),
    ("nvidia-blackwell", ["b200", "b300", "gb200"]),
    ("nvidia-ada", ["l40s", "l4"]),
    ("nvidia-ampere", ["a100-80gb", "a10g"]),
    ("amd-cdna3", ["mi300x", "mi325x"]),
    ("amd-cdna4", ["mi355x"]),
    ("intel-gaudi2", ["gaudi2"]),
    ("intel-gaudi3", ["gaudi3"]),
    ("aws-inferentia2", ["inferentia2"]),
    ("aws-trainium2", ["trainium2"]),
])
PARAMS = ("compute_efficiency", "memory_efficiency", "network_efficiency", "step_overhead_us")
LOWER = np.array([0.05, 0.05, 0.05, 0.0])
UPPER = np.array([1.0, 1.0, 1.0, 20000.0])
X0 = np.array([0.7, 0.7, 0.7, 10.0])
IDEAL = np.array([1.0, 1.0, 1.0, 0.0])
N_FOLDS = 5
#: fewest distinct configurations (chip, model, lengths, batch, precision, limits) a family
#: needs to be fitted: one per factor
MIN_CONFIGS = len(PARAMS)

#: GPU serving stacks (TensorRT-LLM, vLLM): upper bound on the per-step overhead [us].
#: Estimate, not a measurement: the TensorRT-LLM throughput tables run every decode step as
#: a CUDA graph (perf-overview.md at TensorRT-LLM commit 00f37686, ``cuda_graph_config``
#: batch sizes 1..8192), so a step costs one graph launch plus the serving loop's host
#: work; 1 ms per step is allowed. The Hopper rows do not identify the overhead (leave-one-
#: chip-out error 15.0% at a 0.2 ms bound, 14.9% at 1 ms, 14.8% at 2 ms on the TensorRT-LLM
#: rows; docs/validation.md), so the bound only stops the fit from turning a memory-
#: efficiency shortfall into a fixed cost that would dominate batch-1 decode.
GPU_STEP_OVERHEAD_MAX_US = 1000.0
#: family -> (upper bound on the per-step overhead [us], reason). A measured single
#: forward pass (TPOT, or a batch-1 latency) contains one step overhead, so the smallest
#: one a family publishes bounds it.
STEP_OVERHEAD_MAX_US = OrderedDict([
    ("nvidia-hopper", (GPU_STEP_OVERHEAD_MAX_US, "GPU estimate (CUDA graphs), see "
                                                 "GPU_STEP_OVERHEAD_MAX_US")),
    ("nvidia-blackwell", (GPU_STEP_OVERHEAD_MAX_US, "GPU estimate (CUDA graphs)")),
    ("nvidia-ada", (GPU_STEP_OVERHEAD_MAX_US, "GPU estimate (CUDA graphs)")),
    ("nvidia-ampere", (GPU_STEP_OVERHEAD_MAX_US, "GPU estimate (CUDA graphs)")),
    ("amd-cdna3", (GPU_STEP_OVERHEAD_MAX_US, "GPU estimate (vLLM on ROCm, HIP graphs)")),
    ("amd-cdna4", (GPU_STEP_OVERHEAD_MAX_US, "GPU estimate (vLLM on ROCm, HIP graphs)")),
    ("intel-gaudi2", (7620.0, "smallest batch-1 latency Intel publishes for Gaudi2: 7.62 ms, "
                              "Llama-2-7B fp8, 128 input tokens (measured_calibration.csv row "
                              "179, Intel Gaudi2 model-performance page); whether first-token "
                              "or per-token, it is one forward pass")),
    ("intel-gaudi3", (7620.0, "Gaudi2's bound (no Gaudi3 rows)")),
    ("aws-inferentia2", (6470.0, "smallest TPOT AWS publishes for inf2.48xlarge: 6.47 ms, "
                                 "Llama-2-7B batch 1 (measured_calibration.csv row 132, AWS "
                                 "Neuron throughput_data_decoder.csv); the step includes the "
                                 "TP24 collectives the aggregate-device mapping leaves to the "
                                 "overhead")),
    ("aws-trainium2", (6470.0, "Inferentia2's bound (same Neuron stack; no Trainium2 rows)")),
])


def upper_bounds(family: str) -> np.ndarray:
    """Upper bounds of (compute, memory, network, step_overhead_us) for ``family``."""
    ub = UPPER.copy()
    ub[3] = STEP_OVERHEAD_MAX_US[family][0]
    return ub


def _family_of(chip: str):
    for fam, members in FAMILIES.items():
        if chip in members:
            return fam
    return None


def _with(chip, x):
    return chip.with_efficiency(compute=float(x[0]), memory=float(x[1]), network=float(x[2]),
                                step_overhead=float(x[3]) * 1e-6)


def _log_residuals(x, items):
    out = np.empty(len(items))
    for k, (scn, chip) in enumerate(items):
        p = V.predict(scn, _with(chip, x))
        # a trial point that fits nothing / meets no limit: a large finite penalty
        out[k] = math.log(p / scn.measured) if (math.isfinite(p) and p > 0) else 10.0
    return out


def _fit(items, least_squares, upper=UPPER):
    """Fit one family within ``(LOWER, upper)``; return (x, identified mask)."""
    x0 = np.minimum(X0, upper)
    res = least_squares(_log_residuals, x0, bounds=(LOWER, upper), args=(items,),
                        method="trf", x_scale=np.array([0.1, 0.1, 0.1, 100.0]),
                        diff_step=1e-3, xtol=1e-6, ftol=1e-8, gtol=1e-8, max_nfev=200)
    jac = np.asarray(res.jac)
    identified = np.abs(jac).max(axis=0) > 1e-9
    x = np.where(identified, res.x, IDEAL)
    return x, identified


def _config_key(scn):
    return (scn.chip, scn.model, scn.n_chips, scn.batch or 0, scn.prompt_tokens,
            scn.output_tokens, scn.dtype, scn.kv_dtype or scn.dtype, scn.ttft_max or 0.0)


def _mapping_key(scn):
    """Rows sharing chip, model, lengths and precision share one mapping (e.g. the Offline and
    Server rows of an MLPerf task on one chip, or TTFT/TPOT/throughput of one configuration)."""
    return (scn.chip, scn.model, scn.prompt_tokens, scn.output_tokens, scn.dtype,
            scn.kv_dtype or scn.dtype)


def _median_abs_pct(items, x):
    r = _log_residuals(x, items)
    return float(np.median(np.abs(np.expm1(r)))) * 100.0 if len(r) else None


def calibrate(data=None, *, families=None, out_of_sample=True, fit_date=None) -> dict:
    """Fit per-family efficiency factors to measured results.

    Parameters
    ----------
    data : path or None
        Measured-results CSV (columns of ``measured_calibration.csv``);
        default the shipped copy, ``engine/data/measured_calibration.csv``.
    families : iterable of str or None
        Fit only these families (default: every family with usable rows).
    out_of_sample : bool
        Also compute leave-one-chip-out / 5-fold errors (slower).
    fit_date : str or None
        ISO date recorded in the result (default today).

    Returns
    -------
    dict
        ``fit_date``, ``data_file``, ``data_sha256``, ``families`` (the
        mapping), ``factors`` {family: {compute_efficiency, memory_efficiency,
        network_efficiency, step_overhead_us, identified, rows_used,
        in_sample_median_abs_pct_error, out_of_sample_median_abs_pct_error,
        out_of_sample_method}}, ``excluded`` [{row, reason}].

    Notes
    -----
    Needs scipy (``pip install infercast[calibrate]``).
    """
    try:
        from scipy.optimize import least_squares
    except ImportError:  # pragma: no cover - depends on the environment
        raise ValueError("calibrate() needs scipy: pip install 'infercast[calibrate]'") from None
    path = V.default_data_path() if data is None else Path(data)
    rows = V.load_rows(path)
    sha = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    wanted = None if families is None else set(families)
    if wanted is not None:
        unknown = wanted - set(FAMILIES)
        if unknown:
            raise ValueError(f"families must be among {', '.join(FAMILIES)}, got "
                             f"{', '.join(sorted(unknown))}")
    per_family: dict = OrderedDict()
    excluded, seen, candidates, contradicted = [], {}, [], {}
    for i, row in enumerate(rows):
        scn = V.map_row(row)
        if isinstance(scn, str):
            continue
        fam = _family_of(scn.chip)
        if fam is None or (wanted is not None and fam not in wanted):
            continue
        if scn in seen:
            excluded.append({"row": i, "reason": f"duplicate of row {seen[scn]}"})
            continue
        seen[scn] = i
        ideal = catalog.get_chip(scn.chip, calibrated=False)
        p = V.predict(scn, ideal)
        if not math.isfinite(p):
            excluded.append({"row": i, "reason": "no deployment fits / meets the limits"})
            continue
        beats = p < scn.measured if scn.metric == "output_tokens_per_s_per_chip" \
            else p > scn.measured
        if beats:
            excluded.append({"row": i, "reason": f"measured beats the ideal roofline "
                                                 f"(ideal {p:.4g}, measured {scn.measured:.4g})"})
            contradicted.setdefault(_mapping_key(scn), i)
            continue
        candidates.append((fam, i, scn, ideal))
    for fam, i, scn, ideal in candidates:
        j = contradicted.get(_mapping_key(scn))
        if j is not None:
            excluded.append({"row": i, "reason": (
                f"row {j} of the same mapping (chip, model, lengths, precision) beats the "
                f"ideal roofline, so the mapping is contradicted for this row too")})
            continue
        per_family.setdefault(fam, []).append((i, scn, ideal))
    factors, pooled = OrderedDict(), []
    for fam, entries in per_family.items():
        n_conf = len({_config_key(s) for _, s, _ in entries})
        if n_conf < MIN_CONFIGS:
            for i, _, _ in entries:
                excluded.append({"row": i, "reason": (
                    f"family '{fam}' has {n_conf} usable configuration(s), fewer than the "
                    f"{MIN_CONFIGS} factors: not fitted, the family stays on the ideal roofline")})
            continue
        items = [(s, c) for _, s, c in entries]
        ub = upper_bounds(fam)
        x, ident = _fit(items, least_squares, ub)
        f = {p: float(v) for p, v in zip(PARAMS, x)}
        f["identified"] = [p for p, ok in zip(PARAMS, ident) if ok]
        f["rows_used"] = [i for i, _, _ in entries]
        f["in_sample_median_abs_pct_error"] = _median_abs_pct(items, x)
        f["step_overhead_max_us"] = float(ub[3])
        if out_of_sample:
            oos, errs = _out_of_sample(entries, least_squares, ub)
            f.update(oos)
            pooled.extend(errs)
        factors[fam] = f
    excluded.sort(key=lambda e: e["row"])
    return {"fit_date": fit_date or _dt.date.today().isoformat(),
            "data_file": Path(path).name, "data_sha256": sha,
            "families": OrderedDict((k, list(v)) for k, v in FAMILIES.items()),
            "overall_out_of_sample_median_abs_pct_error":
                float(np.median(pooled)) if pooled else None,
            "factors": factors, "excluded": excluded}


def _out_of_sample(entries, least_squares, upper=UPPER) -> dict:
    chips = sorted({s.chip for _, s, _ in entries})
    if len(chips) >= 2:
        groups = {c: [e for e in entries if e[1].chip == c] for c in chips}
        method = "leave-one-chip-out"
    else:
        keys = sorted({_config_key(s) for _, s, _ in entries})
        if len(keys) < 2:
            return ({"out_of_sample_median_abs_pct_error": None,
                     "out_of_sample_method": "none (one configuration)"}, [])
        k = min(N_FOLDS, len(keys))
        fold = {key: j % k for j, key in enumerate(keys)}
        groups = {f: [e for e in entries if fold[_config_key(e[1])] == f] for f in range(k)}
        method = f"{k}-fold over configurations"
    errs = []
    for g, test in groups.items():
        train = [e for e in entries if e not in test]
        x, _ = _fit([(s, c) for _, s, c in train], least_squares, upper)
        r = _log_residuals(x, [(s, c) for _, s, c in test])
        errs.extend(np.abs(np.expm1(r)) * 100.0)
    return ({"out_of_sample_median_abs_pct_error": float(np.median(errs)),
             "out_of_sample_method": method}, [float(e) for e in errs])


METHOD = ("scipy.optimize.least_squares trf on log(predicted/measured); bounds compute/memory/"
          "network [0.05, 1], step_overhead [0, step_overhead_max_us of the family] us; start "
          "(0.7, 0.7, 0.7, 10 us) clipped to the bounds; families with fewer than 4 "
          "configurations not fitted")


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    if v is None:
        return '"none"'
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def write_toml(result: dict, path) -> None:
    """Write a :func:`calibrate` result as ``calibration.toml`` (atomic replace)."""
    lines = ["# Efficiency factors per chip family, fitted by engine.calibrate()",
             "# (docs/validation.md). Regenerate: python -c \"import engine.calibration as c; "
             "c.write_toml(c.calibrate(), 'engine/data/calibration.toml')\"",
             f"fit_date = {_toml_value(result['fit_date'])}",
             f"data_file = {_toml_value(result['data_file'])}",
             f"data_sha256 = {_toml_value(result['data_sha256'])}",
             "# median over every family's held-out rows (leave-one-chip-out / k-fold) [%]",
             f"overall_out_of_sample_median_abs_pct_error = "
             f"{_toml_value(result.get('overall_out_of_sample_median_abs_pct_error'))}",
             f"method = {_toml_value(METHOD)}",
             "", "[families]"]
    for fam, members in result["families"].items():
        lines.append(f"{fam} = {_toml_value(members)}")
    for fam, f in result["factors"].items():
        lines += ["", f"[factors.{fam}]"]
        for k, v in f.items():
            lines.append(f"{k} = {_toml_value(v)}")
    lines += ["", "# rows of the data file not used in the fit, with the reason"]
    for e in result["excluded"]:
        lines += ["[[excluded]]", f"row = {e['row']}", f"reason = {_toml_value(e['reason'])}"]
    text = "\n".join(lines) + "\n"
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
