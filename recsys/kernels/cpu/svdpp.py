"""SVD++ (Koren 2008): biased matrix factorization with implicit feedback; maths and kernels.

Model, with N(u) the items user u rated in training and s_u = |N(u)|^(−1/2):

    r̂_ui = mu + b_u + b_i + q_i · z_u,    z_u = p_u + s_u Σ_{j∈N(u)} y_j

Each item has a second factor vector y_j (a row of Y): what rating j says about a user,
whatever the rating's value. Loss descended, summed over the known ratings K (each
parameter regularized once per rating its term appears in, as in ``recsys.kernels.cpu.sgd``):

    J = Σ_{(u,i)∈K} [ e_ui² + γ (‖p_u‖² + ‖q_i‖²) + γ_y Σ_{j∈N(u)} ‖y_j‖² + γ_b (b_u² + b_i²) ]

with e_ui = r_ui − r̂_ui. The gradient of one rating's term ℓ_ui is

    ∂ℓ/∂b_u = −2 e + 2γ_b b_u          ∂ℓ/∂b_i = −2 e + 2γ_b b_i
    ∂ℓ/∂p_u = −2 e q_i + 2γ p_u        ∂ℓ/∂q_i = −2 e z_u + 2γ q_i
    ∂ℓ/∂y_j = −2 e s_u q_i + 2γ_y y_j  for every j ∈ N(u)

Training goes user by user (the standard efficient form): z_u is computed once when the
user starts (kept in step with p_u as p_u moves); each of the user's ratings then takes
the SGD step −(λ/2)·gradient on b_u, b_i, p_u, q_i:

    b_u += λ (e − γ_b b_u)     b_i += λ (e − γ_b b_i)
    p_u += λ (e q_i − γ p_u)   q_i += λ (e z_u − γ q_i)     (with the old p_u, q_i, z_u)

while g = Σ e q_i (old q_i) is accumulated over the user's ratings; at the end of the user
every y_j, j ∈ N(u), takes the summed step of the user's terms, once:

    y_j += λ (s_u g − |N(u)| γ_y y_j)

Visiting y once per user instead of once per rating makes an epoch cost O(|K| k) rather
than O(Σ_u |N(u)|² k). Users are visited in an order shuffled per epoch and each user's
ratings in an order shuffled per (epoch, user), from counter-based streams of the seed, so
training is reproducible bit for bit. The kernel is serial (q_i and y_j are shared by all
users).

After training, ``fold_implicit`` writes z_u into the user factors, so the fitted model has
the plain form mu + b_u + b_i + p_u·q_i (see ``recsys.training.trainers.SVDppTrainer``).
"""

import numba
import numpy as np

from recsys.kernels.cpu.rng import shuffle_range, splitmix64, stream_seed
from recsys.kernels.cpu.sgd import FASTMATH


@numba.njit(cache=True)
def group_by_user(users, items, values, n_users):
    """Ratings sorted by user (stable counting sort): (users, items, values, indptr)."""
    counts = np.zeros(n_users + 1, dtype=np.int64)
    for n in range(len(values)):
        counts[users[n] + 1] += 1
    indptr = np.cumsum(counts)
    fill = indptr[:-1].copy()
    out_u = np.empty_like(users)
    out_i = np.empty_like(items)
    out_v = np.empty_like(values)
    for n in range(len(values)):
        pos = fill[users[n]]
        fill[users[n]] += 1
        out_u[pos] = users[n]
        out_i[pos] = items[n]
        out_v[pos] = values[n]
    return out_u, out_i, out_v, indptr


@numba.njit(cache=True)
def permutation(n, state):
    """A Fisher-Yates permutation of 0..n-1 drawn from a SplitMix64 stream."""
    out = np.arange(n)
    for i in range(n - 1, 0, -1):
        state, bits = splitmix64(state)
        j = np.int64(bits % np.uint64(i + 1))
        out[i], out[j] = out[j], out[i]
    return out


@numba.njit(cache=True, fastmath=FASTMATH, inline="always")
def implicit_factor(u, start, end, items, P, Y, z):
    """z = p_u + s_u Σ_{j∈N(u)} y_j, with N(u) = items[start:end]; returns s_u."""
    k = P.shape[1]
    for f in range(k):
        z[f] = 0
    for n in range(start, end):
        j = items[n]
        for f in range(k):
            z[f] += Y[j, f]
    s = P.dtype.type(1.0 / np.sqrt(end - start)) if end > start else P.dtype.type(0)
    for f in range(k):
        z[f] = P[u, f] + s * z[f]
    return s


@numba.njit(cache=True, fastmath=FASTMATH)
def svdpp_user(u, start, end, items, values, mu, bu, bi, P, Q, Y, z, g, lr, reg, reg_bias,
               reg_y):
    """The updates of one user (ratings start..end-1, in that order); returns Σ e²."""
    k = P.shape[1]
    s = implicit_factor(u, start, end, items, P, Y, z)
    for f in range(k):
        g[f] = 0
    sse = 0.0
    for n in range(start, end):
        i = items[n]
        dot = P.dtype.type(0)
        for f in range(k):
            dot += Q[i, f] * z[f]
        e = values[n] - (mu + bu[u] + bi[i] + dot)
        sse += e * e
        bu[u] += lr * (e - reg_bias * bu[u])
        bi[i] += lr * (e - reg_bias * bi[i])
        for f in range(k):
            pu = P[u, f]
            qi = Q[i, f]
            step = lr * (e * qi - reg * pu)
            P[u, f] = pu + step
            Q[i, f] = qi + lr * (e * z[f] - reg * qi)
            z[f] += step
            g[f] += e * qi
    shrink = P.dtype.type(end - start) * reg_y
    for n in range(start, end):
        j = items[n]
        for f in range(k):
            Y[j, f] += lr * (s * g[f] - shrink * Y[j, f])
    return sse


@numba.njit(cache=True, fastmath=FASTMATH)
def svdpp_epoch(users, items, values, indptr, seed, epoch, mu, bu, bi, P, Q, Y, lr, reg,
                reg_bias, reg_y):
    """One epoch, user by user; ratings grouped by user (``indptr``); returns Σ e².

    The user order comes from the stream (seed, epoch, 0); user u's ratings are shuffled in
    place from the stream (seed, epoch, u + 1).
    """
    n_users = len(indptr) - 1
    order = permutation(n_users, stream_seed(seed, epoch, 0))
    z = np.empty(P.shape[1], dtype=P.dtype)
    g = np.empty(P.shape[1], dtype=P.dtype)
    sse = 0.0
    for t in range(n_users):
        u = order[t]
        start = indptr[u]
        end = indptr[u + 1]
        if end == start:
            continue
        shuffle_range(users, items, values, start, end, stream_seed(seed, epoch, u + 1))
        sse += svdpp_user(u, start, end, items, values, mu, bu, bi, P, Q, Y, z, g, lr, reg,
                          reg_bias, reg_y)
    return sse


@numba.njit(cache=True, fastmath=FASTMATH, parallel=True)
def fold_implicit(indptr, items, P, Y, out):
    """out[u] = z_u = p_u + s_u Σ_{j∈N(u)} y_j for every user (p_u for users without
    ratings)."""
    k = P.shape[1]
    for u in numba.prange(len(indptr) - 1):
        z = np.empty(k, dtype=P.dtype)
        implicit_factor(u, indptr[u], indptr[u + 1], items, P, Y, z)
        for f in range(k):
            out[u, f] = z[f]


# ----------------------------------------------------------------------------- gradients


@numba.njit(cache=True)
def loss(items, values, indptr, mu, bu, bi, P, Q, Y, reg, reg_bias, reg_y):
    """J as defined in the module docstring, accumulated in float64."""
    k = P.shape[1]
    total = 0.0
    z = np.empty(k, dtype=np.float64)
    for u in range(len(indptr) - 1):
        start, end = indptr[u], indptr[u + 1]
        if end == start:
            continue
        s = 1.0 / np.sqrt(end - start)
        ysq = 0.0
        for f in range(k):
            z[f] = 0.0
        for n in range(start, end):
            for f in range(k):
                z[f] += Y[items[n], f]
                ysq += Y[items[n], f] * Y[items[n], f]
        for f in range(k):
            z[f] = P[u, f] + s * z[f]
        for n in range(start, end):
            i = items[n]
            dot = 0.0
            sq = 0.0
            for f in range(k):
                dot += Q[i, f] * z[f]
                sq += P[u, f] * P[u, f] + Q[i, f] * Q[i, f]
            e = values[n] - (mu + bu[u] + bi[i] + dot)
            total += (e * e + reg * sq + reg_y * ysq
                      + reg_bias * (bu[u] * bu[u] + bi[i] * bi[i]))
    return total


@numba.njit(cache=True)
def loss_gradient(items, values, indptr, mu, bu, bi, P, Q, Y, reg, reg_bias, reg_y):
    """∂J/∂(b_u, b_i, P, Q, Y): the per-rating gradients of the module docstring, summed."""
    k = P.shape[1]
    g_bu = np.zeros_like(bu)
    g_bi = np.zeros_like(bi)
    g_P = np.zeros_like(P)
    g_Q = np.zeros_like(Q)
    g_Y = np.zeros_like(Y)
    z = np.empty(k, dtype=np.float64)
    for u in range(len(indptr) - 1):
        start, end = indptr[u], indptr[u + 1]
        if end == start:
            continue
        s = 1.0 / np.sqrt(end - start)
        for f in range(k):
            z[f] = 0.0
        for n in range(start, end):
            for f in range(k):
                z[f] += Y[items[n], f]
        for f in range(k):
            z[f] = P[u, f] + s * z[f]
        for n in range(start, end):
            i = items[n]
            dot = 0.0
            for f in range(k):
                dot += Q[i, f] * z[f]
            e = values[n] - (mu + bu[u] + bi[i] + dot)
            g_bu[u] += -2.0 * e + 2.0 * reg_bias * bu[u]
            g_bi[i] += -2.0 * e + 2.0 * reg_bias * bi[i]
            for f in range(k):
                g_P[u, f] += -2.0 * e * Q[i, f] + 2.0 * reg * P[u, f]
                g_Q[i, f] += -2.0 * e * z[f] + 2.0 * reg * Q[i, f]
            for m in range(start, end):
                j = items[m]
                for f in range(k):
                    g_Y[j, f] += -2.0 * e * s * Q[i, f] + 2.0 * reg_y * Y[j, f]
    return g_bu, g_bi, g_P, g_Q, g_Y
