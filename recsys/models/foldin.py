"""Folding a new user into a fitted model: their factors and bias, the items held fixed.

With the item factors Q, item biases b_i and global mean mu fixed, a user's ratings r_j of
items j give a linear least-squares problem in x = [p_u; b_u] (the bias is handled by
augmenting Q with a column of ones):

    minimise  Σ_j (y_j - q_j·p_u - b_u)²  +  λ_p ||p_u||²  +  λ_b b_u²,   y_j = r_j - mu - b_j

whose minimiser solves the normal equations

    (AᵀA + diag(λ_p, ..., λ_p, λ_b)) x = Aᵀy,   A = [Q_I | 1].

The penalties are those of the model's own loss for one user, so that a folded-in user
is comparable with the trained ones: SGD training applies the regularization once per
rating, so for m ratings λ_p = reg·m and λ_b = reg_bias·m; the damped-means baseline
shrinks b_u as a penalty λ_b = user_damping (and has no p_u). Solved in float64; no
retraining, no numba.
"""

from __future__ import annotations

import numpy as np


def ratings_arrays(ratings) -> tuple[np.ndarray, np.ndarray]:
    """A new user's ratings as (items, values) arrays from a dict or a pair of sequences.

    Raises ValueError for mismatched lengths, duplicate items or non-finite ratings.
    """
    if isinstance(ratings, dict):
        items, values = list(ratings.keys()), list(ratings.values())
    else:
        try:
            items, values = ratings
        except (TypeError, ValueError):
            raise ValueError("ratings must be a dict {item: rating} or a pair "
                             "(items, values)") from None
    items = np.atleast_1d(np.asarray(items))
    if items.dtype.kind == "O":
        items = items.astype(str)
    try:
        values = np.atleast_1d(np.asarray(values, dtype=np.float64))
    except (TypeError, ValueError):
        raise ValueError("ratings must be numbers") from None
    if items.ndim != 1 or items.shape != values.shape:
        raise ValueError(f"{len(items)} items but {len(values)} ratings")
    if not np.isfinite(values).all():
        bad = values[~np.isfinite(values)][0]
        raise ValueError(f"ratings must be finite numbers, not {bad}")
    unique, counts = np.unique(items, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"item {unique[counts > 1][0]!r} is rated more than once")
    return items, values


def normal_equations(Q, item_bias, mu, items, values, factor_penalty, bias_penalty):
    """The (k+1)×(k+1) system M x = rhs whose solution x = [p_u; b_u] is the fold-in, for
    penalties λ_p = ``factor_penalty`` and λ_b = ``bias_penalty``."""
    items = np.asarray(items, dtype=np.int64)
    m, k = len(items), Q.shape[1]
    A = np.empty((m, k + 1), dtype=np.float64)
    A[:, :k] = Q[items]
    A[:, k] = 1.0
    y = np.asarray(values, dtype=np.float64) - float(mu) - item_bias[items].astype(np.float64)
    M = A.T @ A
    M[np.arange(k), np.arange(k)] += float(factor_penalty)
    M[k, k] += float(bias_penalty)
    return M, A.T @ y


def fold_in(Q, item_bias, mu, items, values, factor_penalty, bias_penalty
            ) -> tuple[np.ndarray, float]:
    """User factors (float64, length k) and bias for ratings ``values`` of item indices ``items``.

    No ratings give zeros (the model's answer for an unknown user). Without regularization
    a rank-deficient system gets the minimum-norm least-squares solution.
    """
    k = Q.shape[1]
    if len(items) == 0:
        return np.zeros(k, dtype=np.float64), 0.0
    M, rhs = normal_equations(Q, item_bias, mu, items, values, factor_penalty, bias_penalty)
    try:
        if (factor_penalty > 0 or k == 0) and bias_penalty > 0:
            x = np.linalg.solve(M, rhs)
        else:
            raise np.linalg.LinAlgError
    except np.linalg.LinAlgError:
        x = np.linalg.lstsq(M, rhs, rcond=None)[0]
    if not np.isfinite(x).all():
        raise ValueError("the fold-in produced non-finite factors")
    return x[:k], float(x[k])


def ranking_fold_in(Q, items, conf, w0, penalty) -> np.ndarray:
    """A new user's factors under the ranking loss of ``recsys.kernels.cpu.wals``, the item
    factors Q fixed: the exact solution of

        (w0 QᵀQ + λ I + Σ_{j∈O} (c_j − w0) q_j q_jᵀ) p = Σ_{j∈O} c_j q_j,

    which the conjugate-gradient steps of training approach; in float64. No chosen items
    give p = 0.
    """
    Q = np.asarray(Q, dtype=np.float64)
    k = Q.shape[1]
    items = np.asarray(items, dtype=np.int64)
    conf = np.asarray(conf, dtype=np.float64)
    if len(items) == 0:
        return np.zeros(k)
    Qo = Q[items]
    A = w0 * (Q.T @ Q) + (Qo * (conf - w0)[:, None]).T @ Qo
    A[np.arange(k), np.arange(k)] += penalty
    b = Qo.T @ conf
    p = np.linalg.solve(A, b) if penalty > 0 else np.linalg.lstsq(A, b, rcond=None)[0]
    if not np.isfinite(p).all():
        raise ValueError("the fold-in produced non-finite factors")
    return p
