"""Duplicate (user, item) detection, on the ratings grouped by user in O(n)
(``recsys.kernels.cpu.counting.group_by``)."""

import numba
import numpy as np

from recsys.kernels.cpu.counting import group_by


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
    starts, grouped = group_by(users, items, n_users)  # each user's items, in order
    marks = np.full(n_items, -1, dtype=np.int32)
    for u in range(n_users):
        for j in range(starts[u], starts[u + 1]):
            i = grouped[j]
            if marks[i] == u:
                return True
            marks[i] = u
    return False
