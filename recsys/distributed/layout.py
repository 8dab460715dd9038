"""Who holds what in a distributed fit: plain numpy, shared by the client and the workers.

Worker w of W owns the contiguous user blocks ``np.array_split(range(grid), W)[w]`` for
the whole fit, with their ratings, P rows and user biases. Item blocks travel: in stratum
s, user block a needs item block ``cols[(a + shifts[s]) % grid]`` (``recsys.training.strata``),
so after stratum s item block c goes to the owner of the user block that meets it in
stratum s + 1. Blocks are contiguous index ranges, so a worker's P rows and an item block's
Q rows are slices, and a rating's local row is its index minus the range's start.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def bounds(block: np.ndarray, grid: int) -> np.ndarray:
    """Start of each of the ``grid`` contiguous ranges of a (non-decreasing) block-of-index
    array, and its end: grid + 1 offsets."""
    block = np.asarray(block)
    if len(block) > 1 and np.any(np.diff(block) < 0):
        raise ValueError("blocks are not contiguous index ranges")
    return np.searchsorted(block, np.arange(grid + 1), side="left").astype(np.int64)


@dataclass(frozen=True)
class Layout:
    """The split of a grid's user blocks between ``n_workers`` workers, and the index
    ranges of every user block and item block (``user_bounds``, ``item_bounds``)."""

    grid: int
    n_workers: int
    user_bounds: np.ndarray
    item_bounds: np.ndarray

    @classmethod
    def build(cls, user_block, item_block, grid: int, n_workers: int) -> Layout:
        return cls(int(grid), max(1, min(int(n_workers), int(grid))),
                   bounds(user_block, grid), bounds(item_block, grid))

    @property
    def owner(self) -> np.ndarray:
        """The worker of every user block."""
        owner = np.empty(self.grid, dtype=np.int64)
        for w, chunk in enumerate(np.array_split(np.arange(self.grid), self.n_workers)):
            owner[chunk] = w
        return owner

    def user_blocks(self, worker: int) -> tuple[int, int]:
        """The user blocks [first, last) of ``worker``."""
        chunk = np.array_split(np.arange(self.grid), self.n_workers)[worker]
        return int(chunk[0]), int(chunk[-1]) + 1

    def user_rows(self, worker: int) -> tuple[int, int]:
        """The user index range [start, end) of ``worker``."""
        first, last = self.user_blocks(worker)
        return int(self.user_bounds[first]), int(self.user_bounds[last])

    def item_rows(self, c: int) -> tuple[int, int]:
        return int(self.item_bounds[c]), int(self.item_bounds[c + 1])


def partner(cols: np.ndarray, shifts: np.ndarray, a: int, s: int) -> int:
    """The item block user block ``a`` meets in stratum ``s``."""
    grid = len(cols)
    return int(cols[(a + int(shifts[s])) % grid])


def meets(cols: np.ndarray, shifts: np.ndarray, c: int, s: int) -> int:
    """The user block that meets item block ``c`` in stratum ``s`` (inverse of partner)."""
    grid = len(cols)
    position = int(np.flatnonzero(cols == c)[0])
    return (position - int(shifts[s])) % grid


def local_indices(layout: Layout, users, items, block_ptr, first: int, last: int):
    """The ratings of user blocks [first, last) (grouped block by block, ``block_ptr`` from
    0) as rows local to their worker's user range and to their item block: int32 copies.
    ValueError if a rating lies outside its block's ranges (a damaged partition)."""
    grid = layout.grid
    sizes = np.diff(block_ptr)
    item_of = np.repeat(np.tile(np.arange(grid), last - first), sizes)
    user_of = np.repeat(np.repeat(np.arange(first, last), grid), sizes)
    u0 = layout.user_bounds[first]
    ok = ((users >= layout.user_bounds[user_of]) & (users < layout.user_bounds[user_of + 1])
          & (items >= layout.item_bounds[item_of]) & (items < layout.item_bounds[item_of + 1]))
    if not ok.all():
        row = int(np.flatnonzero(~ok)[0])
        raise ValueError(f"rating {row} of user blocks {first}..{last - 1} (user {users[row]}, "
                         f"item {items[row]}) lies outside its block")
    return ((users - u0).astype(np.int32), (items - layout.item_bounds[item_of]).astype(np.int32))
