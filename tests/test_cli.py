"""The infercast CLI: JSON contract, exit codes, atomic outputs."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from engine.cli import main
from engine.results import INPUT_KEYS, OUTPUT_KEYS


def run(capsys, *argv):
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_estimate_json_keys(capsys):
    rc, out, err = run(capsys, "estimate", "--model", "llama-3.1-70b", "--chip", "h100-sxm",
                       "--tp", "4", "--batch", "16", "--prompt", "2048", "--output", "256", "--json")
    assert rc == 0, err
    obj = json.loads(out)
    for k in INPUT_KEYS + OUTPUT_KEYS:
        assert k in obj, k
    assert obj["tp"] == 4 and obj["batch"] == 16 and obj["weight_dtype"] == "bf16"


@pytest.mark.parametrize("argv,msg", [
    (["estimate", "--model", "llama-3.1-8b", "--chip", "h1OO"], "unknown chip 'h1OO'"),
    (["estimate", "--model", "llama-3.1-8b", "--chip", "h100-sxm", "--batch", "-1"],
     "batch must be >= 1, got -1"),
    (["estimate", "--model", "llama-3.1-8b", "--chip", "h100-sxm", "--batch", "x"],
     "batch must be integers"),
    (["estimate", "--model", "llama-3.1-8b", "--chip", "h100-sxm", "--tp", "5"],
     "tp must divide n_heads=32"),
    (["estimate", "--model", "llama-3.1-8b", "--chip", "a100-80gb", "--act", "fp4"],
     "not supported by chip 'a100-80gb'"),
    (["estimate", "--model", "/nonexistent/config.json", "--chip", "h100-sxm"], "config.json"),
])
def test_bad_input_exit_2_one_line(capsys, argv, msg):
    rc, out, err = run(capsys, *argv)
    assert rc == 2
    assert err.startswith("infercast: error: ") and msg in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("ext", ["parquet", "csv"])
def test_sweep_writes_file(capsys, tmp_path, ext):
    path = tmp_path / f"sweep.{ext}"
    rc, out, err = run(capsys, "sweep", "--models", "llama-3.1-8b,llama-3.1-70b", "--chips",
                       "h100-sxm,b200", "--tp", "1,2,4,8", "--batch", "1,2,4", "--prompt",
                       "128,512", "--output", "128", "--out", str(path), "--json")
    assert rc == 0, err
    summary = json.loads(out)
    assert summary["points"] == 2 * 2 * 4 * 3 * 2
    import pandas as pd
    df = pd.read_parquet(path) if ext == "parquet" else pd.read_csv(path)
    assert len(df) == summary["points"]
    assert set(INPUT_KEYS + OUTPUT_KEYS) <= set(df.columns)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_failed_sweep_leaves_no_file(capsys, tmp_path):
    path = tmp_path / "bad.parquet"
    rc, _, err = run(capsys, "sweep", "--models", "llama-3.1-8b", "--chips", "h100-sxm",
                     "--tp", "3", "--out", str(path))
    assert rc == 2 and "tp must divide" in err
    rc, _, err = run(capsys, "sweep", "--models", "llama-3.1-8b", "--chips", "h100-sxm",
                     "--out", str(tmp_path / "x.txt"))
    assert rc == 2 and ".parquet or .csv" in err
    assert list(tmp_path.iterdir()) == []


def test_write_failure_midway_leaves_no_partial_file(tmp_path, monkeypatch):
    import engine
    res = engine.sweep("llama-3.1-8b", "h100-sxm", batch=[1, 2])
    import pandas as pd

    def boom(self, path, **kw):
        with open(path, "w") as fh:
            fh.write("partial")
        raise OSError("disk full")
    monkeypatch.setattr(pd.DataFrame, "to_csv", boom)
    with pytest.raises(OSError, match="disk full"):
        res.write(str(tmp_path / "out.csv"))
    assert list(tmp_path.iterdir()) == []


def test_chips_models_config(capsys):
    rc, out, _ = run(capsys, "chips", "--json")
    assert rc == 0 and any(r["name"] == "h100-sxm" for r in json.loads(out))
    rc, out, _ = run(capsys, "models", "--json")
    assert rc == 0 and any(r["name"] == "deepseek-v3" for r in json.loads(out))
    rc, out, _ = run(capsys, "chips", "show", "h100-sxm")
    assert rc == 0 and "memory_bandwidth" in out
    rc, out, _ = run(capsys, "config")
    assert rc == 0 and "backends_available" in out


def test_console_script_entry_point():
    # the installed `infercast` script and `python -m engine.cli` are the same program
    proc = subprocess.run([sys.executable, "-m", "engine.cli", "estimate", "--model", "llama-3.1-8b",
                           "--chip", "nope"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 2 and proc.stderr.startswith("infercast: error: unknown chip")


MIXTRAL_CONFIG = os.path.join(os.path.dirname(__file__), "data", "configs",
                              "mistralai__Mixtral-8x7B-Instruct-v0.1__config.json")


def test_models_add_writes_a_catalog_entry_usable_by_name(capsys, tmp_path):
    from engine import catalog
    cat = tmp_path / "mine.toml"
    try:
        rc, out, err = run(capsys, "models", "add", MIXTRAL_CONFIG, "--name", "my-mixtral",
                           "--catalog", str(cat), "--json")
        assert rc == 0, err
        info = json.loads(out)
        # computed from the config: Mixtral-8x7B 46.7B total / 12.9B active (models.csv)
        assert info["total_params"] == catalog.get_model("mixtral-8x7b").total_params
        rc, out, err = run(capsys, "estimate", "--model", "my-mixtral", "--chip", "h200",
                           "--catalog", str(cat), "--json")
        assert rc == 0, err
        ref = engine_estimate_json(capsys, "mixtral-8x7b")
        assert json.loads(out)["tpot_s"] == pytest.approx(ref["tpot_s"], rel=1e-12)
        # the same name again is refused and the file is unchanged
        before = cat.read_text()
        rc, _, err = run(capsys, "models", "add", MIXTRAL_CONFIG, "--name", "my-mixtral",
                         "--catalog", str(cat))
        assert rc == 2 and "already has a model named 'my-mixtral'" in err
        assert cat.read_text() == before
    finally:
        catalog.reset_catalog()


def engine_estimate_json(capsys, model):
    rc, out, err = run(capsys, "estimate", "--model", model, "--chip", "h200", "--json")
    assert rc == 0, err
    return json.loads(out)


def test_models_add_failures_leave_no_file(capsys, tmp_path):
    cat = tmp_path / "mine.toml"
    bad = tmp_path / "config.json"
    bad.write_text('{"model_type": "bert", "hidden_size": 8}')
    rc, _, err = run(capsys, "models", "add", str(bad), "--catalog", str(cat))
    assert rc == 2 and "bert" in err
    rc, _, err = run(capsys, "models", "add", MIXTRAL_CONFIG)
    assert rc == 2 and "needs --catalog" in err
    rc, _, err = run(capsys, "models", "add", MIXTRAL_CONFIG, "--catalog", str(tmp_path / "x.json"))
    assert rc == 2 and "must end in .toml" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]
