"""Stochastic gradient descent for biased matrix factorization: the update rule lives here.

Model: r̂_ui = mu + b_u + b_i + p_u · q_i, with p_u a row of P (Û) and q_i a row of Q (V̂).

Loss descended, summed over the known ratings K:

    J = Σ_{(u,i)∈K} [ e_ui² + γ (‖p_u‖² + ‖q_i‖²) + γ_b (b_u² + b_i²) ],  e_ui = r_ui − r̂_ui

(regularization counted once per rating a parameter appears in, as Funk and Surprise do).
The gradient of one rating's term ℓ_ui is

    ∂ℓ/∂p_u = −2 e q_i + 2γ p_u      ∂ℓ/∂q_i = −2 e p_u + 2γ q_i
    ∂ℓ/∂b_u = −2 e + 2γ_b b_u        ∂ℓ/∂b_i = −2 e + 2γ_b b_i

and one SGD step moves each parameter by −(λ/2)·gradient, the factor 2 folded into the
learning rate λ as is customary:

    b_u += λ (e − γ_b b_u)     b_i += λ (e − γ_b b_i)
    p_u += λ (e q_i − γ p_u)   q_i += λ (e p_u − γ q_i)     (both with the old p_u, q_i)

mu is the global mean of the training ratings and is not learned.

Adaptive steps (``lr_schedule='adagrad'``): AdaGrad with one accumulator per row, the
"reduced per-coordinate" schedule LIBMF uses (Chin, Zhuang, Juan & Lin, PAKDD 2015). With
g the half gradient of one rating's term (the step of plain SGD is −λ g),

    g_p = −e q_i + γ p_u     g_q = −e p_u + γ q_i     g_bu = −e + γ_b b_u     g_bi = −e + γ_b b_i

each factor row keeps G (starting at 1) and each bias H (starting at 1); a rating moves

    p_u −= η g_p / √G_u    q_i −= η g_q / √G_i    b_u −= η g_bu / √H_u    b_i −= η g_bi / √H_i

with the accumulators as they were before it, and then adds its squared gradients:
G_u += ‖g_p‖² / k, G_i += ‖g_q‖² / k, H_u += g_bu², H_i += g_bi². Rows that have moved a
lot take smaller steps, rarely seen rows keep large ones: far fewer epochs to a good
model than one global rate. One accumulator per row instead of per coordinate costs 8
bytes a row and keeps the inner loop one pass (two FMAs more per element than plain SGD).

Kernels here are plain functions over contiguous arrays. ``rating_error`` is shared by the
update and by the gradient functions, so the tests that check the gradient against finite
differences check the formulas the update uses.
"""

import numba
import numpy as np

from recsys.kernels.cpu.atomics import cpu_yield, fetch_add, load_acquire, store_release
from recsys.kernels.cpu.prefetch import LINE, prefetch

# Reassociation lets LLVM vectorize the dot product (a reduction) and contract forms FMAs;
# no-NaN/no-inf assumptions are left out so divergence still shows as NaN or inf. With
# these flags the inner loops compile to packed vfmadd...ps on AVX-512/AVX2 (checked in
# the generated assembly: ``sgd_epoch.inspect_asm``).
FASTMATH = {"reassoc", "contract"}


@numba.njit(cache=True, fastmath=FASTMATH, inline="always")
def rating_error(u, i, r, mu, bu, bi, P, Q):
    """e = r − (mu + b_u + b_i + p_u · q_i)."""
    pu = P[u]  # 1-D row views: unit stride, so LLVM vectorizes without gathers
    qi = Q[i]
    dot = P.dtype.type(0)
    for f in range(P.shape[1]):
        dot += pu[f] * qi[f]
    return r - (mu + bu[u] + bi[i] + dot)


@numba.njit(cache=True, fastmath=FASTMATH, inline="always")
def sgd_step(u, i, r, mu, bu, bi, P, Q, lr, reg, reg_bias):
    """Apply the update for one rating in place; return its error before the update."""
    e = rating_error(u, i, r, mu, bu, bi, P, Q)
    bu[u] += lr * (e - reg_bias * bu[u])
    bi[i] += lr * (e - reg_bias * bi[i])
    # p + λ(e q − γ p) written as (1 − λγ) p + (λe) q: one multiply and one FMA per
    # element instead of three operations; the factors are of the factors' dtype
    keep = P.dtype.type(1) - lr * reg
    step = lr * e
    pu = P[u]
    qi = Q[i]
    for f in range(P.shape[1]):
        p = pu[f]
        q = qi[f]
        pu[f] = keep * p + step * q
        qi[f] = keep * q + step * p
    return e


@numba.njit(cache=True, fastmath=FASTMATH)
def adagrad_step(u, i, r, mu, bu, bi, P, Q, lr, reg, reg_bias, Gu, Gi, Hu, Hi):
    """The adaptive update for one rating in place; returns its error before the update.
    It is the block kernel's on that rating alone, so the gradient check of this step
    checks the kernel that trains."""
    e = rating_error(u, i, r, mu, bu, bi, P, Q)
    _adagrad_block(np.array([u]), np.array([i]), np.array([r]), 0, 1, mu, bu, bi, P, Q, lr,
                   reg, reg_bias, Gu, Gi, Hu, Hi)
    return e


@numba.njit(cache=True, fastmath=FASTMATH)
def adagrad_epoch(users, items, values, mu, bu, bi, P, Q, lr, reg, reg_bias, Gu, Gi, Hu, Hi):
    """One adaptive pass over the ratings in array order (the reference); returns Σ e²."""
    return _adagrad_block(users, items, values, 0, len(values), mu, bu, bi, P, Q, lr, reg,
                          reg_bias, Gu, Gi, Hu, Hi)


@numba.njit(cache=True, fastmath=FASTMATH, nogil=True)
def _adagrad_block(users, items, values, start, end, mu, bu, bi, P, Q, lr, reg, reg_bias,
                   Gu, Gi, Hu, Hi, ahead=0):
    """Adaptive updates (module docstring) for ratings start..end-1 in order; returns
    their Σ e².

    ‖g_p‖² is not summed element by element: with the old p, q it is
    γ²‖p‖² − 2γe (p·q) + e²‖q‖², and ‖p‖², ‖q‖² come with the dot product in the first
    pass over the row, so the update is the plain step's one pass,
    p ← (1 − sγ) p + (s e) q with s = η/√G_u. Written out in the loop rather than as an
    inlined step function: that form ran the 1M-rating, k 128 epoch at 2.1x plain SGD's
    time, this one at 1.4x, bit for bit the same arithmetic (one thread, same run, 5
    alternated repeats; why the compiled code differed was not pinned down). ``ahead``:
    as in ``_sgd_block``.
    """
    sse = 0.0
    k = P.shape[1]
    per = max(k, 1)  # k = 0: pp, qq and dot are 0, nothing to add
    line = max(1, LINE // P.itemsize)
    for n in range(start, end):
        m = n + ahead  # a user's run starts there: fetch the row (as in _sgd_block)
        if ahead > 0 and m < end and users[m] != users[m - 1]:
            for f in range(0, k, line):
                prefetch(P, users[m], f)
        u = np.uint64(users[n])  # unsigned, as in _sgd_block
        i = np.uint64(items[n])
        pu = P[u]
        qi = Q[i]
        dot = P.dtype.type(0)
        pp = P.dtype.type(0)
        qq = P.dtype.type(0)
        for f in range(k):
            p = pu[f]
            q = qi[f]
            dot += p * q
            pp += p * p
            qq += q * q
        e = values[n] - (mu + bu[u] + bi[i] + dot)
        g_bu = reg_bias * bu[u] - e
        g_bi = reg_bias * bi[i] - e
        bu[u] -= lr / np.sqrt(Hu[u]) * g_bu
        bi[i] -= lr / np.sqrt(Hi[i]) * g_bi
        Hu[u] += g_bu * g_bu
        Hi[i] += g_bi * g_bi
        step_u = lr / np.sqrt(Gu[u])
        step_i = lr / np.sqrt(Gi[i])
        keep_u = P.dtype.type(1) - step_u * reg
        keep_i = P.dtype.type(1) - step_i * reg
        move_u = step_u * e
        move_i = step_i * e
        for f in range(k):
            p = pu[f]
            q = qi[f]
            pu[f] = keep_u * p + move_u * q
            qi[f] = keep_i * q + move_i * p
        cross = 2 * reg * e * dot
        Gu[u] += max(reg * reg * pp - cross + e * e * qq, 0) / per
        Gi[i] += max(reg * reg * qq - cross + e * e * pp, 0) / per
        sse += e * e
    return sse


@numba.njit(cache=True, fastmath=FASTMATH)
def sgd_epoch(users, items, values, mu, bu, bi, P, Q, lr, reg, reg_bias):
    """One pass over the ratings in array order (the reference kernel); returns Σ e²."""
    sse = 0.0
    for n in range(len(values)):
        e = sgd_step(users[n], items[n], values[n], mu, bu, bi, P, Q, lr, reg, reg_bias)
        sse += e * e
    return sse


@numba.njit(cache=True, fastmath=FASTMATH, nogil=True)
def _sgd_block(users, items, values, start, end, mu, bu, bi, P, Q, lr, reg, reg_bias,
               ahead=0):
    """Updates for ratings start..end-1 in order; returns their Σ e².

    Compiled for k=128 float32 on an AVX-512 CPU (Zen 4, numba's target znver4), the dot
    product runs as 4 independent zmm vfmadd231 chains and the update as packed vmul +
    vfmadd on zmm registers, two vectors a step (on an AVX2 Zen 3 the same on ymm);
    checked on a non-cached copy: ``numba.njit(fastmath=FASTMATH)(_sgd_block.py_func)``
    then ``.inspect_asm()``. A 64-byte vector is one cache line only if the rows start on
    lines, which the factors' allocation sees to (``recsys.aligned``: 1.2-1.4x). The
    rows of the rating ``ahead`` places on are prefetched when a user's run starts there
    (``recsys.kernels.cpu.prefetch``; 0: none). Prefetching every rating's rows cost
    5-12% (docs/benchmarks.md).
    """
    sse = 0.0
    k = P.shape[1]
    line = max(1, LINE // P.itemsize)
    for n in range(start, end):
        m = n + ahead  # a user's run starts there: fetch the row
        if ahead > 0 and m < end and users[m] != users[m - 1]:
            for f in range(0, k, line):
                prefetch(P, users[m], f)
        # unsigned: the row lookups skip the wraparound of negative indices (1.03-1.08x
        # the epoch, the same model; indices are never negative)
        e = sgd_step(np.uint64(users[n]), np.uint64(items[n]), values[n], mu, bu, bi, P, Q,
                     lr, reg, reg_bias)
        sse += e * e
    return sse


@numba.njit(cache=True, parallel=True, fastmath=FASTMATH)
def sgd_epoch_blocked(users, items, values, block_ptr, grid, shifts, cols, mu, bu, bi, P, Q,
                      lr, reg, reg_bias, block_sse, workers, adaptive, Gu, Gi, Hu, Hi,
                      ahead=0, item_start=None):
    """One epoch over ratings grouped into a grid × grid of blocks (FPSGD/DSGD style).

    Ratings of block (a, b) (user block a, item block b) lie at block_ptr[a*grid+b] up to
    block_ptr[a*grid+b+1]. The epoch runs ``grid`` strata in the order given by ``shifts``;
    stratum s holds the blocks (a, cols[(a + shifts[s]) % grid]) for every a, which share no
    user and no item. ``shifts`` and ``cols`` are permutations of range(grid) drawn per
    epoch by the caller (the schedule: ``recsys.training.strata``), so blocks are met in a
    different order and pairing every epoch; within a block the ratings run in array
    order. Block sums of e² go to block_sse (summed in a fixed order by the caller, so the
    reported loss is reproducible too). With ``adaptive`` the blocks take the AdaGrad steps
    of the module docstring with the row accumulators Gu, Gi, Hu, Hi (else unused).
    ``ahead``: how far ahead the blocks prefetch user rows (``_sgd_block``; 0: not at
    all); with it, ``item_start`` (grid + 1 offsets: item block c holds the items
    item_start[c] up to item_start[c + 1]) has each block first prefetch the rows of its
    item block, once its wait is over (10M blocks, one thread: 28.0 against 29.4 ns a
    rating with the user rows alone, 4 alternated runs). Neither changes the model.

    Threads need no barrier between strata. The blocks are numbered stratum by stratum,
    (s, a) → s * grid + a, and each worker claims the next unclaimed number with an
    atomic counter; before running block (s, a) on item block c it waits until user block
    a and item block c have finished stratum s - 1. Every user block and every item block
    thus sees its blocks in stratum order whatever the thread count and timing, so the
    model is bit-identical for any number of threads. A block only waits for blocks with
    smaller numbers, which were claimed earlier by running workers, so there is no
    deadlock however the threading layer schedules the workers (even all on one thread),
    and a thread that loses its core holds up only the blocks that need its rows.
    """
    workers = max(1, min(workers, grid))
    line = max(1, LINE // Q.itemsize)
    next_block = np.zeros(1, dtype=np.int64)
    user_done = np.zeros(grid, dtype=np.int64)  # strata finished per user block
    item_done = np.zeros(grid, dtype=np.int64)  # strata finished per item block
    for _ in numba.prange(workers):
        while True:
            t = fetch_add(next_block, 0, 1)
            if t >= grid * grid:
                break
            s = t // grid
            a = t % grid
            c = cols[(a + shifts[s]) % grid]
            while load_acquire(user_done, a) < s or load_acquire(item_done, c) < s:
                cpu_yield()  # an earlier block on these users or items still runs
            b = a * grid + c
            start = block_ptr[b]
            end = block_ptr[b + 1]
            if ahead > 0 and item_start is not None:  # not before the wait: another
                for i in range(item_start[c], item_start[c + 1]):  # block may write them
                    for f in range(0, Q.shape[1], line):
                        prefetch(Q, i, f)
            if adaptive:
                block_sse[b] = _adagrad_block(users, items, values, start, end, mu, bu, bi,
                                              P, Q, lr, reg, reg_bias, Gu, Gi, Hu, Hi,
                                              ahead)
            else:
                block_sse[b] = _sgd_block(users, items, values, start, end, mu, bu, bi, P, Q,
                                          lr, reg, reg_bias, ahead)
            store_release(user_done, a, s + 1)
            store_release(item_done, c, s + 1)


# ----------------------------------------------------------------------------- gradients


@numba.njit(cache=True)
def loss(users, items, values, mu, bu, bi, P, Q, reg, reg_bias):
    """J as defined in the module docstring, accumulated in float64."""
    total = 0.0
    for n in range(len(values)):
        u = users[n]
        i = items[n]
        e = rating_error(u, i, values[n], mu, bu, bi, P, Q)
        sq = 0.0
        for f in range(P.shape[1]):
            sq += P[u, f] * P[u, f] + Q[i, f] * Q[i, f]
        total += e * e + reg * sq + reg_bias * (bu[u] * bu[u] + bi[i] * bi[i])
    return total


@numba.njit(cache=True)
def loss_gradient(users, items, values, mu, bu, bi, P, Q, reg, reg_bias):
    """∂J/∂(b_u, b_i, P, Q): the per-rating gradients of the module docstring, summed."""
    g_bu = np.zeros_like(bu)
    g_bi = np.zeros_like(bi)
    g_P = np.zeros_like(P)
    g_Q = np.zeros_like(Q)
    for n in range(len(values)):
        u = users[n]
        i = items[n]
        e = rating_error(u, i, values[n], mu, bu, bi, P, Q)
        g_bu[u] += -2.0 * e + 2.0 * reg_bias * bu[u]
        g_bi[i] += -2.0 * e + 2.0 * reg_bias * bi[i]
        for f in range(P.shape[1]):
            g_P[u, f] += -2.0 * e * Q[i, f] + 2.0 * reg * P[u, f]
            g_Q[i, f] += -2.0 * e * P[u, f] + 2.0 * reg * Q[i, f]
    return g_bu, g_bi, g_P, g_Q


@numba.njit(cache=True, fastmath=FASTMATH, parallel=True)
def sum_squared_error(users, items, values, mu, bu, bi, P, Q, lo, hi):
    """Σ e² of clipped predictions (for validation RMSE), in float64."""
    total = 0.0
    for n in numba.prange(len(values)):
        e = rating_error(users[n], items[n], values[n], mu, bu, bi, P, Q)
        pred = values[n] - e
        pred = min(max(pred, lo), hi)
        d = values[n] - pred
        total += d * d
    return total
