"""NumPy reference implementation of the per-draw market model (the specification).

Design
------
Readable, vectorised over draws, one loop over years; every formula appears once
and in the same order as in the compiled twins (``numba_kernel.py``,
``ext/_market.pyx``), so the backends agree to rounding. It is the test oracle
and the "vectorised NumPy" comparison in ``benchmarks/bench_market.py``.

Model (year index ``t = 0 .. T-1``, calendar year ``y_t``), see ``docs/market.md``
for the sources of each relation:

* demand index ``B_t = B_{t-1} (1 + g_t)``, ``g_t = (g_1 - 1) d^(t-1)``
  (growth with geometrically decaying excess, a discrete Gompertz-like path);
* price ``P_t = P_0 exp(-Lambda_t)``, ``Lambda_t = sum_{j<=t} ln(p_1) d_p^(j-1)`` (the
  log-rate of decline decays geometrically); demand response ``exp(eps Lambda_t)``
  (constant-elasticity demand, ``Q ~ P^-eps``);
* the price is capped by a largest sustainable markup on the serving cost,
  ``P_t = min(P_0 exp(-Lambda_t), m_max * cost_t)`` (competition: the DeepSeek
  disclosure of Feb 2025 puts theoretical revenue at 6.45x the rented-GPU cost),
  and demand responds to the price trend, ``exp(eps Lambda_t)`` (the cap limits the
  margin, not the technology-driven price index that demand follows);
* reasoning and agent shares are logistic in the year (Griliches 1957 diffusion):
  ``s(y) = s_max / (1 + exp(-k (y - y_mid)))``; tokens scale by
  ``[1 + s_r (m_r - 1)] [1 + s_a (c_a - 1)]`` relative to the base year;
* LLM serving chips ``N = tokens_per_s * peak_to_average / theta``, with
  ``theta = roofline tokens/s/chip * efficiency * utilisation * software_t * hardware^(years beyond roadmap)``;
  the software factor grows by ``1 + s_t``, ``s_t = (s_1 - 1) d_s^(t-1)`` (gains with a
  decaying excess, so the cumulative software gain is bounded);
* training FLOP per year ``runs_t * compute_per_run_t * post_training_multiplier``, the
  compute per run growing by ``1 + c_t``, ``c_t = (c_1 - 1) d_c^(t-1)`` (Epoch AI's
  4-5x/yr frontier trend, Sevilla et al. 2022, with a decaying excess);
  peak FLOP/s needed ``= FLOP / (seconds_per_year * utilisation)`` (Kaplan et al. 2020
  C = 6 N D accounting is inside ``compute_per_run``; MFU as in Chowdhery et al. 2022);
* fleets tracked as installed peak FLOP/s with straight-line retirement over the
  useful life; the purchases *wanted* are ``max(0, need - retained)``; their spend
  ``W`` is met only up to a budget ceiling ``C`` through the smooth minimum
  ``spend = W / sqrt(1 + (W / C)^2)`` (the p = 2 soft minimum of W and C: equal to
  ``W`` when ``W << C``, tending to ``C`` when ``W >> C``; p = 1 would be the
  Michaelis-Menten saturation, Michaelis & Menten 1913, which already cuts 9 %
  at W = C/10). Inference and training purchases are scaled by the same factor;
* what the fleet delivers is capped by what is installed: served tokens =
  demanded tokens * min(1, installed inference compute / needed), achieved training
  FLOP = min(installed, needed) * seconds * MFU, and the inference share of compute
  is the share of the installed compute in use;
* serving cost per token = (price / life + power * PUE * electricity) * peak_to_average / theta;
* vendor weights interpolate geometrically from start to end and are normalised
  per draw, so the shares sum to one (normalised positive weights, the
  construction of the Dirichlet from gamma variates, Devroye 1986, sec. XI.4).

References
----------
Michaelis, L., Menten, M. L. (1913). Die Kinetik der Invertinwirkung. *Biochem. Z.* 49, 333-369.
Sevilla, J. et al. (2022). Compute trends across three eras of machine learning. arXiv:2202.05924.
"""
from __future__ import annotations

import numpy as np

from . import layout as L

__all__ = ["market_values_numpy", "histogram_index_numpy", "market_summaries_numpy"]


def _numpy_rsqrt(u):
    return 1.0 / np.sqrt(u)


def market_values_numpy(x: np.ndarray, yp: np.ndarray, out: np.ndarray | None = None, *,
                        exp=np.exp, log=np.log, power=np.power, rsqrt=_numpy_rsqrt) -> np.ndarray:
    """Per-draw outputs of the market model.

    Parameters
    ----------
    x : ndarray, shape (n, N_INPUTS)
        Inputs per draw in canonical units (see ``layout.INPUT_NAMES``).
    yp : ndarray, shape (T, N_YEAR_PARAMS)
        Per-year roadmap values (see ``layout.YEAR_PARAM_NAMES``).
    out : ndarray, shape (n, N_OUTPUTS, T), optional
    exp, log, power, rsqrt : callables on arrays, optional
        The elementary functions (NumPy's by default; ``rsqrt(u)`` = ``1 / sqrt(u)``).
        The tests pass the compiled kernels' own (``numba_kernel.math_array``) to
        check that the kernels compute exactly these formulas in this order: with
        NumPy's, the purchases ``max(0, need - retained)`` amplify the kernels'
        2-ulp differences in exp and pow by ``(need + retained) / (need - retained)``,
        which is unbounded when the two nearly cancel.

    Returns
    -------
    ndarray, shape (n, N_OUTPUTS, T)
    """
    n = x.shape[0]
    T = yp.shape[0]
    if out is None:
        out = np.empty((n, L.N_OUTPUTS, T))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return _values(x, yp, out, n, T, exp, log, power, rsqrt)


def _values(x, yp, out, n, T, exp, log, power, rsqrt):
    c = [x[:, j] for j in range(L.N_INPUTS)]
    (D0, g1, gdec, P0, p1, pdec, eps, rs_max, rs_mid, rs_k, rm, as_max, as_mid, as_k, ac,
     eff, util, sw, hw, p2a, oth0, othg, runs0, runsg, cpr0, cprg, cdec, ptm, tutil, pfac,
     life, gprior, pue, elec) = c[:34]
    ceiling = c[42]
    sdec = c[43]
    mk = c[44]
    S = L.SECONDS_PER_YEAR
    keep = 1.0 - 1.0 / life
    inv_ceiling = 1.0 / ceiling
    y0 = yp[0, 0]
    er = exp(-rs_k * (y0 - rs_mid))
    er_step = exp(-rs_k)
    ea = exp(-as_k * (y0 - as_mid))
    ea_step = exp(-as_k)
    mix0 = (1.0 + rs_max / (1.0 + er) * (rm - 1.0)) * (1.0 + as_max / (1.0 + ea) * (ac - 1.0))
    inv_mix0 = 1.0 / mix0
    inv_life_s = 1.0 / (life * S)
    inv_s_tutil = 1.0 / (S * tutil)
    energy_cost = pue * elec * (1.0 / L.JOULES_PER_KWH)
    tps_per_day = p2a * (1.0 / L.SECONDS_PER_DAY)
    inv_tpr = 1.0 / (T - 1) if T > 1 else 0.0
    w = []
    r = []
    for v in range(4):
        a = c[34 + 2 * v]
        b = c[35 + 2 * v]
        w.append(a.copy())
        r.append(power(b / a, inv_tpr))
    B = np.ones(n)
    Lam = np.zeros(n)
    gstep = g1 - 1.0
    lam = log(p1)
    swf = np.ones(n)
    sstep = sw - 1.0
    hwf = np.ones(n)
    oth = oth0 * yp[0, 2]
    train = runs0 * cpr0 * ptm
    cstep = cprg - 1.0
    cap_inf = cap_tr = chips = power_w = None
    for t in range(T):
        if t > 0:
            B = B * (1.0 + gstep)
            gstep = gstep * gdec
            Lam = Lam + lam
            lam = lam * pdec
            er = er * er_step
            ea = ea * ea_step
            swf = swf * (1.0 + sstep)
            sstep = sstep * sdec
            oth = oth * othg
            train = train * runsg * (1.0 + cstep)
            cstep = cstep * cdec
            for v in range(4):
                w[v] = w[v] * r[v]
            if yp[t, 5] > yp[t - 1, 5]:
                hwf = hwf * hw
        mix = (1.0 + rs_max / (1.0 + er) * (rm - 1.0)) * (1.0 + as_max / (1.0 + ea) * (ac - 1.0))
        theta = yp[t, 1] * hwf * eff * util * swf
        inv_theta = 1.0 / theta
        flops = yp[t, 2] * hwf
        inv_flops = 1.0 / flops
        chip_price = yp[t, 3] * pfac
        watts = yp[t, 4]
        cost_s = chip_price * inv_life_s + watts * energy_cost
        cost_mtok = cost_s * p2a * inv_theta * 1e6
        price = np.minimum(P0 * exp(-Lam), mk * cost_mtok)
        tokens_day = D0 * B * exp(eps * Lam) * (mix * inv_mix0)
        chips_llm = tokens_day * tps_per_day * inv_theta
        c_inf = chips_llm * flops + oth
        c_tr = train * inv_s_tutil
        if t == 0:
            cap_inf = c_inf / gprior
            cap_tr = c_tr / gprior
            chips = (cap_inf + cap_tr) * inv_flops
            power_w = chips * watts
        ret_inf = cap_inf * keep
        ret_tr = cap_tr * keep
        want_inf = np.maximum(c_inf - ret_inf, 0.0)
        want_tr = np.maximum(c_tr - ret_tr, 0.0)
        xr = (want_inf + want_tr) * inv_flops * chip_price * inv_ceiling
        f = rsqrt(1.0 + xr * xr)
        new_inf = want_inf * f
        new_tr = want_tr * f
        cap_inf = ret_inf + new_inf
        cap_tr = ret_tr + new_tr
        use_inf = np.minimum(cap_inf, c_inf)
        use_tr = np.minimum(cap_tr, c_tr)
        bought_inf = new_inf * inv_flops
        bought_tr = new_tr * inv_flops
        shipped = bought_inf + bought_tr
        spend_inf = bought_inf * chip_price
        spend_tr = bought_tr * chip_price
        spend = spend_inf + spend_tr
        chips = chips * keep + shipped
        power_w = power_w * keep + shipped * watts
        served = tokens_day * (use_inf / c_inf)
        spend_per_w = spend / (w[0] + w[1] + w[2] + w[3])
        o = out[:, :, t]
        o[:, 0] = served
        o[:, 1] = price
        o[:, 2] = cost_mtok
        o[:, 3] = served * 365.25 * price * 1e-6
        o[:, 4] = use_inf
        o[:, 5] = use_tr * (S * tutil)
        o[:, 6] = use_inf / (use_inf + use_tr)
        o[:, 7] = chips
        o[:, 8] = shipped
        o[:, 9] = power_w * pue * 1e-9
        o[:, 10] = spend_inf
        o[:, 11] = spend_tr
        o[:, 12] = spend
        o[:, 13] = spend_inf / spend
        for v in range(4):
            o[:, 14 + v] = w[v] * spend_per_w
    return out


def histogram_index_numpy(values: np.ndarray) -> np.ndarray:
    """Histogram bin of each value (see ``layout`` for the bin layout); NaN/inf get -1."""
    v = np.ascontiguousarray(values, dtype=np.float64)
    bits = v.view(np.uint64)
    key = ((bits & np.uint64(L.ABS_MASK)) >> np.uint64(L.HIST_SHIFT)).astype(np.int64)
    m = key - L.HIST_KEY_LO
    m = np.minimum(m, L.HIST_HALF - 1)
    neg = (bits >> np.uint64(63)).astype(bool)
    idx = np.where(m < 0, L.HIST_ZERO, np.where(neg, L.HIST_ZERO - 1 - m, L.HIST_ZERO + 1 + m))
    return np.where(np.isfinite(v), idx, -1)


def market_summaries_numpy(x, yp, hist, span, sums, nonfinite, clamped, ev_series, ev_op, ev_threshold, ev_count,
                           values=None):
    """Reference for the fused kernel: accumulate histogram counts, sums, non-finite
    counts and event counts of every series over the draws of ``x``.

    Parameters
    ----------
    x, yp
        As for :func:`market_values_numpy`.
    hist : ndarray (n_series, HIST_BINS) of int64 or uint16
        Counts; every finite value adds one to its bin. The caller makes sure no
        counter can overflow (``summaries.Accumulator`` flushes uint16 staging counts
        into int64 ones before it could).
    span : ndarray (n_series, 2) of int64
        Lowest and highest bin counted per series; widened to cover every bin this
        call counts (an empty span is ``(HIST_BINS, -1)``).
    sums : ndarray (n_series,)
        Running sums of the finite values, added draw by draw (sequentially) as in the
        compiled kernels.
    nonfinite, clamped : ndarray (n_series,) of int64
    ev_series, ev_op, ev_threshold, ev_count : event definitions and counts.
    values : ndarray (n, N_OUTPUTS, T), optional
        Precomputed outputs (tests pass a compiled backend's values).

    Returns the number of draws with at least one non-finite output.
    """
    vals = market_values_numpy(x, yp) if values is None else values
    n = x.shape[0]
    flat = vals.reshape(n, -1)
    bad = ~np.isfinite(flat)
    nonfinite += bad.sum(axis=0)
    idx = histogram_index_numpy(flat)
    ns = flat.shape[1]
    for s in range(ns):
        col = idx[:, s]
        ok = col >= 0
        if ok.any():
            np.add.at(hist[s], col[ok], 1)
            span[s, 0] = min(span[s, 0], int(col[ok].min()))
            span[s, 1] = max(span[s, 1], int(col[ok].max()))
        key = ((flat[ok, s].view(np.uint64) & np.uint64(L.ABS_MASK)) >> np.uint64(L.HIST_SHIFT)).astype(np.int64)
        clamped[s] += int(np.count_nonzero(key >= L.HIST_KEY_HI))
        # sequential left-to-right sum, the order of the compiled kernels
        sums[s] = np.cumsum(np.concatenate(([sums[s]], flat[ok, s])))[-1]
    for e in range(ev_series.shape[0]):
        col = flat[:, ev_series[e]]
        if ev_op[e] == L.EVENT_GT:
            ev_count[e] += int(np.count_nonzero(col > ev_threshold[e]))
        else:
            ev_count[e] += int(np.count_nonzero(col < ev_threshold[e]))
    return int(bad.any(axis=1).sum())
