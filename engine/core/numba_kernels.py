"""numba backend: the roofline kernel compiled with ``@njit(parallel=True)``.

Design: one scalar function per formula (``_series``, ``_sum_max_affine``,
``_network``, ``_bound``, ``_experts_touched``) and one scalar point function
``_eval_dep``, inlined into loops over blocks of ``BLOCK`` points
(:func:`_eval_block`). A ``prange`` loop gives each thread one contiguous part
of the blocks of struct-of-arrays points (:func:`_roofline_loop`); the grid
loop fills each block's columns from a Cartesian grid with an odometer
(:func:`_roofline_grid`), so a sweep never materialises its inputs, and
computes the deployment constants once for a block that shares one deployment.

Within a block the physics loop has no call and no data-dependent branch, so
LLVM vectorises it (on AVX-512 hosts: table gathers and eight points per
instruction) and it stores every result straight to its output row, so the
write-back overlaps the arithmetic. That needs the output rows to be noalias
arguments: each thread runs one part of the blocks in a function the
``prange`` body only calls (see the note above :func:`_point_blocks`). The
MoE ``expm1`` calls run in a short scalar loop of their own, only on lanes
where the result is not exactly -1 and a per-thread memo of decode steps
misses. None of this changes an operation of any formula, so results do not
depend on the block, part or thread count.

Formulas and conventions are documented in :mod:`engine.core.reference`,
which is the oracle these are tested against. Inputs are trusted:
:mod:`engine.core.dispatch` validates dtypes, shapes and index ranges before
calling.
"""
from __future__ import annotations

import math
from collections import namedtuple

import numba
import numpy as np
from llvmlite import ir
from numba import carray, njit, prange, types
from numba.extending import intrinsic

from . import layout as L

_OPTS = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")

# local copies so numba sees compile-time constants
M_LAYERS, M_HIDDEN, M_FLOP_LIN, M_FLOP_HEAD = L.M_LAYERS, L.M_HIDDEN, L.M_FLOP_LIN, L.M_FLOP_HEAD
M_ATTN_FULL, M_ATTN_WIN, M_WINDOW = L.M_ATTN_FULL, L.M_ATTN_WIN, L.M_WINDOW
M_KV_FULL, M_KV_WIN, M_KV_SPLIT = L.M_KV_FULL, L.M_KV_WIN, L.M_KV_SPLIT
M_PARAMS_RESIDENT, M_PARAMS_READ, M_PARAMS_EXPERT = (L.M_PARAMS_RESIDENT, L.M_PARAMS_READ,
                                                     L.M_PARAMS_EXPERT)
M_EXPERTS, M_EXPERTS_ACTIVE, M_LOG_KEEP = L.M_EXPERTS, L.M_EXPERTS_ACTIVE, L.M_LOG_KEEP
C_INV_FLOPS, C_USABLE_BYTES, C_INV_MEM_BW, C_INV_LINK_BW = (L.C_INV_FLOPS, L.C_USABLE_BYTES,
                                                            L.C_INV_MEM_BW, L.C_INV_LINK_BW)
C_LINK_LATENCY, C_STEP_OVERHEAD, C_HOURLY_USD, C_TDP_W = (L.C_LINK_LATENCY, L.C_STEP_OVERHEAD,
                                                          L.C_HOURLY_USD, L.C_TDP_W)
C_SCALEUP_DOMAIN, C_INV_SCALEOUT_BW, C_SCALEOUT_LATENCY = (L.C_SCALEUP_DOMAIN, L.C_INV_SCALEOUT_BW,
                                                          L.C_SCALEOUT_LATENCY)
BOUND_NONE, BOUND_COMPUTE, BOUND_MEMORY, BOUND_NETWORK = (L.BOUND_NONE, L.BOUND_COMPUTE,
                                                          L.BOUND_MEMORY, L.BOUND_NETWORK)
NAN = math.nan


@njit(inline="always", **_OPTS)
def _series(a, b, lo, hi):
    """Sum of a + b c over integers c in [lo, hi] (0 when hi < lo)."""
    n = max(hi - lo + 1.0, 0.0)
    return n * a + b * (lo + hi) * n * 0.5


@njit(inline="always", **_OPTS)
def _sum_max_affine(a1, b1, a2, b2, lo, hi):
    """Exact sum over integer c in [lo, hi] of max(a1 + b1 c, a2 + b2 c) (see reference)."""
    d = b1 - b2
    if d == 0.0:
        m = lo
    else:
        m = min(max(np.floor((a2 - a1) / d) + 1.0, lo), hi + 1.0)
    up1 = d > 0.0 or (d == 0.0 and a1 >= a2)
    au = a1 if up1 else a2
    bu = b1 if up1 else b2
    al = a2 if up1 else a1
    bl = b2 if up1 else b1
    return _series(al, bl, lo, m - 1.0) + _series(au, bu, m, hi)


@njit(inline="always", **_OPTS)
def _network(n_tok, d):
    """Two ring all-reduces per layer plus the stage hand-offs of one pass [s] (see Cython)."""
    msg = n_tok * d.hidden * d.ab
    ar = 2.0 * d.layers * (2.0 * (d.tp - 1.0) * d.inv_tp * msg * d.tp_inv_link
                           + 2.0 * (d.tp - 1.0) * d.tp_lat)
    p_in = d.within * (msg * d.inv_link + d.lat)
    p_out = d.cross * (msg * d.inv_out + d.lat_out)
    return ((ar if d.tp > 1.0 else 0.0) + (p_in if d.within > 0.0 else 0.0)
            + (p_out if d.cross > 0.0 else 0.0))


#: expm1(x) for x below this is exactly -1: exp(-40) = 4.2e-18 is under half an ulp of 1
#: (2^-54 = 5.6e-17), so the correctly rounded result, and glibc's and NumPy's, is -1.0
EXPM1_SATURATED = -40.0


@njit(inline="always", **_OPTS)
def _experts_touched(n_exp, log_keep, n_tok):
    """Expected distinct routed experts for ``n_tok`` tokens, E (1 - (1 - k/E)^n); 0 if dense."""
    return -n_exp * math.expm1(n_tok * log_keep) if n_exp > 0.0 else 0.0


@njit(inline="always", **_OPTS)
def _bound(t_comp, t_mem, t_net):
    code = BOUND_COMPUTE if t_comp >= t_mem else BOUND_MEMORY
    return BOUND_NETWORK if t_net > max(t_comp, t_mem) else code


#: constants of one deployment (model, chip, tp, pp, dtypes), shared by its points
Dep = namedtuple("Dep", [
    "wb", "kb", "ab", "inv_f", "inv_bw", "inv_link", "lat", "ovh", "layers", "hidden", "w",
    "kv_full", "kv_win", "n_exp", "log_keep", "kv_frac", "inv_chips", "inv_tp", "tp", "pp",
    "weight_bytes", "room", "kv_seq_unit", "kv_tok_bytes", "act_tok_bytes", "wread_unit",
    "flop_lin", "flop_head", "attn_full", "attn_win", "p_read", "p_exp", "hourly", "tdp",
    "n_chips", "tp_inv_link", "tp_lat", "inv_out", "lat_out", "within", "cross"])


@njit(inline="always", **_OPTS)
def _deploy(mt, mi, ct, ci, db, tp, pp, wd, kd, ad):
    """Per-deployment constants: memory split, effective rates, per-token bytes."""
    wb = db[wd]
    kb = db[kd]
    ab = db[ad]
    kv_frac = 1.0 / min(tp, mt[mi, M_KV_SPLIT])
    inv_chips = 1.0 / (tp * pp)
    inv_tp = pp * inv_chips
    weight_bytes = mt[mi, M_PARAMS_RESIDENT] * wb * inv_chips
    layers = mt[mi, M_LAYERS]
    hidden = mt[mi, M_HIDDEN]
    kv_full = mt[mi, M_KV_FULL]
    kv_win = mt[mi, M_KV_WIN]
    inv_link = ct[ci, C_INV_LINK_BW]
    lat = ct[ci, C_LINK_LATENCY]
    domain = ct[ci, C_SCALEUP_DOMAIN]
    inv_out = ct[ci, C_INV_SCALEOUT_BW]
    lat_out = ct[ci, C_SCALEOUT_LATENCY]
    cross = max(np.ceil(pp / max(np.floor(domain / tp), 1.0)) - 1.0, 0.0)
    inside = tp <= domain
    tp_inv_link = inv_link if inside else inv_out
    tp_lat = lat if inside else lat_out
    return Dep(wb, kb, ab, ct[ci, C_INV_FLOPS + ad], ct[ci, C_INV_MEM_BW], inv_link,
               lat, ct[ci, C_STEP_OVERHEAD], layers, hidden,
               mt[mi, M_WINDOW], kv_full, kv_win, mt[mi, M_EXPERTS], mt[mi, M_LOG_KEEP],
               kv_frac, inv_chips, inv_tp, tp, pp, weight_bytes,
               max(ct[ci, C_USABLE_BYTES] - weight_bytes, 0.0), kb * kv_frac,
               kb * kv_frac * (kv_full + kv_win), 2.0 * layers * hidden * ab, wb * inv_tp,
               mt[mi, M_FLOP_LIN], mt[mi, M_FLOP_HEAD], mt[mi, M_ATTN_FULL], mt[mi, M_ATTN_WIN],
               mt[mi, M_PARAMS_READ], mt[mi, M_PARAMS_EXPERT], ct[ci, C_HOURLY_USD],
               ct[ci, C_TDP_W], tp * pp, tp_inv_link, tp_lat, inv_out, lat_out, pp - 1.0 - cross,
               cross)


@njit(inline="always", **_OPTS)
def _eval_dep(d, B, P, N, touched_pre, touched_dec, loop_decode, out_f, out_bound, out_fits,
              out_maxb, o):
    """Every output of one point of deployment ``d`` into column ``o`` (the C kernel ext/roofline_simd.h is its SIMD twin).

    ``out_f`` and ``out_bound`` are tuples of the output rows (9 float, 2 int8).

    ``touched_pre`` and ``touched_dec`` are :func:`_experts_touched` of the
    prefill (B P tokens) and of one decode step (B tokens). With
    ``loop_decode`` False the body has no call and no loop, so a loop over
    points that inlines it can be vectorised.
    """
    w = d.w
    # memory per chip
    ctx_max = P + N
    # each chip holds 1/pp of the layers for the pp micro-batches in flight: pp cancels
    kv_seq = d.kv_seq_unit * (d.kv_full * ctx_max + d.kv_win * min(ctx_max, w))
    mb = np.floor(min(d.room / kv_seq, 4503599627370495.0))
    fits = B <= mb

    # prefill
    n_pre = B * P
    tri = P * (P + 1.0) * 0.5
    win_keys = tri if P <= w else w * (w + 1.0) * 0.5 + (P - w) * w
    flops_pre = B * (d.flop_lin * P + d.flop_head + d.attn_full * tri + d.attn_win * win_keys)
    t_comp = flops_pre * d.inv_tp * d.inv_f
    t_mem = (d.wread_unit * (d.p_read + d.p_exp * touched_pre)
             + n_pre * (d.kv_tok_bytes + d.act_tok_bytes)) * d.inv_bw
    t_net = _network(n_pre, d)
    ttft = max(t_comp, t_mem) + t_net + d.ovh
    bound_pre = _bound(t_comp, t_mem, t_net)

    # decode
    cf = B * d.inv_tp * d.inv_f
    a1 = cf * (d.flop_lin + d.flop_head)
    b1 = cf * d.attn_full
    g1 = cf * d.attn_win
    a2 = (d.wread_unit * (d.p_read + d.p_exp * touched_dec)
          + B * (d.kv_tok_bytes + d.act_tok_bytes)) * d.inv_bw
    kvb = B * d.kb * d.kv_frac * d.inv_bw
    b2 = kvb * d.kv_full
    g2 = kvb * d.kv_win
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
    t_net_d = _network(B, d)
    decode_total = s_max + n_steps * (t_net_d + d.ovh)
    bound_dec = _bound(s_comp, s_mem, n_steps * t_net_d) if n_steps > 0.0 else BOUND_NONE
    e2e = ttft + decode_total
    tokens = d.pp * B * N        # pp micro-batches of B sequences finish per e2e
    inv_tokens = 1.0 / tokens
    tok_s = tokens / e2e

    out_maxb[o] = np.int64(mb)
    out_fits[o] = fits
    out_f[5][o] = d.weight_bytes
    out_f[6][o] = B * kv_seq
    out_f[0][o] = ttft if fits else NAN
    out_f[1][o] = (decode_total / n_steps if n_steps > 0.0 else NAN) if fits else NAN
    out_f[2][o] = e2e if fits else NAN
    out_f[3][o] = tok_s if fits else NAN
    out_f[4][o] = tok_s * d.inv_chips if fits else NAN
    out_f[7][o] = d.hourly * d.n_chips * e2e * inv_tokens * (1e6 / 3600.0) if fits else NAN
    out_f[8][o] = d.tdp * d.n_chips * e2e * inv_tokens if fits else NAN
    out_bound[0][o] = bound_pre if fits else BOUND_NONE
    out_bound[1][o] = bound_dec if fits else BOUND_NONE


#: points per block (measured against 64 and 256 with the scratch design, 2026-11-22)
BLOCK = 128
#: slots of each thread's memo of experts touched per decode step (a power of two)
MEMO = 2048
BLOCK_X2, BLOCK_X3, BLOCK_X7 = 2 * BLOCK, 3 * BLOCK, 7 * BLOCK


@njit(inline="always", **_OPTS)
def _memo_key(mi, batch):
    """Memo key of (model row, batch); both are non-negative and below 2^31."""
    return (mi << 32) | batch


@njit(inline="always", **_OPTS)
def _memo_slot(mi, batch):
    """Memo slot of (model row, batch): batches 0-255 of eight consecutive model rows
    get distinct slots, so a sweep of a few MoE models and batches never evicts."""
    return (batch + (mi << 8)) & (MEMO - 1)


def _stack_buffer(nbtype):
    """An intrinsic ``f(n)``: a pointer to ``n`` (a compile-time constant) elements on the stack.

    The buffer lives in the entry block of the calling function (one
    thread's part of the blocks), so it is allocated once per thread, not per
    block. Stack memory provably aliases no array argument, so loops that
    store to it need no runtime alias checks.
    """
    @intrinsic
    def stack(typingctx, n):
        if not isinstance(n, types.IntegerLiteral):
            return None

        def codegen(context, builder, sig, args):
            with builder.goto_entry_block():
                ptr = builder.alloca(context.get_data_type(nbtype),
                                     size=ir.Constant(ir.IntType(64), n.literal_value))
            ptr.align = 64
            return ptr
        return types.CPointer(nbtype)(n), codegen
    return stack


_stack_f64 = _stack_buffer(types.float64)
_stack_i64 = _stack_buffer(types.int64)
_stack_i32 = _stack_buffer(types.int32)
_stack_i8 = _stack_buffer(types.int8)


@njit(inline="always", **_OPTS)
def _eval_block(mt, ct, db, model_idx, chip_idx, tp, pp, batch, prompt, output, w_dt, kv_dt,
                act_dt, i0, n, loop_decode, outs, o0, memo_key, memo_val, uniform):
    """Points ``i0 .. i0 + n - 1`` (``n <= BLOCK``) into columns ``o0 .. o0 + n - 1``.

    ``uniform``: every point of the block has the deployment of its first
    (model, chip, tp, pp and dtypes), as in most blocks of a sweep; the
    constants are then computed once, not gathered per point.

    ``outs``: the 13 output rows (:func:`_output_rows`), whole.

    ``memo_key``/``memo_val`` (``MEMO`` slots, keys -1 when empty) remember the
    experts touched by one decode step per (model row, batch), a pure function
    of the two: a hit returns the very value the call would. The caller keeps
    them for all the blocks of its thread.

    Closed-form decode: two loops over the block. The first sets the experts
    touched on every lane from the memo or in closed form and counts the lanes
    that need an ``expm1`` call, made in a scalar pass only when there are any;
    the physics loop (:func:`_deploy` and :func:`_eval_dep` per point, no calls,
    every choice a select) stores to the outputs and is vectorised by LLVM when
    the caller's arguments are noalias (see :func:`_point_blocks`).
    ``loop_decode`` sums each decode step instead and stays scalar.
    """
    # views of the outputs' columns o0 .. o0 + n - 1, indexed from 0 (see below)
    of = (outs[0][o0:o0 + n], outs[1][o0:o0 + n], outs[2][o0:o0 + n], outs[3][o0:o0 + n],
          outs[4][o0:o0 + n], outs[5][o0:o0 + n], outs[6][o0:o0 + n], outs[7][o0:o0 + n],
          outs[8][o0:o0 + n])
    ob = (outs[9][o0:o0 + n], outs[10][o0:o0 + n])
    fits_b = outs[11][o0:o0 + n]
    mb_b = outs[12][o0:o0 + n]
    if loop_decode:
        for j in range(n):
            i = i0 + j
            d = _deploy(mt, model_idx[i], ct, chip_idx[i], db, float(tp[i]), float(pp[i]),
                        w_dt[i], kv_dt[i], act_dt[i])
            B = float(batch[i])
            P = float(prompt[i])
            _eval_dep(d, B, P, float(output[i]), _experts_touched(d.n_exp, d.log_keep, B * P),
                      _experts_touched(d.n_exp, d.log_keep, B), True, of, ob, fits_b, mb_b, j)
        return
    # views of the block, indexed from 0 by the loop counters: LLVM then knows every
    # index is in range and non-negative, so loads and stores are unit-stride, not
    # gathers and scatters behind a negative-index select
    mi_b, ci_b, tp_b, pp_b = (model_idx[i0:i0 + n], chip_idx[i0:i0 + n], tp[i0:i0 + n],
                              pp[i0:i0 + n])
    B_b, P_b, N_b = batch[i0:i0 + n], prompt[i0:i0 + n], output[i0:i0 + n]
    wd_b, kd_b, ad_b = w_dt[i0:i0 + n], kv_dt[i0:i0 + n], act_dt[i0:i0 + n]
    # experts touched by the prefill (row 0: B P tokens) and a decode step (row 1: B tokens).
    # expm1 is a call, so one vector loop sets dense lanes (0), saturated ones (E) and
    # decode lanes whose (model row, batch) the memo holds, and counts the lanes left;
    # a scalar loop calls _experts_touched on those, in most blocks none
    touched = carray(_stack_f64(BLOCK_X2), (2, BLOCK))
    need = carray(_stack_i8(BLOCK_X2), (2, BLOCK))
    n_need = 0
    for j in range(n):
        mi = np.int64(mi_b[j])
        Bi = np.int64(B_b[j])
        ne = mt[mi, M_EXPERTS]
        lk = mt[mi, M_LOG_KEEP]
        B = float(Bi)
        moe = ne > 0.0
        sat_pre = B * float(P_b[j]) * lk < EXPM1_SATURATED
        sat_dec = B * lk < EXPM1_SATURATED
        slot = _memo_slot(mi, Bi)
        hit = memo_key[slot] == _memo_key(mi, Bi)
        need_pre = moe & ~sat_pre
        need_dec = moe & ~sat_dec & ~hit
        touched[0, j] = ne if moe & sat_pre else 0.0     # -E expm1(x) = -E (-1) = E exactly
        touched[1, j] = (ne if sat_dec else memo_val[slot]) if moe else 0.0
        need[0, j] = np.int8(need_pre)
        need[1, j] = np.int8(need_dec)
        n_need += np.int64(need_pre) + np.int64(need_dec)
    if n_need > 0:
        for j in range(n):
            if need[0, j] or need[1, j]:
                mi = np.int64(mi_b[j])
                Bi = np.int64(B_b[j])
                ne = mt[mi, M_EXPERTS]
                lk = mt[mi, M_LOG_KEEP]
                B = float(Bi)
                if need[0, j]:      # prefill: B P tokens nearly always saturate
                    touched[0, j] = _experts_touched(ne, lk, B * float(P_b[j]))
                if need[1, j]:      # a slot may have been filled by an earlier lane
                    slot = _memo_slot(mi, Bi)
                    key = _memo_key(mi, Bi)
                    if memo_key[slot] != key:
                        memo_val[slot] = _experts_touched(ne, lk, B)
                        memo_key[slot] = key
                    touched[1, j] = memo_val[slot]
    if uniform:
        d = _deploy(mt, mi_b[0], ct, ci_b[0], db, float(tp_b[0]), float(pp_b[0]), wd_b[0],
                    kd_b[0], ad_b[0])
        for j in range(n):
            _eval_dep(d, float(B_b[j]), float(P_b[j]), float(N_b[j]), touched[0, j],
                      touched[1, j], False, of, ob, fits_b, mb_b, j)
    else:
        for j in range(n):
            d = _deploy(mt, mi_b[j], ct, ci_b[j], db, float(tp_b[j]), float(pp_b[j]), wd_b[j],
                        kd_b[j], ad_b[j])
            _eval_dep(d, float(B_b[j]), float(P_b[j]), float(N_b[j]), touched[0, j],
                      touched[1, j], False, of, ob, fits_b, mb_b, j)


# The parallel kernels below are a prange over one part of the blocks per thread whose
# body is a single call of a function that is not inlined by numba. numba marks the array
# arguments of a prange body noalias only when the body's own IR creates no views of them
# (the views and tuples of _eval_block would count), and LLVM then inlines the call and
# keeps that: so the physics loop of a block, which gathers from the tables and stores to
# 13 output rows, each an argument of its own, is vectorised with no runtime alias checks.
# Storing the results while computing lets the memory system write them back behind the
# arithmetic; computing into scratch and copying it out afterwards left the core waiting
# on the stores for about 8 ns a point (a third of the time, 2026-11-22).


@njit(inline="always", **_OPTS)
def _one_deployment(model_idx, chip_idx, tp, pp, w_dt, kv_dt, act_dt, i0, n):
    """Whether points ``i0 .. i0 + n - 1`` all have the deployment of the first (points
    sorted by deployment, as a sweep makes them); stops at the first that differs, so
    on shuffled points it costs one comparison a block."""
    for i in range(i0 + 1, i0 + n):
        if (model_idx[i] != model_idx[i0] or chip_idx[i] != chip_idx[i0] or tp[i] != tp[i0]
                or pp[i] != pp[i0] or w_dt[i] != w_dt[i0] or kv_dt[i] != kv_dt[i0]
                or act_dt[i] != act_dt[i0]):
            return False
    return True


@njit(forceinline=True, **_OPTS)
def _point_blocks(mt, ct, db, model_idx, chip_idx, tp, pp, batch, prompt, output, w_dt,
                  kv_dt, act_dt, loop_decode, of0, of1, of2, of3, of4, of5, of6, of7, of8, ob0,
                  ob1, ofits, omaxb, offset, b_lo, b_hi):
    """Blocks ``b_lo .. b_hi - 1`` of the points into columns ``offset + i`` of the outputs."""
    n = model_idx.shape[0]
    outs = (of0, of1, of2, of3, of4, of5, of6, of7, of8, ob0, ob1, ofits, omaxb)
    memo_key = carray(_stack_i64(MEMO), (MEMO,))
    memo_val = carray(_stack_f64(MEMO), (MEMO,))
    memo_key[:] = -1
    for b in range(b_lo, b_hi):
        i0 = b * BLOCK
        m = min(BLOCK, n - i0)
        _eval_block(mt, ct, db, model_idx, chip_idx, tp, pp, batch, prompt, output, w_dt,
                    kv_dt, act_dt, i0, m, loop_decode, outs, i0 + offset, memo_key, memo_val,
                    _one_deployment(model_idx, chip_idx, tp, pp, w_dt, kv_dt, act_dt, i0, m))


@njit(parallel=True, **_OPTS)
def _roofline_loop(mt, ct, db, model_idx, chip_idx, tp, pp, batch, prompt, output, w_dt,
                   kv_dt, act_dt, loop_decode, of0, of1, of2, of3, of4, of5, of6, of7, of8, ob0,
                   ob1, ofits, omaxb, offset, n_parts):
    n_blocks = (model_idx.shape[0] + BLOCK - 1) // BLOCK
    for t in prange(n_parts):
        _point_blocks(mt, ct, db, model_idx, chip_idx, tp, pp, batch, prompt, output, w_dt,
                      kv_dt, act_dt, loop_decode, of0, of1, of2, of3, of4, of5, of6, of7, of8,
                      ob0, ob1, ofits, omaxb, offset, t * n_blocks // n_parts,
                      (t + 1) * n_blocks // n_parts)


@njit(inline="always", **_OPTS)
def _grid_size(model_v, chip_v, tp_v, pp_v, batch_v, prompt_v, output_v, w_v, kv_v, act_v):
    return (model_v.shape[0] * chip_v.shape[0] * tp_v.shape[0] * pp_v.shape[0]
            * batch_v.shape[0] * prompt_v.shape[0] * output_v.shape[0] * w_v.shape[0]
            * kv_v.shape[0] * act_v.shape[0])


@njit(forceinline=True, **_OPTS)
def _grid_blocks(mt, ct, db, model_v, chip_v, tp_v, pp_v, batch_v, prompt_v, output_v, w_v,
                 kv_v, act_v, loop_decode, of0, of1, of2, of3, of4, of5, of6, of7, of8, ob0, ob1,
                 ofits, omaxb, b_lo, b_hi):
    """Blocks ``b_lo .. b_hi - 1`` of the flattened grid (C order) into the outputs."""
    sizes = np.array([model_v.shape[0], chip_v.shape[0], tp_v.shape[0], pp_v.shape[0],
                      batch_v.shape[0], prompt_v.shape[0], output_v.shape[0], w_v.shape[0],
                      kv_v.shape[0], act_v.shape[0]], dtype=np.int64)
    total = _grid_size(model_v, chip_v, tp_v, pp_v, batch_v, prompt_v, output_v, w_v, kv_v,
                       act_v)
    dtypes_vary = sizes[7] > 1 or sizes[8] > 1 or sizes[9] > 1
    outs = (of0, of1, of2, of3, of4, of5, of6, of7, of8, ob0, ob1, ofits, omaxb)
    memo_key = carray(_stack_i64(MEMO), (MEMO,))
    memo_val = carray(_stack_f64(MEMO), (MEMO,))
    memo_key[:] = -1
    for b in range(b_lo, b_hi):
        f0 = b * BLOCK
        n = min(BLOCK, total - f0)
        # the block's points as struct-of-arrays columns, filled with an odometer
        cols = carray(_stack_i32(BLOCK_X7), (7, BLOCK))
        codes = carray(_stack_i8(BLOCK_X3), (3, BLOCK))
        idx = carray(_stack_i64(10), (10,))
        r = f0
        for a in range(9, -1, -1):
            idx[a] = r % sizes[a]
            r //= sizes[a]
        # deployment constants change only with model, chip, tp, pp or a dtype
        uniform = not dtypes_vary
        for j in range(n):
            cols[0, j] = model_v[idx[0]]
            cols[1, j] = chip_v[idx[1]]
            cols[2, j] = tp_v[idx[2]]
            cols[3, j] = pp_v[idx[3]]
            cols[4, j] = batch_v[idx[4]]
            cols[5, j] = prompt_v[idx[5]]
            cols[6, j] = output_v[idx[6]]
            codes[0, j] = w_v[idx[7]]
            codes[1, j] = kv_v[idx[8]]
            codes[2, j] = act_v[idx[9]]
            a = 9
            idx[a] += 1
            while idx[a] == sizes[a] and a > 0:
                idx[a] = 0
                a -= 1
                idx[a] += 1
            if a <= 3 and j + 1 < n:
                uniform = False
        _eval_block(mt, ct, db, cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6],
                    codes[0], codes[1], codes[2], 0, n, loop_decode, outs, f0, memo_key,
                    memo_val, uniform)


@njit(parallel=True, **_OPTS)
def _roofline_grid(mt, ct, db, model_v, chip_v, tp_v, pp_v, batch_v, prompt_v, output_v,
                   w_v, kv_v, act_v, loop_decode, of0, of1, of2, of3, of4, of5, of6, of7, of8,
                   ob0, ob1, ofits, omaxb, n_parts):
    n_blocks = (_grid_size(model_v, chip_v, tp_v, pp_v, batch_v, prompt_v, output_v, w_v, kv_v,
                           act_v) + BLOCK - 1) // BLOCK
    for t in prange(n_parts):
        _grid_blocks(mt, ct, db, model_v, chip_v, tp_v, pp_v, batch_v, prompt_v, output_v, w_v,
                     kv_v, act_v, loop_decode, of0, of1, of2, of3, of4, of5, of6, of7, of8, ob0,
                     ob1, ofits, omaxb, t * n_blocks // n_parts, (t + 1) * n_blocks // n_parts)


def _output_rows(out_f, out_bound, out_fits, out_maxb):
    """The 13 output rows, each 1-D: 9 float rows, 2 bound rows, fits, max_batch."""
    return tuple(out_f) + tuple(out_bound) + (out_fits, out_maxb)


def _run(n_threads, fn, *args):
    """``fn(*args, n_parts)`` on ``n_threads`` numba threads, one part each (the setting
    restored)."""
    n_threads = max(1, min(int(n_threads), numba.config.NUMBA_NUM_THREADS))
    prev = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    try:
        fn(*args, np.int64(n_threads))
    finally:
        numba.set_num_threads(prev)


def roofline(mt, ct, db, model_idx, chip_idx, tp, pp, batch, prompt, output, w_dt, kv_dt,
             act_dt, out_f, out_bound, out_fits, out_maxb, n_threads=1, loop_decode=False,
             out_offset=0):
    """Run the point kernel with ``n_threads`` numba threads (arguments already validated).

    Point ``i`` of the inputs is written to column ``out_offset + i`` of the outputs.
    """
    _run(n_threads, _roofline_loop, mt, ct, db, model_idx, chip_idx, tp, pp, batch, prompt,
         output, w_dt, kv_dt, act_dt, bool(loop_decode),
         *_output_rows(out_f, out_bound, out_fits, out_maxb), np.int64(out_offset))


def roofline_grid(mt, ct, db, model_idx, chip_idx, tp, pp, batch, prompt, output, w_dt, kv_dt,
                  act_dt, out_f, out_bound, out_fits, out_maxb, n_threads=1, loop_decode=False):
    """Every point of the Cartesian grid of the axis value arrays (C order) into the outputs."""
    _run(n_threads, _roofline_grid, mt, ct, db, model_idx, chip_idx, tp, pp, batch, prompt,
         output, w_dt, kv_dt, act_dt, bool(loop_decode),
         *_output_rows(out_f, out_bound, out_fits, out_maxb))


def max_threads() -> int:
    return numba.config.NUMBA_NUM_THREADS
