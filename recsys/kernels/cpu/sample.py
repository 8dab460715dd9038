"""Sampling kernel for synthetic data: distinct items per user, drawn by popularity."""

import numba
import numpy as np


@numba.njit(cache=True)
def distinct_items(counts, cdf, guide, rng, out):
    """For user u, ``counts[u]`` distinct items drawn by the popularity ``cdf``; written to
    ``out`` user after user.

    Each draw is an inverse-CDF lookup started from the guide table (O(1) on average); an
    item the user already has is drawn again. ``counts[u]`` must stay well below the number
    of items (the caller caps it at half) so the redraws stay few.
    """
    marks = np.full(len(cdf), -1, dtype=np.int64)
    n_guide = len(guide)
    pos = 0
    for u in range(len(counts)):
        got = 0
        while got < counts[u]:
            x = rng.random()
            i = guide[int(x * n_guide)]
            while cdf[i] <= x:
                i += 1
            if marks[i] != u:
                marks[i] = u
                out[pos] = i
                pos += 1
                got += 1
    return pos
