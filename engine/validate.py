"""Predictions against measured results: row -> scenario mapping, prediction, error summary.

Design
------
A measured row (the columns of ``shared/reference/measured_calibration.csv``)
is mapped to a :class:`Scenario` by :func:`map_row`, or to a one-line reason
why it cannot be mapped (unknown chip, model or metric; open division; no
sourced sequence lengths). :func:`predict` evaluates a scenario with given
chip definitions; :func:`validate` does both for every row of a file and
returns the rows, the median absolute percentage error and the count of
mapped rows. Unmapped rows are listed with their reason, never dropped.

Mapping rules (docs/validation.md has the table and sources)
------------------------------------------------------------
* **Chip**: the ``accelerator`` string, matched by :data:`CHIP_PATTERNS`.
  GH200 and H100-NVL are not catalog chips (unmapped).
* **Model**: the ``model`` string, normalised (``Llama 3.1 8B`` ->
  ``llama-3.1-8b``; ``-chat`` and parenthesised notes dropped).
  Mixtral-8x7B (MLPerf) is unmapped: its dataset (OpenOrca + GSM8K + MBXP)
  has no sourced mean lengths here.
* **Precision**: ``fp8`` -> weights, KV cache and matmuls in fp8;
  ``fp16``/``bf16`` -> bf16 (same peak); other formats unmapped. The column is
  taken as published unless a row matches :data:`PRECISION_OVERRIDES`: the
  MLPerf v4.1 closed Llama-2-70B rows whose submitters document quantization
  (NVIDIA's TensorRT submissions and Dell's MI300X vLLM submission state FP8
  weights, activations and KV cache, FP4 for selected layers on B200) are
  mapped at the documented precision, with the source kept in the override
  (the data file itself is not edited).
* **MLPerf llama2-70b** (variable lengths): output = 294.45 tokens per sample
  (MLCommons reference implementation, ``language/llama2-70b/README.md``,
  "Tokens per sample: 294.45"), rounded to 294; input = 1024 tokens, the
  dataset's ``max_seq_len`` cap (MLPerf inference rules, "OpenOrca (GPT-4
  split, max_seq_len=1024)"). No MLCommons document giving the *mean* input
  length was found, so the cap is used: an upper bound that makes prefill work,
  hence predicted time, an over-estimate for these rows.
  Offline = :func:`engine.max_throughput` with no limits; Server = the same
  under TTFT <= 2 s and TPOT <= 200 ms (MLPerf inference rules for Llama2,
  p99 limits applied to the engine's mean latencies) with continuous batching.
  The deployment is the best per-chip throughput over tp in {1, 2, 4, 8}
  dividing the chip count (one 8-chip scale-up domain at most), the rest as
  data-parallel replicas. Open-division rows are unmapped (the model may be
  changed there).
* **Fixed-length rows** (TensorRT-LLM, Neuron, Gaudi): input/output lengths
  and batch from the row. ``max-throughput`` rows use
  :func:`engine.max_throughput`; ``batch N`` rows use :func:`engine.estimate`
  at that batch with tp = chip count.
* **Inferentia2 (inf2.48xlarge, TP24)**: the engine requires tp to divide the
  attention heads; 12 divides none of Llama-2's 32/40/64 heads. The 12 chips
  are modelled as one device with 12x the memory, bandwidth and FLOP/s of one
  chip (tp = 1): the collective time is left to the fitted per-step overhead.
* **Metrics**: throughput rows compare output tokens/s per chip; ``TTFT p50``
  -> ``ttft_s``; ``TPOT p50`` -> ``tpot_s``; the Gaudi "Latency (low-latency
  table)" rows are unmapped (the page does not say whether it is first-token
  or per-token latency).

Error
-----
``error = predicted / measured - 1`` (signed, fraction); the summary is the
median of ``|error|`` in percent over mapped rows with a prediction.
"""
from __future__ import annotations

import csv
import math
import os
import re
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

import numpy as np

from . import api, catalog
from .serving import max_throughput

__all__ = ["Scenario", "CHIP_PATTERNS", "load_rows", "map_row", "predict", "validate",
           "default_data_path", "COLUMNS", "MLPERF_INPUT_TOKENS", "MLPERF_OUTPUT_TOKENS",
           "MLPERF_SERVER_TTFT_MAX_S", "MLPERF_SERVER_TPOT_MAX_S", "format_report",
           "PrecisionOverride", "PRECISION_OVERRIDES", "precision_override"]

#: columns a measured-results file must have (those of measured_calibration.csv)
COLUMNS = ("system", "chips", "accelerator", "model", "precision", "batch_or_concurrency",
           "input_len", "output_len", "metric", "value", "unit", "per_chip_value",
           "per_chip_unit", "framework", "source_type", "source", "date", "notes")

#: MLPerf llama2-70b mean output length [token]: MLCommons reference implementation,
#: github.com/mlcommons/inference language/llama2-70b/README.md ("Tokens per sample: 294.45")
MLPERF_OUTPUT_TOKENS = 294
#: MLPerf llama2-70b input length [token]: the dataset cap max_seq_len=1024 (MLPerf
#: inference rules, github.com/mlcommons/inference_policies inference_rules.adoc, Llama2
#: row "OpenOrca (GPT-4 split, max_seq_len=1024)"). An upper bound: no sourced mean found.
MLPERF_INPUT_TOKENS = 1024
#: MLPerf llama2-70b Server latency limits [s]: TTFT 2000 ms / TPOT 200 ms (p99),
#: inference_rules.adoc (mlcommons/inference_policies), Llama2 row.
MLPERF_SERVER_TTFT_MAX_S = 2.0
MLPERF_SERVER_TPOT_MAX_S = 0.2
#: tensor-parallel degrees tried for MLPerf systems (within one 8-GPU scale-up domain)
MLPERF_TP = (1, 2, 4, 8)

#: (regex on the lower-cased accelerator string, catalog chip or None, reason if None).
#: First match wins; order matters (GH200 before H200, H100-NVL before H100).
CHIP_PATTERNS = (
    (r"gh200", None, "chip 'GH200' is not in the catalog (Grace Hopper 144 GB HBM3e differs "
                     "from H100/H200)"),
    (r"h100[- ]nvl", None, "chip 'H100-NVL-94GB' is not in the catalog"),
    (r"h100[- ]pcie", "h100-pcie", ""),
    (r"h100[- ]sxm", "h100-sxm", ""),
    (r"h200", "h200", ""),
    (r"b200", "b200", ""),
    (r"mi300x", "mi300x", ""),
    (r"l40s", "l40s", ""),
    (r"gaudi ?2", "gaudi2", ""),
    (r"inferentia ?2", "inferentia2", ""),
)

_PRECISION = {"fp8": "fp8", "fp16": "bf16", "bf16": "bf16", "fp16 / weights bf16": "bf16"}

#: NVIDIA's quantization notes for its MLPerf Inference v4.1 closed submissions
NVIDIA_V41_CALIBRATION = (
    "github.com/mlcommons/inference_results_v4.1 closed/NVIDIA/documentation/calibration.md "
    "(commit a2f5d66d), 'LLM Quantization': 'LLM submissions use FP8 or FP4 if the NVIDIA "
    "accelerator supports that feature'; for Llama2-70B the linear-layer inputs and weights, "
    "attention Q/K/V inputs and the KV cache entries are quantized; 'On accelerators which "
    "support FP4' selected linear and MLP layers are FP4")


@dataclass(frozen=True)
class PrecisionOverride:
    """Precision a submitter documents for rows whose ``precision`` column says otherwise.

    Parameters
    ----------
    name : str
        Short label (reported with the mapped row).
    accelerator : str
        Regex on the lower-cased ``accelerator`` column.
    source_path : str
        Regex on the ``source`` column (the MLPerf results path, e.g. ``closed/Dell/``).
    framework : str
        Regex on the lower-cased ``framework`` column.
    weight_dtype, act_dtype, kv_dtype : str
        Formats of weights, matmul inputs and KV cache the row is mapped at.
    source : str
        Where the submitter documents the precision.
    note : str
        Assumptions beyond the source (empty when none).
    """

    name: str
    accelerator: str
    source_path: str
    framework: str
    weight_dtype: str
    act_dtype: str
    kv_dtype: str
    source: str
    note: str = ""


#: Documented overrides of the ``precision`` column for MLPerf v4.1 closed Llama-2-70B rows.
#: The reference CSV states ``fp16`` for these rows (the reference model's precision); the
#: submitters' own documentation says what ran. First match wins.
PRECISION_OVERRIDES = (
    PrecisionOverride(
        name="nvidia-tensorrt-fp4", accelerator=r"b200", source_path=r"closed/nvidia/",
        framework=r"tensorrt", weight_dtype="fp4", act_dtype="fp4", kv_dtype="fp8",
        source=NVIDIA_V41_CALIBRATION,
        note=("NVIDIA quantizes only 'selected' linear/MLP layers to FP4 (the others FP8) and "
              "does not list them, nor the KV-cache format on FP4 parts: mapping every matmul "
              "to FP4 and the KV cache to FP8 is an upper bound on speed")),
    PrecisionOverride(
        name="nvidia-tensorrt-fp8", accelerator=r"h100|h200|l40s", source_path=r"closed/",
        framework=r"tensorrt", weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8",
        source=NVIDIA_V41_CALIBRATION,
        note=("partner submissions (Dell, HPE, Lenovo, Supermicro, ASUSTeK, Fujitsu, Juniper) "
              "run NVIDIA's TensorRT MLPerf code and are taken to use the same scheme")),
    PrecisionOverride(
        name="dell-mi300x-vllm-fp8", accelerator=r"mi300x", source_path=r"closed/dell/",
        framework=r"vllm", weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8",
        source=("github.com/mlcommons/inference_results_v4.1 closed/Dell/code/llama2-70b-99/"
                "README.md (commit a2f5d66d): the model is quantized with Quark "
                "'--quant_scheme w_fp8_a_fp8_o_fp8' and run by the 'VllmFp8' harness; AMD's "
                "closed/AMD/calibration.md: linear inputs/weights and KV cache entries in "
                "OCP FP8-e4m3")),
)


def precision_override(row: dict):
    """The :class:`PrecisionOverride` matching an MLPerf closed Llama-2-70B row, or None."""
    metric = str(row.get("metric", ""))
    if not metric.startswith("MLPerf") or " closed " not in f" {metric} ":
        return None
    if "llama-2-70b" not in str(row.get("model", "")).lower():
        return None
    acc = str(row.get("accelerator", "")).lower()
    src = str(row.get("source", "")).lower()
    fw = str(row.get("framework", "")).lower()
    for o in PRECISION_OVERRIDES:
        if re.search(o.accelerator, acc) and re.search(o.source_path, src) \
                and re.search(o.framework, fw):
            return o
    return None


@dataclass(frozen=True)
class Scenario:
    """One measured row as an engine scenario.

    Parameters
    ----------
    chip : str
        Catalog chip name (the calibration family is looked up from it).
    model : str
        Catalog model name.
    n_chips : int
        Accelerators the measurement used [chip].
    tp_options : tuple of int
        Tensor-parallel degrees to try; the best per-chip throughput wins.
    batch : int or None
        Fixed batch [sequence]; ``None`` = max-throughput mode.
    prompt_tokens, output_tokens : int
        Lengths [token].
    dtype : str
        Format of weights and matmul inputs.
    metric : str
        ``"output_tokens_per_s_per_chip"``, ``"ttft_s"`` or ``"tpot_s"``.
    measured : float
        Measured value in the metric's canonical unit (token/s per chip, s).
    ttft_max, tpot_max : float or None
        Latency limits [s] of the max-throughput search.
    batching : str
        ``"static"`` or ``"continuous"`` (see :mod:`engine.serving`).
    aggregate : bool
        Model the ``n_chips`` chips as one device (Inferentia2 TP24).
    kv_dtype : str or None
        Format of the KV cache (``None``: same as ``dtype``).
    precision_override : str
        Name of the :class:`PrecisionOverride` applied ("" when the column is
        taken as published).
    """

    chip: str
    model: str
    n_chips: int
    tp_options: tuple
    batch: int | None
    prompt_tokens: int
    output_tokens: int
    dtype: str
    metric: str
    measured: float
    ttft_max: float | None = None
    tpot_max: float | None = None
    batching: str = "static"
    aggregate: bool = False
    kv_dtype: str | None = None
    precision_override: str = ""
    notes: tuple = field(default_factory=tuple)


def default_data_path() -> Path:
    """The shipped copy of ``measured_calibration.csv`` (``engine/data``)."""
    return Path(str(resources.files("engine") / "data" / "measured_calibration.csv"))


def load_rows(path=None) -> list[dict]:
    """Read a measured-results CSV; every column of :data:`COLUMNS` must be present."""
    p = default_data_path() if path is None else Path(os.fspath(path))
    try:
        with open(p, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            missing = [c for c in COLUMNS if c not in header]
            if missing:
                raise ValueError(f"{p}: missing column(s) {', '.join(missing)} "
                                 f"(a measured-results file needs: {', '.join(COLUMNS)})")
            return [dict(r) for r in reader]
    except OSError as e:
        raise ValueError(f"cannot read data file {str(p)!r}: {e.strerror or e}") from None


def _int(text: str):
    t = str(text).strip()
    return int(t) if re.fullmatch(r"\d+", t) else None


def _float(text: str):
    try:
        v = float(str(text).strip())
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _model_name(text: str):
    t = re.sub(r"\(.*?\)", "", text).strip().lower()
    t = re.sub(r"\s+", "-", t)
    t = re.sub(r"-chat$", "", t)
    return t


def map_row(row: dict):
    """Map one measured row to a :class:`Scenario`, or return the reason it cannot be mapped."""
    acc = str(row.get("accelerator", "")).lower()
    chip = None
    for pat, name, reason in CHIP_PATTERNS:
        if re.search(pat, acc):
            if name is None:
                return reason
            chip = name
            break
    if chip is None:
        return f"unknown chip {row.get('accelerator', '')!r}"
    if chip not in catalog.chips():
        return f"chip {chip!r} is not in the loaded catalog"
    model_text = str(row.get("model", ""))
    if "mixtral" in model_text.lower():
        return ("model 'Mixtral-8x7B (MLPerf)': its dataset (OpenOrca + GSM8K + MBXP) has no "
                "sourced mean input/output lengths here")
    model = _model_name(model_text)
    if model not in catalog.models():
        return f"unknown model {model_text!r}"
    prec = str(row.get("precision", "")).strip().lower()
    if prec not in _PRECISION:
        return f"unsupported precision {row.get('precision', '')!r}"
    dtype = _PRECISION[prec]
    kv_dtype, override = None, ""
    ov = precision_override(row)
    if ov is not None:
        dtype, kv_dtype, override = ov.weight_dtype, ov.kv_dtype, ov.name
    n_chips = _int(row.get("chips", ""))
    if not n_chips:
        return f"chips must be a positive integer, got {row.get('chips', '')!r}"
    metric = str(row.get("metric", ""))
    mode = str(row.get("batch_or_concurrency", ""))
    value = _float(row.get("value", ""))
    if value is None or value <= 0:
        return f"value must be a positive number, got {row.get('value', '')!r}"
    aggregate = chip == "inferentia2" and n_chips > 1

    if metric.startswith("MLPerf"):
        if " open " in f" {metric} ":
            return "MLPerf open division: the model or its precision may be changed there"
        if "llama-2-70b" != model:
            return f"MLPerf task for {model!r} has no sourced mean lengths here"
        per_chip = value / n_chips
        tps = tuple(t for t in MLPERF_TP if n_chips % t == 0)
        common = dict(chip=chip, model=model, n_chips=n_chips, tp_options=tps, batch=None,
                      prompt_tokens=MLPERF_INPUT_TOKENS, output_tokens=MLPERF_OUTPUT_TOKENS,
                      dtype=dtype, kv_dtype=kv_dtype, precision_override=override,
                      metric="output_tokens_per_s_per_chip", measured=per_chip)
        if "Offline" in metric:
            return Scenario(**common)
        if "Server" in metric:
            return Scenario(**common, ttft_max=MLPERF_SERVER_TTFT_MAX_S,
                            tpot_max=MLPERF_SERVER_TPOT_MAX_S, batching="continuous")
        return f"unknown MLPerf scenario in metric {metric!r}"

    prompt, output = _int(row.get("input_len", "")), _int(row.get("output_len", ""))
    if prompt is None or output is None:
        if metric.startswith("Latency"):
            return ("metric 'Latency (low-latency table)': the source does not say whether it is "
                    "first-token or per-token latency")
        return (f"input_len/output_len must be integers, got {row.get('input_len', '')!r}/"
                f"{row.get('output_len', '')!r}")
    tp = 1 if aggregate else n_chips
    m = re.match(r"batch (\d+)", mode)
    batch = int(m.group(1)) if m else None
    if batch is None and not mode.startswith("max-throughput"):
        return f"unknown batch_or_concurrency {mode!r}"
    common = dict(chip=chip, model=model, n_chips=n_chips, tp_options=(tp,), batch=batch,
                  prompt_tokens=prompt, output_tokens=output, dtype=dtype, aggregate=aggregate)
    if metric in ("Output token throughput", "Total output throughput", "Throughput"):
        return Scenario(**common, metric="output_tokens_per_s_per_chip", measured=value / n_chips)
    unit = str(row.get("unit", "")).strip()
    scale = {"ms": 1e-3, "s": 1.0, "us": 1e-6}.get(unit)
    if metric.startswith("TTFT") or metric.startswith("TPOT"):
        if scale is None:
            return f"unknown latency unit {unit!r}"
        key = "ttft_s" if metric.startswith("TTFT") else "tpot_s"
        return Scenario(**common, metric=key, measured=value * scale)
    return f"unknown metric {metric!r}"


def aggregate_chip(chip, n: int):
    """``n`` chips as one device: memory, bandwidths and peaks times ``n`` (efficiencies kept)."""
    kw = {f: getattr(chip, f) * n for f in ("memory_bytes", "memory_bandwidth", "peak_flops_fp32",
                                            "peak_flops_bf16", "peak_flops_fp8", "peak_ops_int8",
                                            "peak_flops_fp4", "sram_bytes", "sram_bandwidth")
          if getattr(chip, f) is not None}
    return replace(chip, name=f"{chip.name}-x{n}", **kw)


def predict(scn: Scenario, chip=None) -> float:
    """Predicted value of ``scn.metric`` [canonical unit]; NaN when no deployment fits.

    Parameters
    ----------
    scn : Scenario
    chip : engine.Chip or None
        Chip definition to use (e.g. with trial efficiency factors); default the
        catalog chip (calibrated unless the catalog is switched to ideal).

    Raises
    ------
    ValueError
        Only for malformed scenarios; unmet latency limits give NaN.
    """
    c = catalog.get_chip(scn.chip) if chip is None else chip
    if scn.aggregate:
        c = aggregate_chip(c, scn.n_chips)
    kw = dict(prompt_tokens=scn.prompt_tokens, output_tokens=scn.output_tokens,
              weight_dtype=scn.dtype, kv_dtype=scn.kv_dtype or scn.dtype, act_dtype=scn.dtype)
    best = math.nan
    for tp in scn.tp_options:
        try:
            if scn.batch is None:
                est = max_throughput(scn.model, c, tp=tp, ttft_max=scn.ttft_max,
                                     tpot_max=scn.tpot_max, batching=scn.batching, **kw)
            else:
                est = api.estimate(scn.model, c, tp=tp, batch=scn.batch, backend="numpy", **kw)
        except ValueError as e:
            if str(e).startswith("no batch meets") or str(e).startswith("tp must"):
                continue
            raise
        if not est["fits"]:
            continue
        if scn.metric == "output_tokens_per_s_per_chip":
            v = est["output_tokens_per_s"] / (tp if not scn.aggregate else scn.n_chips)
            best = v if math.isnan(best) else max(best, v)
        else:
            return float(est[scn.metric])
    return float(best)


def _row_out(row: dict) -> dict:
    return {k: row.get(k, "") for k in ("system", "chips", "accelerator", "model", "precision",
                                        "batch_or_concurrency", "input_len", "output_len",
                                        "metric", "value", "unit", "source")}


def validate(data=None, *, ideal: bool = False) -> dict:
    """Predict every row of a measured-results file and compare.

    Parameters
    ----------
    data : path or None
        CSV with the columns of :data:`COLUMNS`; default the shipped
        ``measured_calibration.csv``.
    ideal : bool
        Use the ideal roofline (all efficiencies 1, no overhead) instead of the
        calibrated catalog chips.

    Returns
    -------
    dict
        ``{"rows": [...], "median_abs_pct_error": m, "mapped": k, "total": n}``.
        A mapped row carries ``chip_name``, ``model_name``, ``family``,
        ``predicted``, ``measured`` (canonical units: token/s per chip or s) and
        ``error`` (predicted / measured - 1); an unmapped row carries
        ``unmapped`` (the reason). A mapped row whose scenario does not fit or
        meets no latency limit has ``predicted = None`` and the reason in
        ``unmapped``.
    """
    rows = load_rows(data)
    out, errs, mapped = [], [], 0
    for row in rows:
        r = _row_out(row)
        scn = map_row(row)
        if isinstance(scn, str):
            r["unmapped"] = scn
            out.append(r)
            continue
        chip = catalog.get_chip(scn.chip, calibrated=not ideal)
        pred = predict(scn, chip)
        r.update(chip_name=scn.chip, model_name=scn.model, family=catalog.chip_family(scn.chip),
                 quantity=scn.metric)
        if scn.precision_override:
            r["precision_override"] = scn.precision_override
        if not math.isfinite(pred):
            r["unmapped"] = "no deployment fits in memory / meets the latency limits in the engine"
            out.append(r)
            continue
        mapped += 1
        err = pred / scn.measured - 1.0
        errs.append(abs(err) * 100.0)
        r.update(predicted=pred, measured=scn.measured, error=err)
        out.append(r)
    med = float(np.median(errs)) if errs else None
    return {"rows": out, "median_abs_pct_error": med, "mapped": mapped, "total": len(rows)}


def format_report(result: dict, worst: int = 10) -> str:
    """Plain-text table: predicted vs measured per row, the median, the worst rows, unmapped."""
    lines = []
    hdr = f"{'#':>3s} {'chip':12s} {'model':13s} {'quantity':12s} {'predicted':>11s} " \
          f"{'measured':>11s} {'error':>8s}"
    lines.append(hdr)
    mapped = []
    for i, r in enumerate(result["rows"]):
        if "unmapped" in r:
            continue
        q = {"output_tokens_per_s_per_chip": "tok/s/chip", "ttft_s": "TTFT [s]",
             "tpot_s": "TPOT [s]"}[r["quantity"]]
        lines.append(f"{i:3d} {r['chip_name']:12s} {r['model_name']:13s} {q:12s} "
                     f"{r['predicted']:11.4g} {r['measured']:11.4g} {r['error'] * 100:7.1f}%")
        mapped.append((abs(r["error"]), i, r))
    med = result["median_abs_pct_error"]
    lines.append("")
    lines.append(f"median absolute percentage error: "
                 f"{'-' if med is None else f'{med:.1f}%'} over {result['mapped']} mapped rows "
                 f"of {result['total']}")
    if mapped:
        lines.append(f"worst {min(worst, len(mapped))} rows:")
        for e, i, r in sorted(mapped, key=lambda t: -t[0])[:worst]:
            lines.append(f"  #{i} {r['chip_name']} {r['model_name']} {r['metric']} "
                         f"({r['batch_or_concurrency'][:30]}): error {r['error'] * 100:+.1f}%")
    unm = [(i, r) for i, r in enumerate(result["rows"]) if "unmapped" in r]
    if unm:
        lines.append(f"unmapped rows ({len(unm)}):")
        for i, r in unm:
            lines.append(f"  #{i} {r['accelerator'][:28]} | {r['model'][:24]} | {r['metric'][:40]}: "
                         f"{r['unmapped']}")
    return "\n".join(lines)
