"""The ranking objective: a weighted squared loss over every user-item pair (WRMF / iALS,
Hu, Koren & Volinsky 2008), descended row by row with conjugate gradients, the unobserved
pairs never touched.

Loss, with s_ui = p_u·q_i the score and O the observed (chosen) pairs:

    L = Σ_{(u,i)∈O} c_ui (1 − s_ui)²  +  w0 Σ_{(u,i)∉O} s_ui²  +  Σ_u λ_u ‖p_u‖² + Σ_i λ_i ‖q_i‖²

Every pair a user did not choose is a weak negative (target 0, weight w0); a chosen pair
has target 1 and confidence c_ui > w0. One row at a time (the other side fixed) L is a
quadratic. For user u, the unobserved sum is the sum over all items less the observed
ones, and the sum over all items needs only the Gramian of the items,

    Σ_{i∉O(u)} (p·q_i)² = pᵀ G p − Σ_{i∈O(u)} (p·q_i)²,      G = Σ_i q_i q_iᵀ  (k × k),

computed once per half-epoch (Krichene et al., ICLR 2019; He et al., eALS, SIGIR 2016). So,
up to a constant, the row's loss is pᵀ A p − 2 bᵀp with

    A = w0 G + λ_u I + Σ_{i∈O(u)} (c_ui − w0) q_i q_iᵀ,      b = Σ_{i∈O(u)} c_ui q_i,

and its gradient ∂L/∂p_u = 2 (A p_u − b) costs O(|O(u)| k + k²), never O(n_items k). A is
positive definite (the loss is a sum of squares with non-negative weights, plus λ_u I).
Each half-epoch takes ``steps`` conjugate-gradient steps on A p = b from the current p_u
for every user (Takács, Pilászy & Tikk, RecSys 2011): steps along A-conjugate directions
of the gradient, which reach the row's exact minimum in at most k steps and get close in a
few. Rows are independent given the other side, so they run in parallel, and G is summed
in a fixed order: the model does not depend on the thread count. Items are solved the same
way with the users as the known side.
"""

import numba
import numpy as np

from recsys.kernels.cpu.sgd import FASTMATH


@numba.njit(cache=True, parallel=True, fastmath=FASTMATH)
def gramian(Y):
    """G = Yᵀ Y = Σ_j y_j y_jᵀ in float64, each entry summed over the rows in order."""
    n, k = Y.shape
    G = np.zeros((k, k))
    for a in numba.prange(k):
        for j in range(n):
            ya = Y[j, a]
            for b in range(a, k):
                G[a, b] += ya * Y[j, b]
    for a in range(k):
        for b in range(a):
            G[a, b] = G[b, a]
    return G


@numba.njit(cache=True, inline="always")
def _apply(x, out, r, indptr, cols, conf, Y, G, w0, lam):
    """out = A x for row r."""
    k = len(x)
    for a in range(k):
        s = 0.0
        for b in range(k):
            s += G[a, b] * x[b]
        out[a] = w0 * s + lam * x[a]
    for p in range(indptr[r], indptr[r + 1]):
        j = cols[p]
        dot = 0.0
        for a in range(k):
            dot += Y[j, a] * x[a]
        coef = (conf[p] - w0) * dot
        for a in range(k):
            out[a] += coef * Y[j, a]


@numba.njit(cache=True, inline="always")
def _residual(x, out, tmp, r, indptr, cols, conf, Y, G, w0, lam):
    """out = b − A x for row r."""
    _apply(x, tmp, r, indptr, cols, conf, Y, G, w0, lam)
    for a in range(len(x)):
        out[a] = -tmp[a]
    for p in range(indptr[r], indptr[r + 1]):
        j = cols[p]
        for a in range(len(x)):
            out[a] += conf[p] * Y[j, a]


@numba.njit(cache=True, parallel=True, fastmath=FASTMATH)
def cg_rows(indptr, cols, conf, X, Y, G, w0, lam, steps):
    """``steps`` conjugate-gradient steps on A x = b for every row of X, in place.

    Row r's chosen pairs are ``cols[indptr[r]:indptr[r+1]]`` (indices into Y) with
    confidences ``conf``; ``lam[r]`` is its regularization λ_r; G is Yᵀ Y.
    """
    n, k = X.shape
    for r in numba.prange(n):
        x = np.empty(k)
        for a in range(k):
            x[a] = X[r, a]
        res = np.empty(k)
        direction = np.empty(k)
        Ad = np.empty(k)
        _residual(x, res, Ad, r, indptr, cols, conf, Y, G, w0, lam[r])
        rr = 0.0
        for a in range(k):
            direction[a] = res[a]
            rr += res[a] * res[a]
        for _ in range(steps):
            if rr <= 1e-30:
                break
            _apply(direction, Ad, r, indptr, cols, conf, Y, G, w0, lam[r])
            dAd = 0.0
            for a in range(k):
                dAd += direction[a] * Ad[a]
            if dAd <= 0.0:
                break
            step = rr / dAd
            rr_new = 0.0
            for a in range(k):
                x[a] += step * direction[a]
                res[a] -= step * Ad[a]
                rr_new += res[a] * res[a]
            for a in range(k):
                direction[a] = res[a] + (rr_new / rr) * direction[a]
            rr = rr_new
        for a in range(k):
            X[r, a] = x[a]


@numba.njit(cache=True, parallel=True)
def row_gradients(indptr, cols, conf, X, Y, G, w0, lam):
    """∂L/∂x_r = 2 (A x_r − b) of every row, as the conjugate-gradient steps see it (for
    the tests against finite differences of L)."""
    n, k = X.shape
    out = np.empty((n, k))
    for r in numba.prange(n):
        x = np.empty(k)
        for a in range(k):
            x[a] = X[r, a]
        res = np.empty(k)
        tmp = np.empty(k)
        _residual(x, res, tmp, r, indptr, cols, conf, Y, G, w0, lam[r])
        for a in range(k):
            out[r, a] = -2.0 * res[a]
    return out


@numba.njit(cache=True, parallel=True, fastmath=FASTMATH)
def chosen_squared_error(indptr, cols, X, Y):
    """Σ (1 − s)² over the chosen pairs (unweighted), for the training report; rows are
    summed in order, so the figure does not depend on the thread count either."""
    n, k = X.shape
    per_row = np.zeros(n)
    for r in numba.prange(n):
        total = 0.0
        for p in range(indptr[r], indptr[r + 1]):
            j = cols[p]
            s = 0.0
            for a in range(k):
                s += X[r, a] * Y[j, a]
            total += (1.0 - s) * (1.0 - s)
        per_row[r] = total
    return per_row.sum()
