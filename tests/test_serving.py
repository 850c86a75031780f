"""Max-throughput serving mode: brute-force oracle, latency limits, errors, CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

import engine
from engine import serving
from engine.cli import main
from engine.results import INPUT_KEYS, OUTPUT_KEYS

# Llama-3.1-8B fp8 on one H100: max_batch 448 > DENSE_CAP, so the geometric grid and the
# integer refinement are exercised.
CASE = dict(tp=1, prompt_tokens=128, output_tokens=2048, weight_dtype="fp8", kv_dtype="fp8",
            act_dtype="fp8")


def _brute(model, chip, **kw):
    max_batch = engine.estimate(model, chip, batch=1, **kw)["max_batch"]
    res = engine.sweep(model, chip, batch=list(range(1, max_batch + 1)), backend="numpy", **kw)
    return res, max_batch


def test_candidates_dense_then_geometric():
    c = serving.candidate_batches(1000)
    assert c[0] == 1 and c[-1] == 1000 and np.all(np.diff(c) > 0)
    assert np.array_equal(c[:256], np.arange(1, 257))
    steps = c[256:] / c[255:-1]
    assert steps.max() <= 1.0 + serving.GRID_STEP + 1e-2
    assert np.array_equal(serving.candidate_batches(7), np.arange(1, 8))
    assert len(serving.candidate_batches(0)) == 0


def test_matches_brute_force_over_every_batch():
    est = engine.max_throughput("llama-3.1-8b", "h100-sxm", **CASE)
    res, max_batch = _brute("llama-3.1-8b", "h100-sxm", **CASE)
    assert max_batch > serving.DENSE_CAP
    best = int(np.nanargmax(res["output_tokens_per_s"]))
    assert est.batch == best + 1
    assert est.output_tokens_per_s == pytest.approx(res["output_tokens_per_s"][best], rel=1e-12)
    for k in INPUT_KEYS + OUTPUT_KEYS + ("total_params", "active_params"):
        assert k in est, k
    assert set(est) == set(engine.estimate("llama-3.1-8b", "h100-sxm", batch=3, **CASE))


@pytest.mark.parametrize("ttft_max,tpot_max", [(0.5, None), (None, 0.012), (2.0, 0.02)])
def test_static_limits_give_the_best_feasible_batch(ttft_max, tpot_max):
    est = engine.max_throughput("llama-3.1-8b", "h100-sxm", ttft_max=ttft_max,
                                tpot_max=tpot_max, **CASE)
    res, _ = _brute("llama-3.1-8b", "h100-sxm", **CASE)
    ok = np.ones(len(res), dtype=bool)
    if ttft_max is not None:
        ok &= res["ttft_s"] <= ttft_max
        assert est.ttft_s <= ttft_max
    if tpot_max is not None:
        ok &= res["tpot_s"] <= tpot_max
        assert est.tpot_s <= tpot_max
    best = int(np.argmax(np.where(ok, res["output_tokens_per_s"], -np.inf)))
    assert est.batch == best + 1
    unlimited = engine.max_throughput("llama-3.1-8b", "h100-sxm", **CASE)
    assert est.output_tokens_per_s <= unlimited.output_tokens_per_s


def test_continuous_batching_latencies():
    kw = dict(tp=2, prompt_tokens=1024, output_tokens=294, weight_dtype="fp8", kv_dtype="fp8",
              act_dtype="fp8")
    est = engine.max_throughput("llama-2-70b", "h100-sxm", ttft_max=2.0, tpot_max=0.2,
                                batching="continuous", **kw)
    one = engine.estimate("llama-2-70b", "h100-sxm", batch=1, **kw)
    assert est.tpot_s == pytest.approx(est.e2e_s / 294, rel=1e-12)
    assert est.ttft_s == pytest.approx(one.ttft_s + est.tpot_s, rel=1e-12)
    static = engine.max_throughput("llama-2-70b", "h100-sxm", ttft_max=2.0, tpot_max=0.2, **kw)
    # a static batch must prefill every prompt before the first token: a smaller batch
    assert static.batch < est.batch and static.ttft_s <= 2.0


def test_explicit_batches_and_errors():
    est = engine.max_throughput("llama-3.1-8b", "h100-sxm", batches=[1, 4, 16, 10**6], **CASE)
    assert est.batch == 16
    with pytest.raises(ValueError, match=r"^no batch meets ttft_max=0.0001 s \(smallest TTFT"):
        engine.max_throughput("llama-3.1-8b", "h100-sxm", ttft_max=1e-4, **CASE)
    with pytest.raises(ValueError, match=r"^no batch meets tpot_max=1e-05 s"):
        engine.max_throughput("llama-3.1-8b", "h100-sxm", tpot_max=1e-5, **CASE)
    with pytest.raises(ValueError, match=r"ttft_max must be > 0 s and finite, got -1"):
        engine.max_throughput("llama-3.1-8b", "h100-sxm", ttft_max=-1, **CASE)
    with pytest.raises(ValueError, match=r"batching must be one of static, continuous, got 'x'"):
        engine.max_throughput("llama-3.1-8b", "h100-sxm", batching="x", **CASE)
    with pytest.raises(ValueError, match=r"batches must include a value <= max_batch"):
        engine.max_throughput("llama-3.1-8b", "h100-sxm", batches=[10**6], **CASE)


def test_model_that_does_not_fit_is_a_result():
    est = engine.max_throughput("llama-3.1-405b", "l40s", prompt_tokens=128, output_tokens=16)
    assert est.fits is False and est.batch == 1 and est.max_batch == 0


def test_cli_max_throughput_json(capsys):
    args = ["estimate", "--model", "llama-3.1-8b", "--chip", "h100-sxm", "--prompt", "128",
            "--output", "2048", "--weights", "fp8", "--kv", "fp8", "--act", "fp8",
            "--max-throughput", "--json"]
    assert main(args) == 0
    got = json.loads(capsys.readouterr().out)
    plain = ["estimate", "--model", "llama-3.1-8b", "--chip", "h100-sxm", "--json"]
    assert main(plain) == 0
    assert list(got) == list(json.loads(capsys.readouterr().out))
    assert got["batch"] == engine.max_throughput("llama-3.1-8b", "h100-sxm", **CASE).batch


@pytest.mark.parametrize("extra,msg", [
    (["--ttft-max", "1"], "--ttft-max/--tpot-max need --max-throughput"),
    (["--max-throughput", "--tpot-max", "0"], "tpot_max must be > 0 s and finite, got 0.0"),
    (["--max-throughput", "--ttft-max", "1e-6"], "no batch meets ttft_max=1e-06 s"),
])
def test_cli_errors_exit_2(capsys, extra, msg):
    assert main(["estimate", "--model", "llama-3.1-8b", "--chip", "h100-sxm", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("infercast: error: ") and msg in err and err.count("\n") == 1
