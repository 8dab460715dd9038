"""Duplicate ratings: a second rating of the same (user, item) pair.

The readers of files and of DataFrames apply the same policy with this code: 'error'
(names the second line or row and the first), keep the 'last', or take the 'mean' or the
'sum' (kept at the place of the last; 'sum' adds up event counts). The check itself costs
little memory whatever the input's size: 8 bytes a rating (the keys, sorted in place), or
the compiled check's bit table. Resolving duplicates that are there sorts int64 keys with
their order (and, for 'mean' and 'sum', float64 sums): up to about 40 bytes a rating at
the peak, some three times the 12 of the arrays read; the readers' bounds keep those in
proportion to the file, gzip included.
"""

from __future__ import annotations

import sys

import numpy as np

from recsys.errors import DataError

DUPLICATE_POLICIES = ("error", "last", "mean", "sum")

#: From this many ratings on, the compiled check runs when numba is loaded already.
_KERNEL_ROWS = 1 << 20
#: Ratings grouped by user are checked a slice of about this many at a time.
_CHUNK_ROWS = 1 << 20


def has_duplicates(users, items, n_users: int, n_items: int) -> bool:
    """Whether any (user, item) pair occurs twice; little scratch memory either way.

    Large inputs use the O(n) compiled check when numba is loaded already (training loads
    it); importing numba just for this costs about what sorting the keys does.
    """
    if len(users) < 2:
        return False
    if len(users) >= _KERNEL_ROWS and "numba" in sys.modules:
        from recsys.kernels.cpu.pairs import has_duplicate_pairs

        return bool(has_duplicate_pairs(users, items, n_users, n_items))
    if _grouped(users):  # as in MovieLens files: check one user-aligned slice at a time
        starts = np.searchsorted(users, users[::_CHUNK_ROWS], side="left")
        bounds = np.unique(np.r_[starts, len(users)])
        return any(_sorted_keys_repeat(users[a:b], items[a:b], n_items)
                   for a, b in zip(bounds[:-1], bounds[1:], strict=True))
    return _sorted_keys_repeat(users, items, n_items)


def _grouped(users) -> bool:
    """Whether user indices never decrease (each user's ratings are contiguous)."""
    step = _CHUNK_ROWS
    return all(not (users[a + 1:a + step + 1] < users[a:a + step][: len(users) - a - 1]).any()
               for a in range(0, len(users) - 1, step))


def _sorted_keys_repeat(users, items, n_items: int) -> bool:
    key = users.astype(np.int64)
    key *= max(n_items, 1)
    key += items
    key.sort()
    return bool((key[1:] == key[:-1]).any())


def resolve_duplicates(users, items, values, stamps, policy, n_users, n_items, line_of,
                       path, unit: str = "line"):
    """Apply the duplicate (user, item) policy; returns the kept rows' arrays.

    ``line_of(k)`` is the 1-based line (``unit`` 'line') or row ('row') of rating k, for
    the message that names the first repeated pair.
    """
    if not has_duplicates(users, items, n_users, n_items):
        return users, items, values, stamps
    key = users.astype(np.int64) * max(n_items, 1) + items
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    del key
    dup = np.flatnonzero(sorted_key[1:] == sorted_key[:-1])
    if policy == "error":
        j = int(np.argmin(order[dup + 1]))  # the earliest line that repeats a pair
        first, second = int(order[dup[j]]), int(order[dup[j] + 1])
        reason = (f"duplicate rating for the same user and item (first on {unit} "
                  f"{line_of(first)}; use --duplicates last, mean or sum to allow them)")
        if unit == "row":
            raise DataError(reason, path, row=int(line_of(second)))
        raise DataError(reason, path, int(line_of(second)))
    starts = np.r_[0, np.flatnonzero(sorted_key[1:] != sorted_key[:-1]) + 1]
    last_rows = order[np.r_[starts[1:] - 1, len(order) - 1]]
    keep = np.sort(last_rows)  # the last occurrence in file order survives, in file order
    if policy in ("mean", "sum"):
        group_sum = np.add.reduceat(values[order].astype(np.float64), starts)
        group_n = np.diff(np.r_[starts, len(order)])
        by_row = np.empty(len(order), dtype=np.float64)
        by_row[last_rows] = group_sum / group_n if policy == "mean" else group_sum
        values = values.copy()
        values[keep] = by_row[keep]
    st = None if stamps is None else stamps[keep]
    return users[keep], items[keep], values[keep], st
