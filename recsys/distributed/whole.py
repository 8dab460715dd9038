"""A worker that owns every user block runs a whole epoch in one call into the in-process
fit's parallel kernel (``recsys.kernels.cpu.sgd.sgd_epoch_blocked``), not block by block.

With one worker every item block an epoch needs is already with it, so nothing has to
wait for a message: handing each block through the worker's event loop and thread pool
(about 0.2 ms of wall time a block) buys nothing. The item blocks are laid side by side
into whole Q and b_i arrays (their rows are contiguous and in block order), the ratings'
item rows are made global once, when the worker loads them, and the epoch runs on the
worker's numba threads exactly as in one process: the same compiled kernel on the same
arrays, so the same arithmetic, bit for bit. Afterwards the item blocks are views of the
whole arrays again, so the rest of the worker (checkpoints, snapshots, gathering) sees
them as before, and the next epoch trains the same whole arrays unless the blocks were
replaced in between (a restore, a checkpoint read): no copy an epoch.
"""

from __future__ import annotations

import numpy as np

from recsys.distributed.layout import Layout


def applies(layout: Layout) -> bool:
    """Whether a worker of ``layout`` owns every user block (and so meets every block)."""
    return layout.n_workers == 1


def globalize_items(layout: Layout, items: np.ndarray, block_ptr: np.ndarray) -> None:
    """Turn the item rows of the whole grid's ratings (local to their item block, grouped
    block by block) into item indices, in place."""
    grid = layout.grid
    offsets = np.tile(layout.item_bounds[:grid], grid).astype(items.dtype)
    items += np.repeat(offsets, np.diff(block_ptr))


def join(held: dict, grid: int) -> tuple:
    """The item blocks ``held`` (all ``grid`` of them) laid side by side: whole arrays."""
    if sorted(held) != list(range(grid)):
        raise RuntimeError(f"a whole epoch needs all {grid} item blocks, not {len(held)}")
    parts = [held[c] for c in range(grid)]
    return tuple(np.concatenate([p[j] for p in parts]) for j in range(len(parts[0])))


def split(whole: tuple, layout: Layout) -> dict:
    """Item block c of the whole arrays, as views, for every c."""
    return {c: tuple(a[slice(*layout.item_rows(c))] for a in whole)
            for c in range(layout.grid)}


def run_epoch(worker, shifts, cols, lr, reg, reg_bias) -> np.ndarray:
    """One epoch of ``worker`` (a ``BlockWorker`` that ``applies``) on its threads; its
    item blocks become views of the arrays trained. Returns Σ e² by block number."""
    import numba

    from recsys.kernels.cpu.sgd import sgd_epoch_blocked

    grid = worker.layout.grid
    joined = worker.joined  # (the blocks held, the arrays they are views of)
    whole = joined[1] if joined is not None and joined[0] is worker.held \
        else join(worker.held, grid)
    block_sse = np.zeros(grid * grid, dtype=np.float64)
    threads = max(1, min(int(worker.threads), int(numba.config.NUMBA_NUM_THREADS)))
    numba.set_num_threads(threads)  # for this thread (one of the worker's pool)
    if worker.adaptive:
        P, bu, Gu, Hu = worker.rows
        Q, bi, Gi, Hi = whole
    else:
        (P, bu), (Q, bi) = worker.rows, whole
        Gu = Gi = Hu = Hi = np.zeros(0, dtype=bu.dtype)
    sgd_epoch_blocked(worker.users, worker.items, worker.values, worker.block_ptr, grid,
                      shifts, cols, worker.mu, bu, bi, P, Q, lr, reg, reg_bias, block_sse,
                      threads, worker.adaptive, Gu, Gi, Hu, Hi)
    worker.held = split(whole, worker.layout)
    worker.joined = (worker.held, whole)
    return block_sse
