"""The bytes of item blocks an epoch moves between workers, predicted from its stratum
order alone: plain numpy, for the client to set beside what the workers count.

Item block c is handed on ``grid`` times an epoch: from the worker that holds it at the
start to the one whose user block meets it in stratum 0, and from the worker of stratum s
to that of stratum s + 1. A hand-off costs bytes only when the two workers differ, and
then the whole block: its Q rows and item biases (and with AdaGrad their accumulators).
"""

from __future__ import annotations

import numpy as np

from recsys.distributed.layout import Layout


def moves(layout: Layout, shifts, cols, holders: dict) -> np.ndarray:
    """Hand-offs of each item block to another worker in the epoch (shifts, cols), with
    item block c held by worker ``holders[c]`` at its start."""
    grid = layout.grid
    owner = layout.owner
    position = np.argsort(np.asarray(cols))  # item block -> its place in cols
    # the user block meeting item block c in stratum s, for every s (rows) and c
    meeting = (position[None, :] - np.asarray(shifts)[:, None]) % grid
    workers = owner[meeting]
    start = np.array([holders[c] for c in range(grid)], dtype=np.int64)
    path = np.vstack([start[None, :], workers])
    return (path[1:] != path[:-1]).sum(axis=0)


def block_bytes(layout: Layout, k: int, itemsize: int, adaptive: bool) -> np.ndarray:
    """Bytes of each item block as sent: its rows × (k + 1, + 2 with AdaGrad) values."""
    rows = np.diff(layout.item_bounds)
    return rows * (k + 1 + (2 if adaptive else 0)) * itemsize


def predicted_bytes(layout: Layout, shifts, cols, holders: dict, k: int, itemsize: int,
                    adaptive: bool) -> int:
    """Bytes of item blocks the epoch (shifts, cols) sends to another worker."""
    return int((moves(layout, shifts, cols, holders)
                * block_bytes(layout, k, itemsize, adaptive)).sum())
