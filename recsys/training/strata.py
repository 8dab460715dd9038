"""How a fit splits the ratings into blocks: policy in Python, the kernels only follow it.

Users (and items) are cut into ``grid`` contiguous index ranges holding about the same
number of ratings. Contiguous ranges keep the factor rows a block touches together in
memory, so the hardware prefetcher streams them; equal rating counts keep the threads of
a stratum equally busy.
"""

from __future__ import annotations

import numpy as np


def contiguous_blocks(counts: np.ndarray, grid: int) -> np.ndarray:
    """Block (0..grid-1) of each index: contiguous ranges with about equal sums of counts.

    The block of index j is decided by the middle of its share of the running total, so
    a very active user does not drag its neighbours into its block.
    """
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if len(counts) == 0 or total <= 0:
        return np.zeros(len(counts), dtype=np.int32)
    middle = np.cumsum(counts) - counts / 2
    return np.minimum(middle * grid // total, grid - 1).astype(np.int32)
