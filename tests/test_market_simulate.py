"""Reproducibility, scenarios, sensitivity, convergence and the CLI."""
import argparse
import json
import os

import numpy as np
import pytest

from engine.market import distributions as D
from engine.market.convergence import run_until_converged
from engine.market.kernels import available_backends
from engine.market.scenario import load_scenario
from engine.market.sensitivity import ISHIGAMI_EXACT, ishigami, market_sobol, sobol_indices, tornado
from engine.market.simulate import BLOCK_DRAWS, Simulation, forecast, sample_values


@pytest.fixture(scope="module")
def scenario():
    return load_scenario("default")


@pytest.fixture(scope="module")
def model(scenario):
    return scenario.build()


def _key(fc):
    return (fc.hist.tobytes(), fc.mean.tobytes(), fc.quantiles.tobytes(), tuple(fc.events.values()),
            fc.nonfinite.tobytes())


def test_bit_identical_across_threads_batches_and_backends(model, scenario):
    draws = 2 * BLOCK_DRAWS + 1234
    ref = forecast(model, draws, seed=42, events=scenario.events, threads=1, batch_draws=8192)
    assert _key(forecast(model, draws, seed=42, events=scenario.events, threads=2, batch_draws=8192)) == _key(ref)
    assert _key(forecast(model, draws, seed=42, events=scenario.events, threads=2, batch_draws=1000)) == _key(ref)
    if "cython" in available_backends():
        assert _key(forecast(model, draws, seed=42, events=scenario.events, backend="cython", threads=2)) == _key(ref)
    other = forecast(model, draws, seed=43, events=scenario.events)
    assert _key(other) != _key(ref)


def test_constant_series_do_not_overflow_staging_counters(model):
    """Outputs that do not vary put every draw in one bin: more draws than a uint16
    staging counter holds must still be counted exactly, at any thread count and batch
    size (batches of BLOCK_DRAWS exceed the staging capacity and are split)."""
    inputs = {k: (D.fixed(float(d.ppf(np.array([0.5]))[0])) if not k.startswith("share_") else d)
              for k, d in model.inputs.items()}
    from engine.market.model import MarketModel
    m = MarketModel(inputs, model.years, model.year_params, name="fixed")
    draws = 2 * BLOCK_DRAWS + 5
    ref = forecast(m, draws, seed=3, threads=1)
    s = m.series_index("tokens_per_day", 2030)
    assert ref.hist[s].max() == draws and np.count_nonzero(ref.hist[s]) == 1
    assert np.all(ref.hist.sum(axis=1) + ref.nonfinite.ravel() == draws)
    for threads, batch in ((2, 8192), (2, BLOCK_DRAWS), (1, 777)):
        assert _key(forecast(m, draws, seed=3, threads=threads, batch_draws=batch)) == _key(ref)


def test_incremental_run_equals_single_run(model):
    a = Simulation(model, seed=5).run(BLOCK_DRAWS).run(BLOCK_DRAWS).result()
    b = Simulation(model, seed=5).run(2 * BLOCK_DRAWS).result()
    assert _key(a) == _key(b)


def test_numpy_backend_matches_numba_summaries(model):
    a = forecast(model, 3000, seed=1, backend="numpy")
    b = forecast(model, 3000, seed=1, backend="numba")
    assert np.array_equal(a.hist, b.hist)
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-12)


def test_default_scenario_p50s_finite_and_ordered(model):
    fc = forecast(model, 100_000, seed=0, threads=2)
    q = fc.quantiles
    finite_rows = fc.nonfinite.sum(axis=1) == 0
    assert np.all(np.isfinite(q[finite_rows]))
    assert np.all(np.diff(q, axis=2) >= 0)  # P5 <= P10 <= ... <= P95
    for name in ("inference_share_compute", "inference_share_spend"):
        o = fc.outputs.index(name)
        assert np.all((q[o] >= 0) & (q[o] <= 1))
    # vendor revenues add up to total spend (shares sum to one), checked per draw
    x, vals = sample_values(model, 2000, seed=0)
    o = fc.outputs.index
    total = vals[:, o("spend_total_usd")]
    vend = sum(vals[:, o(f"revenue_{v}_usd")] for v in ("nvidia", "amd", "hyperscaler_asic", "inference_startups"))
    np.testing.assert_allclose(vend, total, rtol=1e-12)
    # the forecast's streaming median agrees with the exact median within the bound
    y = sample_values(model, 100_000, seed=0)[1][:, o("spend_total_usd"), 3]
    exact = np.quantile(y, 0.5, method="inverted_cdf")
    assert abs(fc.quantile("spend_total_usd", 2026, 0.5) - exact) <= fc.quantile_relative_error_bound * exact


def test_event_probability_matches_draws(model):
    fc = forecast(model, 20_000, seed=3, events=["inference_share_spend[2026] > 0.6", "power_gw 2030 < 50"])
    _, vals = sample_values(model, 20_000, seed=3)
    o = fc.outputs.index("inference_share_spend")
    y = vals[:, o, 3]
    assert fc.events["inference_share_spend[2026] > 0.6"] == pytest.approx(np.mean(y[np.isfinite(y)] > 0.6), abs=0)


def test_tornado_and_market_sobol(model):
    pairs = tornado(model, "tokens_per_day", 2024, draws=5000, seed=0)
    assert pairs[0][0] in ("tokens_per_day_base", "demand_growth_initial")
    assert all(abs(a[1]) >= abs(b[1]) for a, b in zip(pairs, pairs[1:]))
    res = market_sobol(model, "price_per_mtok_usd", 2023, n=512, n_boot=50, log=True)
    i = res.names.index("price_per_mtok_base")
    # in the base year the price is the base price unless the markup cap binds (rare)
    assert res.S1[i] > 0.9 and res.ST[i] > 0.9
    assert np.all(res.ST[np.arange(len(res.names)) != i] < 0.05)


def test_sobol_ishigami_analytic():
    u = [D.uniform(-np.pi, np.pi, name=f"x{i}") for i in (1, 2, 3)]
    res = sobol_indices(ishigami, u, n=2 ** 14, seed=1, n_boot=100)
    np.testing.assert_allclose(res.S1, ISHIGAMI_EXACT["S1"], atol=0.04)
    np.testing.assert_allclose(res.ST, ISHIGAMI_EXACT["ST"], atol=0.04)
    for k in range(3):
        assert res.S1_ci[k, 0] <= res.S1_ci[k, 1] and res.ST_ci[k, 0] <= res.ST_ci[k, 1]
        assert res.ST_ci[k, 0] - 0.03 <= ISHIGAMI_EXACT["ST"][k] <= res.ST_ci[k, 1] + 0.03


def test_convergence_reports_achieved_error(model):
    cr = run_until_converged(model, [("spend_total_usd", 2026, 0.5)], rel_tol=0.05, max_draws=8 * BLOCK_DRAWS,
                             start_draws=BLOCK_DRAWS)
    assert cr.converged
    assert cr.targets[0][5] <= 0.05
    assert cr.forecast.n_draws % BLOCK_DRAWS == 0
    tight = run_until_converged(model, [("spend_total_usd", 2035, 0.95)], rel_tol=1e-6, max_draws=2 * BLOCK_DRAWS,
                                start_draws=BLOCK_DRAWS)
    assert not tight.converged and tight.forecast.n_draws == 2 * BLOCK_DRAWS


def _write(tmp_path, text, name="s.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("text, match", [
    ('extends = "default"\n[inputs.tokens_per_day_base]\ndist = "lognormal_ci"\nlo = 5e11\nhi = 1e11\n',
     r"inputs\.tokens_per_day_base\.lo \(line 4\).*lo < hi"),
    ('extends = "default"\n[inputs.demand_growth_initial]\ndist = "normal"\nmean = 3\nsd = -1\n',
     r"inputs\.demand_growth_initial\.sd \(line 5\).*must be > 0"),
    ('extends = "default"\n[scenario]\nstart_year = 2030\nend_year = 2025\n', r"end_year \(line 4\).*before it starts"),
    ('extends = "default"\n[inputs.bogus_input]\ndist = "fixed"\nvalue = 1\n', r"unknown input 'bogus_input'"),
    ('extends = "default"\n[inputs.serving_utilisation]\ndist = "lognormal_ci"\nlo = 0.2\nhi = 0.5\n', None),
    ('extends = "default"\n[inputs.share_nvidia_start]\ndist = "uniform"\nlo = 0.95\nhi = 0.99\n'
     '[inputs.share_amd_start]\ndist = "uniform"\nlo = 0.1\nhi = 0.2\n', "cannot sum to one"),
    ('extends = "default"\n[correlation]\ninputs = ["pue", "serving_efficiency", "serving_utilisation"]\n'
     'matrix = [[1, 0.9, -0.9], [0.9, 1, 0.9], [-0.9, 0.9, 1]]\n', r"correlation\.matrix \(line 4\).*semi-definite"),
    ('extends = "default"\n[scenario]\nevents = ["nope[2026] > 1"]\n', r"scenario\.events \(line 3\)"),
    ('[scenario\nname = 1', "invalid TOML"),
])
def test_scenario_errors_name_key_and_line(tmp_path, text, match):
    p = _write(tmp_path, text)
    with pytest.raises(ValueError) as exc:
        load_scenario(p).build()
    if match is None:  # support outside the domain (0, 1]
        assert "serving_utilisation" in str(exc.value) and "domain" in str(exc.value)
    else:
        import re
        assert re.search(match, str(exc.value)), str(exc.value)


def test_scenario_override_changes_horizon(tmp_path):
    p = _write(tmp_path, 'extends = "default"\n[scenario]\nstart_year = 2024\nend_year = 2027\n'
                         'events = []\n[inputs.pue]\ndist = "fixed"\nvalue = 1.2\n')
    sc = load_scenario(p)
    m = sc.build()
    assert list(m.years) == [2024, 2025, 2026, 2027]
    fc = forecast(m, 2000, seed=0)
    assert fc.quantiles.shape[1] == 4


def test_cli_outputs_and_errors(tmp_path, capsys):
    from engine.market.cli import main
    out = tmp_path / "f.csv"
    fan = tmp_path / "fan.png"
    tor = tmp_path / "tor.svg"
    rc = main(["--draws", "5000", "--seed", "1", "--threads", "2", "--out", str(out), "--plot", str(fan),
               "--tornado", str(tor), "--tornado-draws", "2000", "--event", "spend_total_usd[2027] > 5e11",
               "--json"])
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    assert data["draws"] == 5000 and "spend_total_usd[2027] > 5e11" in data["events"]
    import pandas as pd
    df = pd.read_csv(out)
    assert {"output", "year", "mean", "p05", "p50", "p95", "nonfinite_draws"} <= set(df.columns)
    assert fan.stat().st_size > 1000 and tor.stat().st_size > 1000
    pq = tmp_path / "f.parquet"
    assert main(["--draws", "2000", "--out", str(pq)]) == 0
    assert len(pd.read_parquet(pq)) == len(df)
    # bad input: exit 2, one line, no partial file
    bad = tmp_path / "bad.csv"
    for argv in (["--draws", "-5", "--out", str(bad)], ["--scenario", str(tmp_path / "missing.toml")],
                 ["--event", "spend_total_usd[1999] > 1", "--out", str(bad)], ["--out", str(tmp_path / "x.txt")]):
        capsys.readouterr()
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("infercast forecast: error:") and "\n" not in err
    assert not bad.exists()
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".")]


def test_cli_draws_accept_integer_scientific_notation(capsys):
    from engine.market.cli import _count, main
    assert [_count(t) for t in ("1e6", "2.5e6", "1E3", "250000", " 3e0 ", "1e20", "1.5e3")] == \
        [1_000_000, 2_500_000, 1000, 250_000, 3, 10 ** 20, 1500]
    for bad in ("1.5", "1e-3", "nan", "inf", "1e", "abc", "2.5e0"):
        with pytest.raises(argparse.ArgumentTypeError, match="whole number"):
            _count(bad)
    for huge in ("1e21", "1e2000000", "-1e2000000"):     # refused at once, not built
        with pytest.raises(argparse.ArgumentTypeError, match="at most 1e20"):
            _count(huge)
    assert main(["--draws", "5e3", "--seed", "2", "--json", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["draws"] == 5000
    with pytest.raises(SystemExit) as exc:
        main(["--draws", "1234.5", "--json"])
    assert exc.value.code == 2 and "whole number" in capsys.readouterr().err


def test_default_backend_is_the_fastest_built(model, monkeypatch):
    from engine.market import kernels
    assert "cython" in available_backends()       # CI builds the extension
    assert kernels.fastest_backend() == "cython"
    assert Simulation(model).backend.name == "cython"
    # without the extension the default falls back to numba (the import fails as an unbuilt one does)
    import builtins
    real_import = builtins.__import__

    def no_ext(name, globals=None, locals=None, fromlist=(), level=0):
        if name == "engine._ext" and "_market" in (fromlist or ()):
            raise ImportError("not built")
        return real_import(name, globals, locals, fromlist, level)
    monkeypatch.setattr(builtins, "__import__", no_ext)
    assert kernels.fastest_backend() == "numba"


def test_stale_extension_build_is_unavailable_not_a_crash(monkeypatch):
    """An in-place build from before the sampling kernels lacks ``sample_scores``:
    ``get_backend("cython")`` says to rebuild (ValueError, not AttributeError),
    ``available_backends()`` leaves it out and the default falls back to numba."""
    from engine._ext import _market
    from engine.market import kernels
    monkeypatch.setattr(kernels, "_CACHE", {})
    monkeypatch.delattr(_market, "sample_scores")
    with pytest.raises(ValueError, match=r"lacks sample_scores.*python setup.py build_ext --inplace"):
        kernels.get_backend("cython")
    assert "cython" not in kernels.available_backends()
    assert kernels.fastest_backend() == "numba"
    assert kernels.get_backend(None).name == "numba"

