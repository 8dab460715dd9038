"""Prediction and top-N kernels: batch scores, unknown ids and exclusion of seen items."""

import numba
import numpy as np


@numba.njit(cache=True, parallel=True, fastmath={"reassoc", "contract"})
def predict_pairs(users, items, mu, bu, bi, P, Q, lo, hi, out):
    """out[n] = clip(mu + b_u + b_i + p_u·q_i) with -1 (unknown) ids falling back to biases.

    An unknown user contributes no b_u and no p_u; an unknown item no b_i and no q_i.
    """
    for n in numba.prange(len(users)):
        u = users[n]
        i = items[n]
        value = mu
        if u >= 0:
            value += bu[u]
        if i >= 0:
            value += bi[i]
        if u >= 0 and i >= 0:
            dot = P.dtype.type(0)
            for f in range(P.shape[1]):
                dot += P[u, f] * Q[i, f]
            value += dot
        out[n] = min(max(value, lo), hi)


@numba.njit(cache=True, parallel=True)
def top_n_rows(scores, n, rows, seen_ptr, seen_idx, exclude_seen, out_idx, out_score):
    """Per row of ``scores``, the n best columns in descending order.

    ``rows[r]`` is the user index of score row r (-1: no seen items to exclude). Excluded
    and missing slots get index -1 and score -inf. Ties go to the lower column index, so
    results are deterministic.
    """
    n_cols = scores.shape[1]
    for r in numba.prange(scores.shape[0]):
        row = scores[r]
        idx = out_idx[r]
        val = out_score[r]
        for j in range(n):
            idx[j] = -1
            val[j] = -np.inf
        u = rows[r]
        start = 0
        end = 0
        if exclude_seen and u >= 0:
            start = seen_ptr[u]
            end = seen_ptr[u + 1]
        for c in range(n_cols):
            s = row[c]
            if s != s:
                continue
            if end > start:
                # seen_idx is sorted per user: binary search for c
                lo = start
                hi = end
                while lo < hi:
                    mid = (lo + hi) // 2
                    if seen_idx[mid] < c:
                        lo = mid + 1
                    else:
                        hi = mid
                if lo < end and seen_idx[lo] == c:
                    continue
            if s <= val[n - 1] and idx[n - 1] >= 0:
                continue
            # insert into the sorted list (descending), shifting smaller entries down
            j = n - 1
            while j > 0 and (idx[j - 1] < 0 or val[j - 1] < s):
                val[j] = val[j - 1]
                idx[j] = idx[j - 1]
                j -= 1
            val[j] = s
            idx[j] = c
