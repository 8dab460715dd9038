"""Prediction and top-N kernels: batch scores, unknown ids and exclusion of seen items."""

import numba
import numpy as np

from recsys.kernels.cpu.counting import group_by_into, keys_of


@numba.njit(cache=True, parallel=True, fastmath={"reassoc", "contract"})
def predict_pairs(users, items, mu, bu, bi, P, Q, k, lo, hi, out):
    """out[n] = clip(mu + b_u + b_i + p_u·q_i) over the first ``k`` factor columns, with -1
    (unknown) ids falling back to biases.

    An unknown user contributes no b_u and no p_u; an unknown item no b_i and no q_i.
    ``k`` below P's width leaves the columns after it out (the rating part of a model
    whose recommendations use them too) without copying P and Q.
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
            for f in range(k):
                dot += P[u, f] * Q[i, f]
            value += dot
        out[n] = min(max(value, lo), hi)


@numba.njit(cache=True, inline="always")
def _top_n_row(row, row_bias, col_bias, biased, n, seen, end, seen_idx, idx, val):
    """The n best (row[c] + col_bias[c]) + row_bias of one row into idx/val (see below)."""
    for j in range(n):
        idx[j] = -1
        val[j] = -np.inf
    full = False
    for c in range(row.shape[0]):
        s = row[c]
        if biased:
            s = (s + col_bias[c]) + row_bias
        if full and s <= val[n - 1]:
            continue
        if s != s:
            continue
        while seen < end and seen_idx[seen] < c:
            seen += 1
        if seen < end and seen_idx[seen] == c:
            continue
        # insert into the sorted list (descending), shifting smaller entries down
        j = n - 1
        while j > 0 and (idx[j - 1] < 0 or val[j - 1] < s):
            val[j] = val[j - 1]
            idx[j] = idx[j - 1]
            j -= 1
        val[j] = s
        idx[j] = c
        full = idx[n - 1] >= 0


@numba.njit(cache=True, parallel=True)
def top_n_rows(scores, n, rows, seen_ptr, seen_idx, exclude_seen, out_idx, out_score):
    """Per row of ``scores``, the n best columns in descending order.

    ``rows[r]`` is the user index of score row r (-1: no seen items to exclude). Excluded
    and missing slots get index -1 and score -inf. Ties go to the lower column index, so
    results are deterministic.

    One pass per row: most columns are rejected by a single comparison with the current
    n-th best; only candidates are checked against the user's seen items, by a pointer
    that walks the sorted ``seen_idx`` forward alongside the columns.
    """
    no_bias = np.zeros(1, dtype=scores.dtype)
    for r in numba.prange(scores.shape[0]):
        u = rows[r]
        start = 0
        end = 0
        if exclude_seen and u >= 0:
            start = seen_ptr[u]
            end = seen_ptr[u + 1]
        _top_n_row(scores[r], scores.dtype.type(0), no_bias, False, n, start, end, seen_idx,
                   out_idx[r], out_score[r])


@numba.njit(cache=True, parallel=True)
def top_n_rows_biased(scores, row_bias, col_bias, n, rows, seen_ptr, seen_idx, exclude_seen,
                      out_idx, out_score):
    """``top_n_rows`` of (scores[r, c] + col_bias[c]) + row_bias[r], without forming it.

    Adding the biases while scanning saves two passes over the (users × items) product.
    """
    for r in numba.prange(scores.shape[0]):
        u = rows[r]
        start = 0
        end = 0
        if exclude_seen and u >= 0:
            start = seen_ptr[u]
            end = seen_ptr[u + 1]
        _top_n_row(scores[r], row_bias[r], col_bias, True, n, start, end, seen_idx,
                   out_idx[r], out_score[r])


def seen_csr(users, items, n_users, scratch=None):
    """Each user's items as CSR (indptr int64, indices int32 sorted within each user).

    Two stable counting sorts (an LSD radix sort of the (user, item) pairs): the users
    grouped by item, then those grouped by user, so each user's items come out in item
    order without a sort per user. Both run chunked on the fit's threads into arrays numpy
    allocates (``recsys.kernels.cpu.counting``); linear in the ratings, where sorting each
    user's list after one counting sort took 0.19 s of 0.21 s at 10M (two threads), and a
    lexsort of all pairs takes seconds. 8 bytes a rating of scratch while it runs:
    ``scratch``, two int32 arrays at least as long as the ratings that are no longer
    needed (a fit's grouped users and items), else new ones.
    """
    n = len(users)
    if scratch is None or any(len(a) < n or a.dtype != np.int32 for a in scratch):
        scratch = (np.empty(n, dtype=np.int32), np.empty(n, dtype=np.int32))
    users_by_item, item_of = (a[:n] for a in scratch)
    n_items = int(items.max()) + 1 if len(items) else 0
    item_ptr = group_by_into(items, users, n_items, users_by_item)
    keys_of(item_ptr, item_of)
    indices = np.empty(len(items), dtype=np.int32)
    indptr = group_by_into(users_by_item, item_of, n_users, indices)
    return indptr, indices
