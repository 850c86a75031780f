"""`infercast validate` on a small fixture: mapping, predictions, JSON shape, unmapped reasons.

tests/data/validate_fixture.csv holds rows 97, 99, 78, 0, 6, 44, 67, 175 and 24 of
engine/data/measured_calibration.csv (a copy of shared/reference/measured_calibration.csv;
sources in its `source` column).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import engine
from engine import catalog
from engine import validate as V
from engine.cli import main

FIXTURE = Path(__file__).parent / "data" / "validate_fixture.csv"


def _run_json(capsys, *extra):
    assert main(["validate", "--data", str(FIXTURE), "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_shape_and_counts(capsys):
    out = _run_json(capsys, "--ideal")
    assert list(out) == ["rows", "median_abs_pct_error", "mapped", "total"]
    assert out["total"] == 9 and len(out["rows"]) == 9
    mapped = [r for r in out["rows"] if "unmapped" not in r]
    assert out["mapped"] == len(mapped) == 5
    for r in mapped:
        assert r["error"] == pytest.approx(r["predicted"] / r["measured"] - 1, rel=1e-12)
    assert out["median_abs_pct_error"] == pytest.approx(
        float(np.median([abs(r["error"]) * 100 for r in mapped])), rel=1e-12)
    reasons = [r["unmapped"] for r in out["rows"] if "unmapped" in r]
    assert any("open division" in s for s in reasons)
    assert any("Mixtral" in s for s in reasons)
    assert any("first-token or per-token" in s for s in reasons)
    assert any("H100-NVL-94GB" in s for s in reasons)


def test_fixed_batch_rows_equal_direct_estimates(capsys):
    rows = _run_json(capsys, "--ideal")["rows"]
    # row 1 of the fixture: Inferentia2 inf2.48xlarge, Llama-2-7b, batch 8, 128 in / 3968 out,
    # TPOT p50 12.11 ms; 12 chips modelled as one device
    r = rows[1]
    assert r["quantity"] == "tpot_s" and r["measured"] == pytest.approx(12.11e-3)
    dev = V.aggregate_chip(catalog.get_chip("inferentia2", calibrated=False), 12)
    assert dev.memory_bandwidth == pytest.approx(12 * 820 * 2**30)
    est = engine.estimate("llama-2-7b", dev, batch=8, prompt_tokens=128, output_tokens=3968)
    assert r["predicted"] == pytest.approx(est.tpot_s, rel=1e-12)
    # row 0: same configuration, output tokens/s per chip = system rate / 12
    assert rows[0]["predicted"] == pytest.approx(est.output_tokens_per_s / 12, rel=1e-12)
    assert rows[0]["measured"] == pytest.approx(725.83 / 12)


def test_mlperf_rows_are_max_throughput_scenarios():
    rows = V.load_rows(FIXTURE)
    off, srv = V.map_row(rows[3]), V.map_row(rows[4])
    assert off.batch is None and off.ttft_max is None and off.tp_options == (1,)
    assert (off.prompt_tokens, off.output_tokens) == (V.MLPERF_INPUT_TOKENS, V.MLPERF_OUTPUT_TOKENS)
    assert (srv.ttft_max, srv.tpot_max, srv.batching) == (2.0, 0.2, "continuous")
    chip = catalog.get_chip("mi300x", calibrated=False)
    want = engine.max_throughput("llama-2-70b", chip, prompt_tokens=1024, output_tokens=294,
                                 weight_dtype="fp8", kv_dtype="fp8", act_dtype="fp8")
    assert V.predict(off, chip) == pytest.approx(want.output_tokens_per_s_per_chip, rel=1e-12)
    assert V.predict(srv, chip) <= V.predict(off, chip)


def test_calibrated_is_default_for_validate(capsys):
    cal = _run_json(capsys)
    ideal = _run_json(capsys, "--ideal")
    # Inferentia2 and Hopper are fitted families: their predictions change
    assert cal["rows"][1]["predicted"] > ideal["rows"][1]["predicted"]
    assert cal["rows"][2]["predicted"] < ideal["rows"][2]["predicted"]


def test_text_report(capsys):
    assert main(["validate", "--data", str(FIXTURE), "--worst", "2"]) == 0
    out = capsys.readouterr().out
    assert "median absolute percentage error" in out and "worst 2 rows:" in out
    assert "unmapped rows (4):" in out


def test_bad_files_exit_2(capsys, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("system,chips\nx,1\n")
    assert main(["validate", "--data", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("infercast: error: ") and "missing column(s)" in err
    assert main(["validate", "--data", str(tmp_path / "none.csv")]) == 2
    assert "cannot read data file" in capsys.readouterr().err


def test_whole_shipped_file_is_accounted_for():
    res = V.validate(ideal=True)
    assert res["total"] == 181 == len(res["rows"])
    unmapped = [r for r in res["rows"] if "unmapped" in r]
    assert res["mapped"] + len(unmapped) == 181
    assert all(r["unmapped"] for r in unmapped)


# rows of engine/data/measured_calibration.csv (sources in its `source` column)
_ROWS = V.load_rows()


@pytest.mark.parametrize("i, override, dtype, kv", [
    (30, "nvidia-tensorrt-fp8", "fp8", "fp8"),    # HPE 8x H100-SXM, TensorRT, closed Offline
    (28, "nvidia-tensorrt-fp8", "fp8", "fp8"),    # ASUSTeK 8x H100-PCIe
    (46, "nvidia-tensorrt-fp8", "fp8", "fp8"),    # Lenovo 8x H200 Server
    (56, "nvidia-tensorrt-fp8", "fp8", "fp8"),    # Fujitsu 8x L40S
    (14, "nvidia-tensorrt-fp4", "fp4", "fp8"),    # NVIDIA 1x B200
    (12, "dell-mi300x-vllm-fp8", "fp8", "fp8"),   # Dell 8x MI300X, vLLM (column says fp16)
])
def test_documented_precision_overrides(i, override, dtype, kv):
    assert _ROWS[i]["precision"] == "fp16"  # what the reference file states
    scn = V.map_row(_ROWS[i])
    assert (scn.precision_override, scn.dtype, scn.kv_dtype) == (override, dtype, kv)


def test_rows_without_documentation_keep_their_column():
    # AMD's own MI300X rows already state fp8; open-division and fixed-length rows are untouched
    for i in (0, 44, 78, 97, 171):
        scn = V.map_row(_ROWS[i])
        if isinstance(scn, str):
            assert "open division" in scn
            continue
        assert scn.precision_override == "" and scn.kv_dtype is None
    assert V.precision_override(_ROWS[44]) is None  # H200 depth-pruned, open division


def test_every_override_names_its_source():
    for o in V.PRECISION_OVERRIDES:
        assert "inference_results_v4.1" in o.source and "closed/" in o.source
        assert o.weight_dtype == o.act_dtype  # Scenario.dtype carries both
        for d in (o.weight_dtype, o.kv_dtype):
            assert d in ("fp8", "fp4", "bf16")


def test_override_changes_the_prediction():
    scn = V.map_row(_ROWS[30])
    chip = catalog.get_chip("h100-sxm", calibrated=False)
    from dataclasses import replace
    as_published = replace(scn, dtype="bf16", kv_dtype=None)
    assert V.predict(scn, chip) > 2.0 * V.predict(as_published, chip)
    rows = V.validate(ideal=True)["rows"]
    assert rows[30]["precision_override"] == "nvidia-tensorrt-fp8"
    assert "precision_override" not in rows[0]
