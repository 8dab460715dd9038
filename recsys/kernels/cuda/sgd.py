"""Biased SGD on an NVIDIA GPU, one warp per rating: the update rule of
``recsys.kernels.cpu.sgd`` (its module docstring derives it and the AdaGrad variant).

One rating (u, i, r) is taken by a warp of 32 lanes. Lane l owns the features l, l + 32,
l + 64, ... of p_u and q_i (k/32 of them), so the warp reads a row in coalesced 128-byte
pieces. Each lane sums its share of p_u · q_i, lane 0 adding mu + b_u + b_i to its share;
a butterfly of warp shuffles (``warp_sum``) leaves the same total r̂ on every lane, bit for
bit (at every level both lanes of a pair add the same two numbers), hence the same
e = r − r̂. Each lane then moves its own features, with the old p and q,

    p_u ← (1 − λγ) p_u + (λe) q_i        q_i ← (1 − λγ) q_i + (λe) p_u

and lane 0 the biases, b ← b + λ(e − γ_b b). Only lane 0 reads and writes the biases (and
the AdaGrad accumulators), so no lane can read a value another lane of its warp is about
to write; the AdaGrad step sizes reach the other lanes through a shuffle. The update reads
the row again instead of keeping it in registers (k/32 is not known when the kernel is
compiled); the second read hits L1. Everything is in the factors' dtype but the Σ e²,
accumulated in float64 per warp and summed by ``sum_into`` in a fixed order.

The arithmetic is the reference kernel's (``recsys.kernels.cpu.sgd.sgd_epoch``) but for
the order in which the dot product is summed, so one warp over the ratings in array order
agrees with it to float rounding.

Two schedules run the ratings of an epoch:

* ``hogwild_epoch``: every warp of the launch takes positions t = w, w + W, ... (W warps)
  and the rating (t · stride + offset) mod n, a permutation of the ratings when stride is
  coprime to n, drawn per epoch by the caller. Warps update rows concurrently without
  locks (Hogwild, Niu et al. 2011): two warps on the same user or item can overwrite
  each other's step, so on a GPU the model is *not* bit-identical run to run, only alike
  in accuracy. (The simulator runs blocks one after another, so there one warp per block
  is sequential and reproducible.)
* ``stratum``: one launch per stratum of the block grid (``recsys.training.strata``);
  warp a runs block (a, cols[(a + shift) % grid]) in array order. The blocks of a stratum
  share no user and no item, so nothing races: the model is the same bit for bit run to
  run, and follows the CPU's blocked SGD up to rounding. Only ``grid`` warps run at once.
"""

import math

import numba
from numba import cuda

WARP = 32
FULL_MASK = 0xFFFFFFFF


@cuda.jit(device=True)
def warp_sum(x):
    """Σ x over the 32 lanes, the same value (bit for bit) on every lane."""
    x += cuda.shfl_xor_sync(FULL_MASK, x, 16)
    x += cuda.shfl_xor_sync(FULL_MASK, x, 8)
    x += cuda.shfl_xor_sync(FULL_MASK, x, 4)
    x += cuda.shfl_xor_sync(FULL_MASK, x, 2)
    x += cuda.shfl_xor_sync(FULL_MASK, x, 1)
    return x


@cuda.jit(device=True)
def sgd_rating(lane, u, i, r, mu, bu, bi, P, Q, lr, reg, reg_bias):
    """The SGD step of one rating by the warp (module docstring); returns e, on every lane,
    from before the step."""
    k = P.shape[1]
    part = P.dtype.type(0)
    for f in range(lane, k, WARP):
        part += P[u, f] * Q[i, f]
    b_u = P.dtype.type(0)
    b_i = b_u
    if lane == 0:
        b_u = bu[u]
        b_i = bi[i]
        part += mu + b_u + b_i
    e = r - warp_sum(part)
    keep = P.dtype.type(1) - lr * reg
    step = lr * e
    for f in range(lane, k, WARP):
        p = P[u, f]
        q = Q[i, f]
        P[u, f] = keep * p + step * q
        Q[i, f] = keep * q + step * p
    if lane == 0:
        bu[u] = b_u + lr * (e - reg_bias * b_u)
        bi[i] = b_i + lr * (e - reg_bias * b_i)
    return e


@cuda.jit(device=True)
def adagrad_rating(lane, u, i, r, mu, bu, bi, P, Q, lr, reg, reg_bias, Gu, Gi, Hu, Hi):
    """The AdaGrad step of one rating by the warp (``recsys.kernels.cpu.sgd.adagrad_step``);
    returns e, on every lane, from before the step.

    ‖p‖², ‖q‖² and p·q are summed over the warp with r̂; lane 0 recovers p·q as r̂ less
    mu + b_u + b_i (for the accumulators' ‖g‖², where its rounding does not matter).
    """
    k = P.shape[1]
    zero = P.dtype.type(0)
    one = P.dtype.type(1)
    part = zero
    pp = zero
    qq = zero
    for f in range(lane, k, WARP):
        p = P[u, f]
        q = Q[i, f]
        part += p * q
        pp += p * p
        qq += q * q
    base = zero
    if lane == 0:
        base = mu + bu[u] + bi[i]
        part += base
    total = warp_sum(part)
    pp = warp_sum(pp)
    qq = warp_sum(qq)
    e = r - total
    step_u = zero
    step_i = zero
    if lane == 0:
        b_u = bu[u]
        b_i = bi[i]
        g_bu = reg_bias * b_u - e
        g_bi = reg_bias * b_i - e
        bu[u] = b_u - lr / math.sqrt(Hu[u]) * g_bu
        bi[i] = b_i - lr / math.sqrt(Hi[i]) * g_bi
        Hu[u] += g_bu * g_bu
        Hi[i] += g_bi * g_bi
        step_u = lr / math.sqrt(Gu[u])
        step_i = lr / math.sqrt(Gi[i])
        cross = (one + one) * reg * e * (total - base)
        n = P.dtype.type(k)
        Gu[u] += max(reg * reg * pp - cross + e * e * qq, zero) / n
        Gi[i] += max(reg * reg * qq - cross + e * e * pp, zero) / n
    step_u = cuda.shfl_sync(FULL_MASK, step_u, 0)
    step_i = cuda.shfl_sync(FULL_MASK, step_i, 0)
    keep_u = one - step_u * reg
    keep_i = one - step_i * reg
    move_u = step_u * e
    move_i = step_i * e
    for f in range(lane, k, WARP):
        p = P[u, f]
        q = Q[i, f]
        P[u, f] = keep_u * p + move_u * q
        Q[i, f] = keep_i * q + move_i * p
    return e


@cuda.jit(device=True)
def rating_step(lane, u, i, r, mu, bu, bi, P, Q, lr, reg, reg_bias, adaptive, Gu, Gi, Hu,
                Hi):
    if adaptive:
        return adagrad_rating(lane, u, i, r, mu, bu, bi, P, Q, lr, reg, reg_bias, Gu, Gi,
                              Hu, Hi)
    return sgd_rating(lane, u, i, r, mu, bu, bi, P, Q, lr, reg, reg_bias)


@cuda.jit(cache=True)
def hogwild_epoch(users, items, values, stride, offset, mu, bu, bi, P, Q, lr, reg, reg_bias,
                  adaptive, Gu, Gi, Hu, Hi, warp_sse):
    """One Hogwild epoch (module docstring): warp w takes the ratings
    (t · stride + offset) mod n for t = w, w + W, ...; Σ e² of warp w to warp_sse[w].
    With ``adaptive`` the AdaGrad step with the row accumulators Gu, Gi, Hu, Hi."""
    warp = cuda.grid(1) // WARP
    lane = cuda.threadIdx.x % WARP
    n_warps = cuda.gridsize(1) // WARP
    n = values.shape[0]
    sse = numba.float64(0)
    for t in range(warp, n, n_warps):
        j = (t * stride + offset) % n
        e = rating_step(lane, users[j], items[j], values[j], mu, bu, bi, P, Q, lr, reg,
                        reg_bias, adaptive, Gu, Gi, Hu, Hi)
        sse += e * e
    if lane == 0 and warp < warp_sse.shape[0]:
        warp_sse[warp] = sse


@cuda.jit(cache=True)
def stratum(users, items, values, block_ptr, shift, cols, mu, bu, bi, P, Q, lr, reg,
            reg_bias, adaptive, Gu, Gi, Hu, Hi, block_sse):
    """One stratum of blocked SGD: warp a runs the ratings of block
    (a, cols[(a + shift) % grid]) in array order (``recsys.kernels.cpu.sgd.
    sgd_epoch_blocked`` has the layout); their Σ e² to block_sse[block]."""
    a = cuda.grid(1) // WARP
    lane = cuda.threadIdx.x % WARP
    grid = cols.shape[0]
    if a >= grid:
        return
    b = a * grid + cols[(a + shift) % grid]
    sse = numba.float64(0)
    for n in range(block_ptr[b], block_ptr[b + 1]):
        e = rating_step(lane, users[n], items[n], values[n], mu, bu, bi, P, Q, lr, reg,
                        reg_bias, adaptive, Gu, Gi, Hu, Hi)
        sse += e * e
    if lane == 0:
        block_sse[b] = sse


@cuda.jit(cache=True)
def clipped_sse(users, items, values, mu, bu, bi, P, Q, lo, hi, warp_sse):
    """Σ (r − clip(r̂, lo, hi))² in float64, warp w over the ratings w, w + W, ... (for
    validation RMSE); an index of -1 (unknown) contributes no bias and no factors, as in
    ``recsys.kernels.cpu.predict.predict_pairs``."""
    warp = cuda.grid(1) // WARP
    lane = cuda.threadIdx.x % WARP
    n_warps = cuda.gridsize(1) // WARP
    k = P.shape[1]
    sse = numba.float64(0)
    for j in range(warp, values.shape[0], n_warps):
        u = users[j]
        i = items[j]
        part = P.dtype.type(0)
        if u >= 0 and i >= 0:
            for f in range(lane, k, WARP):
                part += P[u, f] * Q[i, f]
        if lane == 0:
            base = mu
            if u >= 0:
                base += bu[u]
            if i >= 0:
                base += bi[i]
            part += base
        pred = warp_sum(part)
        if lane == 0:
            pred = min(max(pred, lo), hi)
            d = numba.float64(values[j]) - numba.float64(pred)
            sse += d * d
    if lane == 0 and warp < warp_sse.shape[0]:
        warp_sse[warp] = sse


@cuda.jit(cache=True)
def sum_into(partials, out):
    """out[0] = Σ partials, by one warp in a fixed order (launch [1, 32])."""
    lane = cuda.threadIdx.x
    total = numba.float64(0)
    for j in range(lane, partials.shape[0], WARP):
        total += partials[j]
    total = warp_sum(total)
    if lane == 0:
        out[0] = total
