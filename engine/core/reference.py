"""NumPy reference implementation: the readable specification of every formula.

Each function here is the oracle the compiled kernels (numba, Cython) are
tested against. Conventions (all per *deployment* of ``tp x pp`` chips):

* The prompt is processed in one prefill pass that also yields the first
  output token: ``ttft_s`` = prefill time.
* Output tokens 2..N are decode steps; decode step ``j = 1..N-1`` appends the
  token at position ``P + j`` and attends over ``c = P + j`` keys (the prompt,
  the tokens generated so far and itself). ``tpot_s`` is the mean decode step,
  NaN when N = 1 (no inter-token interval), as in vLLM's benchmark definition.
* A forward pass takes ``max(compute, memory) + network + overhead``: the
  roofline of Williams, Waterman & Patterson, "Roofline: an insightful visual
  performance model", CACM 52(4), 2009, with tensor-parallel communication
  not overlapped (Pope et al., "Efficiently Scaling Transformer Inference",
  arXiv:2211.05102, Sec. 3).
* Pipeline parallelism is pipelined, as vLLM's and TensorRT-LLM's schedulers
  (and SRAM systems such as Groq's) run it: ``pp`` stages keep ``pp``
  micro-batches of ``batch`` sequences in flight. A token still passes every
  stage, so latency is the sum of the stage times plus one activation
  hand-off per stage boundary; throughput is ``pp`` micro-batches per
  request time, so decode reads the weights at the stages' aggregate
  bandwidth; each chip holds 1/pp of the layers' KV for all ``pp x batch``
  sequences. ``batch`` is per micro-batch.
* Tensor parallelism splits matmul FLOPs, weights and KV heads ``tp`` ways and
  costs two ring all-reduces per layer (after attention and after the FFN;
  Shoeybi et al., "Megatron-LM", arXiv:1909.08053), each
  ``2 (tp-1)/tp x S / B_link + 2 (tp-1) x latency`` (Patarasuk & Yuan,
  "Bandwidth optimal all-reduce algorithms", JPDC 69(2), 2009).
* Per decode step an MoE layer reads only the experts some token in the batch
  routed to; with uniform routing the expected count is
  ``E (1 - (1 - k/E)^n)`` for ``n`` tokens (occupancy of E bins by n draws of
  k; e.g. Feller, *An Introduction to Probability Theory*, Vol. 1, II.11).
* Activations: each layer reads and writes the residual stream once,
  ``2 L n d`` elements in activation precision per pass.
* Memory fits when ``weights + batch x KV(P + N) <= memory x (1 - reserve)``
  per chip; ``max_batch`` is the largest batch that does. A point that does
  not fit is a result: ``fits = False``, times and rates NaN.
"""
from __future__ import annotations

import numpy as np

from . import layout as L


def window_key_sum(n, w):
    """Sum over query positions i = 1..n of min(i, w): causal keys with a window.

    Full attention is ``w >= n``: ``n (n + 1) / 2`` (the causal triangle).
    """
    n = np.asarray(n, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    tri = n * (n + 1.0) / 2.0
    capped = w * (w + 1.0) / 2.0 + (n - w) * w
    return np.where(n <= w, tri, capped)


def experts_touched(n_tokens, n_experts, k):
    """Expected distinct routed experts per MoE layer for ``n_tokens`` tokens.

    ``E (1 - (1 - k/E)^n)``; 0 for dense models (E = 0).
    """
    n_tokens = np.asarray(n_tokens, dtype=np.float64)
    n_experts = np.asarray(n_experts, dtype=np.float64)
    safe_e = np.where(n_experts > 0, n_experts, 1.0)
    with np.errstate(divide="ignore"):  # k = E gives log1p(-1) = -inf: every expert touched
        frac = -np.expm1(n_tokens * np.log1p(-np.asarray(k, dtype=np.float64) / safe_e))
    return np.where(n_experts > 0, n_experts * frac, 0.0)


def allreduce_time(msg_bytes, tp, inv_link_bw, latency):
    """One ring all-reduce of ``msg_bytes`` over ``tp`` chips [s]; 0 when tp = 1."""
    tp = np.asarray(tp, dtype=np.float64)
    t = 2.0 * (tp - 1.0) / tp * msg_bytes * inv_link_bw + 2.0 * (tp - 1.0) * latency
    return np.where(tp > 1.0, t, 0.0)


def network_time(n_tokens, layers, hidden, act_bytes, tp, pp, inv_link_bw, latency,
                 domain=np.inf, inv_scaleout_bw=np.nan, scaleout_latency=0.0):
    """Tensor-parallel all-reduces (2 per layer) plus pipeline hand-offs for one pass [s].

    A tensor-parallel ring inside the scale-up domain (``tp <= domain``) runs
    on the scale-up link; a larger ring's slowest hops are scale-out, so it
    runs at scale-out bandwidth and latency. Pipeline stages of ``tp`` chips
    fill each domain with ``floor(domain / tp)`` stages; hand-offs between
    stages in one domain use the scale-up link, the
    ``ceil(pp / stages_per_domain) - 1`` that leave a domain use scale-out.
    """
    msg = n_tokens * hidden * act_bytes
    tp = np.asarray(tp, dtype=np.float64)
    pp = np.asarray(pp, dtype=np.float64)
    inside = tp <= domain
    ar = 2.0 * layers * allreduce_time(msg, tp, np.where(inside, inv_link_bw, inv_scaleout_bw),
                                       np.where(inside, latency, scaleout_latency))
    cross, within = stage_handoffs(tp, pp, domain)
    p2p = (np.where(within > 0, within * (msg * inv_link_bw + latency), 0.0)
           + np.where(cross > 0, cross * (msg * inv_scaleout_bw + scaleout_latency), 0.0))
    return ar + p2p


def stage_handoffs(tp, pp, domain):
    """Pipeline hand-offs that leave a scale-up domain and those that stay inside.

    Returns ``(cross, within)``; ``cross + within = pp - 1``.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        stages_per_domain = np.maximum(np.floor(domain / tp), 1.0)
        cross = np.maximum(np.ceil(pp / stages_per_domain) - 1.0, 0.0)
    return cross, pp - 1.0 - cross


def _bound(t_comp, t_mem, t_net):
    code = np.where(t_comp >= t_mem, L.BOUND_COMPUTE, L.BOUND_MEMORY)
    return np.where(t_net > np.maximum(t_comp, t_mem), L.BOUND_NETWORK, code).astype(np.int8)


def _gather(model_table, chip_table, dtype_bytes, model_idx, chip_idx, w_dt, kv_dt, act_dt):
    m = model_table[model_idx]
    c = chip_table[chip_idx]
    act_dt = np.asarray(act_dt, dtype=np.intp)
    inv_flops = c[np.arange(len(c)), L.C_INV_FLOPS + act_dt]
    return m, c, inv_flops, dtype_bytes[w_dt], dtype_bytes[kv_dt], dtype_bytes[act_dt]


def roofline_reference(model_table, chip_table, dtype_bytes, model_idx, chip_idx, tp, pp,
                       batch, prompt, output, w_dt, kv_dt, act_dt):
    """All per-point outputs, vectorised over points (closed-form decode).

    Parameters
    ----------
    model_table : ndarray, shape (n_models, N_MODEL_COLS)
    chip_table : ndarray, shape (n_chips, N_CHIP_COLS)
    dtype_bytes : ndarray, shape (N_DTYPE_CODES,)
        Bytes per element by dtype code [byte].
    model_idx, chip_idx, tp, pp, batch, prompt, output : int arrays, shape (n,)
    w_dt, kv_dt, act_dt : int arrays, shape (n,)
        dtype codes of weights, KV cache and activations (the compute format).

    Returns
    -------
    out_f : ndarray, shape (N_FLOAT_OUT, n), rows as ``layout.FLOAT_OUTPUTS``
    out_bound : int8 ndarray, shape (2, n), prefill and decode bound codes
    fits : bool ndarray, shape (n,)
    max_batch : int64 ndarray, shape (n,)
    """
    m, c, inv_f, wb, kb, ab = _gather(model_table, chip_table, dtype_bytes, model_idx, chip_idx,
                                      w_dt, kv_dt, act_dt)
    tp = np.asarray(tp, dtype=np.float64)
    pp = np.asarray(pp, dtype=np.float64)
    B = np.asarray(batch, dtype=np.float64)
    P = np.asarray(prompt, dtype=np.float64)
    N = np.asarray(output, dtype=np.float64)
    layers, hidden = m[:, L.M_LAYERS], m[:, L.M_HIDDEN]
    w = m[:, L.M_WINDOW]
    kv_full, kv_win = m[:, L.M_KV_FULL], m[:, L.M_KV_WIN]
    inv_bw, inv_link = c[:, L.C_INV_MEM_BW], c[:, L.C_INV_LINK_BW]
    lat, ovh = c[:, L.C_LINK_LATENCY], c[:, L.C_STEP_OVERHEAD]

    # --- memory per chip -------------------------------------------------
    kv_frac = 1.0 / np.minimum(tp, m[:, L.M_KV_SPLIT])   # share of a token's KV on one TP rank
    inv_chips = 1.0 / (tp * pp)
    inv_tp = pp * inv_chips
    weight_bytes = m[:, L.M_PARAMS_RESIDENT] * wb * inv_chips
    ctx_max = P + N
    # each chip holds 1/pp of the layers for the pp micro-batches in flight: pp cancels
    kv_seq = kb * kv_frac * (kv_full * ctx_max + kv_win * np.minimum(ctx_max, w))
    kv_bytes = B * kv_seq
    room = np.maximum(c[:, L.C_USABLE_BYTES] - weight_bytes, 0.0)
    # capped at 2**52 - 1 sequences, below which floor is exact in every backend
    max_batch = np.floor(np.minimum(room / kv_seq, 2.0**52 - 1.0)).astype(np.int64)
    fits = B <= max_batch

    def weights_read(n_tok):
        touched = experts_touched(n_tok, m[:, L.M_EXPERTS], m[:, L.M_EXPERTS_ACTIVE])
        return wb * inv_tp * (m[:, L.M_PARAMS_READ] + m[:, L.M_PARAMS_EXPERT] * touched)

    def net(n_tok):
        return network_time(n_tok, layers, hidden, ab, tp, pp, inv_link, lat,
                            c[:, L.C_SCALEUP_DOMAIN], c[:, L.C_INV_SCALEOUT_BW],
                            c[:, L.C_SCALEOUT_LATENCY])

    # --- prefill: B x P tokens, causal attention ---------------------------
    n_pre = B * P
    flops_pre = B * (m[:, L.M_FLOP_LIN] * P + m[:, L.M_FLOP_HEAD]
                     + m[:, L.M_ATTN_FULL] * P * (P + 1.0) / 2.0
                     + m[:, L.M_ATTN_WIN] * window_key_sum(P, w))
    t_comp_pre = flops_pre * inv_tp * inv_f
    bytes_pre = (weights_read(n_pre) + n_pre * kb * kv_frac * (kv_full + kv_win)
                 + 2.0 * layers * n_pre * hidden * ab)
    t_mem_pre = bytes_pre * inv_bw
    t_net_pre = net(n_pre)
    ttft = np.maximum(t_comp_pre, t_mem_pre) + t_net_pre + ovh

    # --- decode: steps at contexts c = P+1 .. P+N-1 (closed form) ----------
    co = decode_coefficients(m, inv_f, inv_bw, kb, ab, kv_frac, tp, B, weights_read(B))
    lo, hi = P + 1.0, P + N - 1.0
    s_max, s_comp, s_mem = decode_sums(*co, w, lo, hi)
    n_steps = N - 1.0
    t_net_dec = net(B)
    decode_total = s_max + n_steps * (t_net_dec + ovh)
    e2e = ttft + decode_total
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(n_steps > 0, decode_total / np.where(n_steps > 0, n_steps, 1.0), np.nan)
    tokens = pp * B * N          # pp micro-batches of B sequences finish per e2e
    tok_s = tokens / e2e
    n_chips = tp * pp
    cost = c[:, L.C_HOURLY_USD] * n_chips * e2e / 3600.0 / tokens * 1e6
    joules = c[:, L.C_TDP_W] * n_chips * e2e / tokens

    out_f = np.empty((L.N_FLOAT_OUT, len(B)))
    out_f[L.O_TTFT] = ttft
    out_f[L.O_TPOT] = tpot
    out_f[L.O_E2E] = e2e
    out_f[L.O_TOKENS_PER_S] = tok_s
    out_f[L.O_TOKENS_PER_S_PER_CHIP] = tok_s / n_chips
    out_f[L.O_WEIGHT_BYTES] = weight_bytes
    out_f[L.O_KV_BYTES] = kv_bytes
    out_f[L.O_COST_PER_MTOK] = cost
    out_f[L.O_JOULES_PER_TOKEN] = joules
    out_bound = np.empty((2, len(B)), dtype=np.int8)
    out_bound[L.B_PREFILL] = _bound(t_comp_pre, t_mem_pre, t_net_pre)
    dec_bound = _bound(s_comp, s_mem, n_steps * t_net_dec)
    out_bound[L.B_DECODE] = np.where(n_steps > 0, dec_bound, L.BOUND_NONE)
    # infeasible points: a result, not an error
    timed = [L.O_TTFT, L.O_TPOT, L.O_E2E, L.O_TOKENS_PER_S, L.O_TOKENS_PER_S_PER_CHIP,
             L.O_COST_PER_MTOK, L.O_JOULES_PER_TOKEN]
    out_f[np.ix_(timed, ~fits)] = np.nan
    out_bound[:, ~fits] = L.BOUND_NONE
    return out_f, out_bound, fits, max_batch


def decode_coefficients(m, inv_f, inv_bw, kb, ab, kv_frac, tp, B, weights_read_B):
    """Affine coefficients of one decode step's compute and memory time in context c.

    ``compute(c) = a1 + b1 c + g1 min(c, w)`` and
    ``memory(c)  = a2 + b2 c + g2 min(c, w)`` [s], where the ``g`` terms are
    the sliding-window layers. Memory reads all weights touched by the batch,
    reads ``c`` cached tokens and writes one per sequence.
    """
    layers, hidden = m[..., L.M_LAYERS], m[..., L.M_HIDDEN]
    kv_full, kv_win = m[..., L.M_KV_FULL], m[..., L.M_KV_WIN]
    cf = B / tp * inv_f
    a1 = cf * (m[..., L.M_FLOP_LIN] + m[..., L.M_FLOP_HEAD])
    b1 = cf * m[..., L.M_ATTN_FULL]
    g1 = cf * m[..., L.M_ATTN_WIN]
    kv_tok = B * kb * kv_frac * inv_bw
    a2 = (weights_read_B + B * kb * kv_frac * (kv_full + kv_win)
          + 2.0 * layers * B * hidden * ab) * inv_bw
    b2 = kv_tok * kv_full
    g2 = kv_tok * kv_win
    return a1, b1, g1, a2, b2, g2


def _series(a, b, lo, hi):
    """Sum of a + b c over integers c in [lo, hi] (0 when hi < lo)."""
    n = np.maximum(hi - lo + 1.0, 0.0)
    return n * a + b * (lo + hi) * n / 2.0


def sum_max_affine(a1, b1, a2, b2, lo, hi):
    """Exact sum over integers c in [lo, hi] of max(a1 + b1 c, a2 + b2 c).

    The two lines cross once, at ``c* = (a2 - a1) / (b1 - b2)``. The steeper
    line wins above the crossover, so contexts ``c < m = floor(c*) + 1``
    (clamped to [lo, hi + 1]) take the flatter line and the rest the steeper
    one; at an integer c* both lines are equal. Parallel lines: the higher one
    everywhere. Each part is an arithmetic series.
    """
    a1, b1, a2, b2, lo, hi = (np.asarray(x, dtype=np.float64) for x in (a1, b1, a2, b2, lo, hi))
    d = b1 - b2
    with np.errstate(divide="ignore", invalid="ignore"):
        m = np.minimum(np.maximum(np.floor((a2 - a1) / d) + 1.0, lo), hi + 1.0)
    m = np.where(d == 0.0, lo, m)
    line1_above = (d > 0.0) | ((d == 0.0) & (a1 >= a2))
    a_up, b_up = np.where(line1_above, a1, a2), np.where(line1_above, b1, b2)
    a_lo, b_lo = np.where(line1_above, a2, a1), np.where(line1_above, b2, b1)
    return _series(a_lo, b_lo, lo, m - 1.0) + _series(a_up, b_up, m, hi)


def decode_sums(a1, b1, g1, a2, b2, g2, w, lo, hi):
    """Sums over decode contexts [lo, hi] of max(compute, memory), compute and memory.

    Splits at the window edge ``w`` (below it the window terms grow with c,
    above it they are the constant ``g w``), then at the roofline crossover.
    With no window (``w = 0``) the first segment is empty.
    """
    h1 = np.minimum(hi, w)            # contexts still inside the window
    l2 = np.maximum(lo, w + 1.0)      # contexts past the window
    s_max = (sum_max_affine(a1, b1 + g1, a2, b2 + g2, lo, h1)
             + sum_max_affine(a1 + g1 * w, b1, a2 + g2 * w, b2, l2, hi))
    s_comp = _series(a1, b1 + g1, lo, h1) + _series(a1 + g1 * w, b1, l2, hi)
    s_mem = _series(a2, b2 + g2, lo, h1) + _series(a2 + g2 * w, b2, l2, hi)
    return s_max, s_comp, s_mem


def decode_profile_reference(model_row, chip_row, dtype_bytes, tp, pp, batch, prompt, output,
                             w_dt, kv_dt, act_dt):
    """Per-token decode step times for one scenario, written from the physics.

    Returns an array of length ``output - 1``: element ``j - 1`` is the time
    of decode step ``j`` (context ``prompt + j``) [s], each its own roofline
    step. Summing it is the specification the closed form in
    :func:`decode_sums` must match.
    """
    m, c = np.asarray(model_row, dtype=np.float64), np.asarray(chip_row, dtype=np.float64)
    wb, kb, ab = dtype_bytes[w_dt], dtype_bytes[kv_dt], dtype_bytes[act_dt]
    inv_f = c[L.C_INV_FLOPS + act_dt]
    kv_frac = 1.0 / min(float(tp), m[L.M_KV_SPLIT])
    w = m[L.M_WINDOW]
    n_tok = float(batch)
    touched = float(experts_touched(n_tok, m[L.M_EXPERTS], m[L.M_EXPERTS_ACTIVE]))
    w_read = wb / tp * (m[L.M_PARAMS_READ] + m[L.M_PARAMS_EXPERT] * touched)
    net = float(network_time(n_tok, m[L.M_LAYERS], m[L.M_HIDDEN], ab, tp, pp,
                             c[L.C_INV_LINK_BW], c[L.C_LINK_LATENCY], c[L.C_SCALEUP_DOMAIN],
                             c[L.C_INV_SCALEOUT_BW], c[L.C_SCALEOUT_LATENCY]))
    ctx = float(prompt) + np.arange(1, max(int(output), 1), dtype=np.float64)
    keys_win = np.minimum(ctx, w)
    flops = batch * (m[L.M_FLOP_LIN] + m[L.M_FLOP_HEAD]
                     + m[L.M_ATTN_FULL] * ctx + m[L.M_ATTN_WIN] * keys_win)
    kv_read = batch * kb * kv_frac * (m[L.M_KV_FULL] * ctx + m[L.M_KV_WIN] * keys_win)
    kv_write = batch * kb * kv_frac * (m[L.M_KV_FULL] + m[L.M_KV_WIN])
    act = 2.0 * m[L.M_LAYERS] * batch * m[L.M_HIDDEN] * ab
    t_comp = flops / tp * inv_f
    t_mem = (w_read + kv_read + kv_write + act) * c[L.C_INV_MEM_BW]
    return np.maximum(t_comp, t_mem) + net + c[L.C_STEP_OVERHEAD]
