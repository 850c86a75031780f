"""numba backend: the roofline kernel compiled with ``@njit(parallel=True)``.

Design: one scalar function per formula (``_series``, ``_sum_max_affine``,
``_experts_touched``, ``_allreduce``...), one ``prange`` loop over points in
:func:`_roofline_loop`. Formulas and conventions are documented in
:mod:`engine.core.reference`, which is the oracle these are tested against.
Inputs are trusted: :mod:`engine.core.dispatch` validates dtypes, shapes and
index ranges before calling.
"""
from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

from . import layout as L

_OPTS = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")

# local copies so numba sees compile-time constants
M_LAYERS, M_HIDDEN, M_FLOP_LIN, M_FLOP_HEAD = L.M_LAYERS, L.M_HIDDEN, L.M_FLOP_LIN, L.M_FLOP_HEAD
M_ATTN_FULL, M_ATTN_WIN, M_WINDOW = L.M_ATTN_FULL, L.M_ATTN_WIN, L.M_WINDOW
M_KV_FULL, M_KV_WIN, M_KV_SPLIT = L.M_KV_FULL, L.M_KV_WIN, L.M_KV_SPLIT
M_PARAMS_RESIDENT, M_PARAMS_READ, M_PARAMS_EXPERT = (L.M_PARAMS_RESIDENT, L.M_PARAMS_READ,
                                                     L.M_PARAMS_EXPERT)
M_EXPERTS, M_EXPERTS_ACTIVE = L.M_EXPERTS, L.M_EXPERTS_ACTIVE
C_INV_FLOPS, C_USABLE_BYTES, C_INV_MEM_BW, C_INV_LINK_BW = (L.C_INV_FLOPS, L.C_USABLE_BYTES,
                                                            L.C_INV_MEM_BW, L.C_INV_LINK_BW)
C_LINK_LATENCY, C_STEP_OVERHEAD, C_HOURLY_USD, C_TDP_W = (L.C_LINK_LATENCY, L.C_STEP_OVERHEAD,
                                                          L.C_HOURLY_USD, L.C_TDP_W)
BOUND_NONE, BOUND_COMPUTE, BOUND_MEMORY, BOUND_NETWORK = (L.BOUND_NONE, L.BOUND_COMPUTE,
                                                          L.BOUND_MEMORY, L.BOUND_NETWORK)
NAN = math.nan


@njit(inline="always", **_OPTS)
def _series(a, b, lo, hi):
    n = hi - lo + 1.0
    if n <= 0.0:
        return 0.0
    return n * a + b * (lo + hi) * n * 0.5


@njit(inline="always", **_OPTS)
def _sum_max_affine(a1, b1, a2, b2, lo, hi):
    if hi < lo:
        return 0.0
    if b1 == b2:
        return _series(max(a1, a2), b1, lo, hi)
    cstar = (a2 - a1) / (b1 - b2)
    if b1 > b2:
        k = min(max(np.ceil(cstar), lo), hi + 1.0)
        return _series(a2, b2, lo, k - 1.0) + _series(a1, b1, k, hi)
    k = max(min(np.floor(cstar), hi), lo - 1.0)
    return _series(a1, b1, lo, k) + _series(a2, b2, k + 1.0, hi)


@njit(inline="always", **_OPTS)
def _experts_touched(n_tok, n_exp, k):
    if n_exp <= 0.0:
        return 0.0
    return -n_exp * math.expm1(n_tok * math.log1p(-k / n_exp))


@njit(inline="always", **_OPTS)
def _network(n_tok, layers, hidden, ab, tp, pp, inv_link, lat):
    msg = n_tok * hidden * ab
    t = 0.0
    if tp > 1.0:
        t += 2.0 * layers * (2.0 * (tp - 1.0) / tp * msg * inv_link + 2.0 * (tp - 1.0) * lat)
    if pp > 1.0:
        t += (pp - 1.0) * (msg * inv_link + lat)
    return t


@njit(inline="always", **_OPTS)
def _bound(t_comp, t_mem, t_net):
    if t_net > max(t_comp, t_mem):
        return BOUND_NETWORK
    return BOUND_COMPUTE if t_comp >= t_mem else BOUND_MEMORY


@njit(**_OPTS)
def _point(i, mt, ct, db, model_idx, chip_idx, tp_a, pp_a, batch, prompt, output,
           w_dt, kv_dt, act_dt, loop_decode, out_f, out_bound, out_fits, out_maxb, o):
    mi = model_idx[i]
    ci = chip_idx[i]
    tp = float(tp_a[i])
    pp = float(pp_a[i])
    B = float(batch[i])
    P = float(prompt[i])
    N = float(output[i])
    wb = db[w_dt[i]]
    kb = db[kv_dt[i]]
    ab = db[act_dt[i]]
    inv_f = ct[ci, C_INV_FLOPS + act_dt[i]]
    inv_bw = ct[ci, C_INV_MEM_BW]
    inv_link = ct[ci, C_INV_LINK_BW]
    lat = ct[ci, C_LINK_LATENCY]
    ovh = ct[ci, C_STEP_OVERHEAD]
    layers = mt[mi, M_LAYERS]
    hidden = mt[mi, M_HIDDEN]
    w = mt[mi, M_WINDOW]
    kv_full = mt[mi, M_KV_FULL]
    kv_win = mt[mi, M_KV_WIN]
    n_exp = mt[mi, M_EXPERTS]
    k_exp = mt[mi, M_EXPERTS_ACTIVE]

    # memory per chip
    kv_frac = 1.0 / min(tp, mt[mi, M_KV_SPLIT])
    inv_chips = 1.0 / (tp * pp)
    weight_bytes = mt[mi, M_PARAMS_RESIDENT] * wb / (tp * pp)
    ctx_max = P + N
    kv_seq = kb * kv_frac * (kv_full * ctx_max + kv_win * min(ctx_max, w)) / pp
    room = ct[ci, C_USABLE_BYTES] - weight_bytes
    mb = 0.0
    if room >= 0.0:
        mb = min(np.floor(room / kv_seq), 4611686018427387904.0)
    max_b = np.int64(mb)
    out_maxb[o] = max_b
    out_f[5, o] = weight_bytes
    out_f[6, o] = B * kv_seq
    fits = batch[i] <= max_b
    out_fits[o] = fits
    if not fits:
        out_f[0, o] = NAN
        out_f[1, o] = NAN
        out_f[2, o] = NAN
        out_f[3, o] = NAN
        out_f[4, o] = NAN
        out_f[7, o] = NAN
        out_f[8, o] = NAN
        out_bound[0, o] = BOUND_NONE
        out_bound[1, o] = BOUND_NONE
        return

    inv_tp = 1.0 / tp
    wpre = wb * inv_tp
    kv_tok_bytes = kb * kv_frac * (kv_full + kv_win)
    act_tok_bytes = 2.0 * layers * hidden * ab

    # prefill
    n_pre = B * P
    if P <= w:
        win_keys = P * (P + 1.0) * 0.5
    else:
        win_keys = w * (w + 1.0) * 0.5 + (P - w) * w
    flops_pre = B * (mt[mi, M_FLOP_LIN] * P + mt[mi, M_FLOP_HEAD]
                     + mt[mi, M_ATTN_FULL] * P * (P + 1.0) * 0.5 + mt[mi, M_ATTN_WIN] * win_keys)
    t_comp = flops_pre * inv_tp * inv_f
    w_read = wpre * (mt[mi, M_PARAMS_READ]
                     + mt[mi, M_PARAMS_EXPERT] * _experts_touched(n_pre, n_exp, k_exp))
    t_mem = (w_read + n_pre * (kv_tok_bytes + act_tok_bytes)) * inv_bw
    t_net = _network(n_pre, layers, hidden, ab, tp, pp, inv_link, lat)
    ttft = max(t_comp, t_mem) + t_net + ovh
    out_bound[0, o] = _bound(t_comp, t_mem, t_net)

    # decode: contexts P+1 .. P+N-1
    cf = B * inv_tp * inv_f
    a1 = cf * (mt[mi, M_FLOP_LIN] + mt[mi, M_FLOP_HEAD])
    b1 = cf * mt[mi, M_ATTN_FULL]
    g1 = cf * mt[mi, M_ATTN_WIN]
    w_read = wpre * (mt[mi, M_PARAMS_READ]
                     + mt[mi, M_PARAMS_EXPERT] * _experts_touched(B, n_exp, k_exp))
    a2 = (w_read + B * (kv_tok_bytes + act_tok_bytes)) * inv_bw
    kvb = B * kb * kv_frac * inv_bw
    b2 = kvb * kv_full
    g2 = kvb * kv_win
    lo = P + 1.0
    hi = P + N - 1.0
    h1 = min(hi, w)
    l2 = max(lo, w + 1.0)
    if loop_decode:
        s_max = 0.0
        s_comp = 0.0
        s_mem = 0.0
        c = lo
        while c <= hi:
            kw = min(c, w)
            tc = a1 + b1 * c + g1 * kw
            tm = a2 + b2 * c + g2 * kw
            s_max += max(tc, tm)
            s_comp += tc
            s_mem += tm
            c += 1.0
    else:
        s_max = (_sum_max_affine(a1, b1 + g1, a2, b2 + g2, lo, h1)
                 + _sum_max_affine(a1 + g1 * w, b1, a2 + g2 * w, b2, l2, hi))
        s_comp = _series(a1, b1 + g1, lo, h1) + _series(a1 + g1 * w, b1, l2, hi)
        s_mem = _series(a2, b2 + g2, lo, h1) + _series(a2 + g2 * w, b2, l2, hi)
    n_steps = N - 1.0
    t_net_d = _network(B, layers, hidden, ab, tp, pp, inv_link, lat)
    decode_total = s_max + n_steps * (t_net_d + ovh)
    e2e = ttft + decode_total
    tokens = B * N
    tok_s = tokens / e2e
    n_chips = tp * pp
    out_f[0, o] = ttft
    out_f[1, o] = decode_total / n_steps if n_steps > 0.0 else NAN
    out_f[2, o] = e2e
    out_f[3, o] = tok_s
    out_f[4, o] = tok_s * inv_chips
    out_f[7, o] = ct[ci, C_HOURLY_USD] * n_chips * e2e / 3600.0 / tokens * 1e6
    out_f[8, o] = ct[ci, C_TDP_W] * n_chips * e2e / tokens
    if n_steps > 0.0:
        out_bound[1, o] = _bound(s_comp, s_mem, n_steps * t_net_d)
    else:
        out_bound[1, o] = BOUND_NONE


@njit(parallel=True, **_OPTS)
def _roofline_loop(mt, ct, db, model_idx, chip_idx, tp, pp, batch, prompt, output,
                   w_dt, kv_dt, act_dt, loop_decode, out_f, out_bound, out_fits, out_maxb, offset):
    for i in prange(model_idx.shape[0]):
        _point(i, mt, ct, db, model_idx, chip_idx, tp, pp, batch, prompt, output,
               w_dt, kv_dt, act_dt, loop_decode, out_f, out_bound, out_fits, out_maxb, i + offset)


def roofline(mt, ct, db, model_idx, chip_idx, tp, pp, batch, prompt, output, w_dt, kv_dt,
             act_dt, out_f, out_bound, out_fits, out_maxb, n_threads=1, loop_decode=False,
             out_offset=0):
    """Run the kernel with ``n_threads`` numba threads (arguments already validated).

    Point ``i`` of the inputs is written to column ``out_offset + i`` of the outputs.
    """
    n_threads = max(1, min(int(n_threads), numba.config.NUMBA_NUM_THREADS))
    prev = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    try:
        _roofline_loop(mt, ct, db, model_idx, chip_idx, tp, pp, batch, prompt, output,
                       w_dt, kv_dt, act_dt, bool(loop_decode), out_f, out_bound, out_fits,
                       out_maxb, np.int64(out_offset))
    finally:
        numba.set_num_threads(prev)


def max_threads() -> int:
    return numba.config.NUMBA_NUM_THREADS
