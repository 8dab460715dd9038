"""Ratings grouped by user in O(n) (a counting sort), and duplicate (user, item) detection."""

import numba
import numpy as np


@numba.njit(cache=True)
def items_by_user(users, items, n_users):
    """Each user's items, in input order, as CSR: (indptr int64, indices int32)."""
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    for r in range(len(users)):
        indptr[users[r] + 1] += 1
    for u in range(n_users):
        indptr[u + 1] += indptr[u]
    fill = indptr[:-1].copy()
    indices = np.empty(len(items), dtype=np.int32)
    for r in range(len(users)):
        u = users[r]
        indices[fill[u]] = items[r]
        fill[u] += 1
    return indptr, indices


@numba.njit(cache=True)
def has_duplicate_pairs(users, items, n_users, n_items):
    """True when some (user, item) pair occurs twice.

    A per-item mark holding the last user seen finds a repeat within a user's group. Rows
    already grouped by user (user indices never decrease, as in MovieLens files) are
    marked as they are; others are grouped first by a counting sort (4 bytes a rating of
    scratch memory).
    """
    grouped = True
    for r in range(1, len(users)):
        if users[r] < users[r - 1]:
            grouped = False
            break
    if grouped:
        marks = np.full(n_items, -1, dtype=np.int32)
        for r in range(len(users)):
            i = items[r]
            if marks[i] == users[r]:
                return True
            marks[i] = users[r]
        return False
    starts, grouped = items_by_user(users, items, n_users)
    marks = np.full(n_items, -1, dtype=np.int32)
    for u in range(n_users):
        for j in range(starts[u], starts[u + 1]):
            i = grouped[j]
            if marks[i] == u:
                return True
            marks[i] = u
    return False
