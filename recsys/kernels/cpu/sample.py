"""Sampling kernels: the share of ratings a fit holds out (drawn here, split off by
``recsys.kernels.cpu.counting.split_by_mask``), and distinct items per user drawn by
popularity (synthetic data)."""

import numba
import numpy as np

from recsys.kernels.cpu.rng import splitmix64


@numba.njit(cache=True)
def held_out_mask(n_out, state, mask):
    """Set ``mask`` (bool, one per row; numpy's allocation: ``recsys.kernels.cpu.counting``)
    to exactly ``n_out`` True rows, every such subset equally likely: Knuth's selection
    sampling (Algorithm S), one pass and one draw per row from the SplitMix64 stream
    ``state``. Row t is taken with probability (still needed) / (rows left), so the count
    comes out exact. No permutation of the rows is built (8 bytes a row; 0.57 s for 10M
    rows, where this pass took 0.05 s)."""
    n = len(mask)
    needed = n_out
    for t in range(n):
        if needed == 0:
            mask[t:] = False
            break
        state, bits = splitmix64(state)
        u = np.float64(bits >> np.uint64(11)) * (1.0 / 9007199254740992.0)  # [0, 1)
        taken = (n - t) * u < needed
        mask[t] = taken
        if taken:
            needed -= 1
    return mask


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
