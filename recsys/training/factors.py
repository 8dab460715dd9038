"""How a fit starts: the initial factors, and the ratings as trainers see them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys import aligned
from recsys.state import Factors


def initial_factors(values, n_users: int, n_items: int, n_factors: int, init_std: float,
                    dtype, rng: np.random.Generator) -> Factors:
    """mu = the mean rating; P then Q drawn N(0, init_std²) from ``rng`` (in that order);
    biases 0. A tiny init_std makes SGD learn the strongest directions first. P and Q
    start on a cache line (``recsys.aligned``)."""
    mu = dtype(values.mean(dtype=np.float64))
    P = normal_rows(rng, init_std, (n_users, n_factors), dtype)
    Q = normal_rows(rng, init_std, (n_items, n_factors), dtype)
    return Factors(mu, np.zeros(n_users, dtype=dtype), np.zeros(n_items, dtype=dtype), P, Q)


#: Draws per chunk of ``normal_rows`` (512 KiB of float64: stays in L2).
DRAW_CHUNK = 1 << 16


def normal_rows(rng: np.random.Generator, std: float, shape, dtype) -> np.ndarray:
    """``rng.normal(0.0, std, shape).astype(dtype)`` bit for bit, in an array that starts
    on a cache line, drawn a chunk at a time: the generator's stream is consumed in the
    same order, and ``normal`` is 0 + std·z of the same standard draws z; but no float64
    matrix twice the size of the factors is made and copied (10M ratings, two threads:
    0.10-0.18 s where the draws and the copy took 0.24-0.37 s, and 82 MB; at 100M
    510 MB)."""
    out = aligned.empty(shape, dtype)
    flat = out.reshape(-1)
    for start in range(0, flat.size, DRAW_CHUNK):
        z = rng.standard_normal(min(DRAW_CHUNK, flat.size - start))
        z *= std
        z += 0.0  # normal's loc: -0.0 becomes 0.0 as it does there
        flat[start:start + len(z)] = z
    return out


@dataclass
class GroupedRatings:
    """The training ratings grouped into the blocks of the grid (``recsys.training.strata``):
    int32 users and items, float32 values, ``block_ptr`` offsets and the grid size. Every
    trainer gets them in this order; blocked SGD also uses the blocks."""

    users: np.ndarray
    items: np.ndarray
    values: np.ndarray
    block_ptr: np.ndarray
    grid: int
    #: The block of every user and item index (``BlockGrid``), for backends that split
    #: the grid between processes.
    user_block: np.ndarray | None = None
    item_block: np.ndarray | None = None
    #: Already shuffled and sorted into blocked SGD's order (``SGDTrainer``), by this seed.
    sgd_order: int | None = None
    #: The (users, items, values) arrays the columns above are the first rows of, which
    #: may have room for more: a later fit can group its ratings into them
    #: (``recsys.training.loop.train``'s ``room``) once this one is done with them.
    room: tuple | None = None

    def __len__(self) -> int:
        return len(self.values)

    def of_users(self, keep: np.ndarray) -> GroupedRatings:
        """The ratings of the users with ``keep`` set (bool, one per user index), in the
        same blocks and the same order within each (so in blocked SGD's order where these
        are): one pass, with no grouping, shuffling or sorting again."""
        from recsys.kernels.cpu.blocks import copy_kept, kept_per_block

        counts = kept_per_block(self.users, self.block_ptr, keep)
        kept_ptr = np.zeros(len(self.block_ptr), dtype=np.int64)
        np.cumsum(counts, out=kept_ptr[1:])
        n = int(kept_ptr[-1])
        out = (np.empty(n, self.users.dtype), np.empty(n, self.items.dtype),
               np.empty(n, self.values.dtype))
        copy_kept(self.users, self.items, self.values, self.block_ptr, keep, kept_ptr, *out)
        return GroupedRatings(*out, kept_ptr, self.grid, self.user_block, self.item_block,
                              self.sgd_order)

    def __iter__(self):  # unpacks as (users, items, values, block_ptr, grid)
        return iter((self.users, self.items, self.values, self.block_ptr, self.grid))
