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
    P = aligned.copy(rng.normal(0.0, init_std, (n_users, n_factors)), dtype)
    Q = aligned.copy(rng.normal(0.0, init_std, (n_items, n_factors)), dtype)
    return Factors(mu, np.zeros(n_users, dtype=dtype), np.zeros(n_items, dtype=dtype), P, Q)


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

    def __len__(self) -> int:
        return len(self.values)

    def __iter__(self):  # unpacks as (users, items, values, block_ptr, grid)
        return iter((self.users, self.items, self.values, self.block_ptr, self.grid))
