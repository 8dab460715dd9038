"""The block grid and the stratum order of blocked SGD: policy in Python, apart from the
kernel that runs a block, so every backend (CPU threads today) follows the same schedule.

Users (and items) are cut into ``grid`` contiguous index ranges holding about the same
number of ratings. Contiguous ranges keep the factor rows a block touches together in
memory, so the hardware prefetcher streams them; equal rating counts keep the workers of
a stratum equally busy. Block (a, c) holds the ratings of user block a and item block c.

An epoch runs ``grid`` strata. For a permutation ``shifts`` (the order of the strata) and
a permutation ``cols`` (the pairing of user blocks with item blocks), both drawn per epoch
from the fit's random generator, stratum s holds the blocks (a, cols[(a + shifts[s]) %
grid]) for every a: ``grid`` blocks that share no user block and no item block, so they
can run at once without locks (DSGD, Gemulla et al. 2011). Every block is met once per
epoch. A model that depends only on each user block and item block meeting its blocks in
stratum order does not depend on how many workers run them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Per-block factor rows are kept near this size so a block's rows stay in cache.
BLOCK_BYTES = 1 << 20


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


def choose_grid(n_users: int, n_items: int, n_ratings: int, row_bytes: int,
                grid: int | None = None) -> int:
    """Blocks per side: ``grid`` if given, else from the sizes (never from the thread count,
    so neither is the model): big enough that a block's factor rows fit in BLOCK_BYTES and
    that 32 strata keep up to 16 workers busy, small enough that blocks keep about 2,048
    ratings, at most 64."""
    if grid is not None:
        return int(grid)
    by_cache = math.ceil(math.sqrt((n_users + n_items) * row_bytes / BLOCK_BYTES))
    wanted = max(by_cache, 32)
    return int(max(1, min(wanted, 64, int(math.sqrt(max(n_ratings, 1) / 2048)))))


@dataclass(frozen=True)
class BlockGrid:
    """The grid of a fit: its size and the block of every user and item index."""

    grid: int
    user_block: np.ndarray
    item_block: np.ndarray

    @classmethod
    def build(cls, users, items, n_users: int, n_items: int, grid: int) -> BlockGrid:
        from recsys.kernels.cpu.counting import bincount  # the counts on the fit's threads

        return cls(grid,
                   contiguous_blocks(bincount(users, n_users), grid),
                   contiguous_blocks(bincount(items, n_items), grid))

    def group(self, users, items, values, out: tuple | None = None):
        """Copies of the ratings grouped block by block (row-major: block a * grid + c),
        input order kept within a block, and ``block_ptr`` (grid² + 1 offsets). ``out``:
        three arrays as long as the ratings to copy them into (else new ones)."""
        from recsys.kernels.cpu.blocks import group_into_blocks

        if out is None:
            out = np.empty_like(users), np.empty_like(items), np.empty_like(values)
        block_ptr = group_into_blocks(users, items, values, self.user_block,
                                      self.item_block, self.grid, *out)
        return (*out, block_ptr)


def draw_order(rng: np.random.Generator, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """(shifts, cols) of one epoch, in that order from ``rng``."""
    shifts = rng.permutation(grid).astype(np.int64)
    cols = rng.permutation(grid).astype(np.int64)
    return shifts, cols


def strata(shifts: np.ndarray, cols: np.ndarray) -> list[list[tuple[int, int]]]:
    """The epoch's strata as lists of (user block, item block), in the order they run."""
    grid = len(cols)
    return [[(a, int(cols[(a + int(shifts[s])) % grid])) for a in range(grid)]
            for s in range(grid)]
