"""A worker that owns every user block runs each epoch in one call into the in-process
kernel (recsys.distributed.whole): the in-process arithmetic bit for bit, and after its
item blocks are replaced (a restore) it trains the new ones. No cluster needed: the
worker is a plain object here."""

import asyncio

import numpy as np

from recsys.distributed.actor import BlockWorker
from recsys.distributed.layout import Layout, local_indices
from recsys.kernels.cpu.sgd import sgd_epoch_blocked
from recsys.training.strata import BlockGrid, draw_order

GRID = 5


def problem():
    rng = np.random.default_rng(7)
    n_users, n_items, k = 90, 60, 4
    users = rng.integers(0, n_users, 3_000).astype(np.int32)
    items = rng.integers(0, n_items, 3_000).astype(np.int32)
    values = rng.uniform(1, 5, 3_000).astype(np.float32)
    blocks = BlockGrid.build(users, items, n_users, n_items, GRID)
    grouped = blocks.group(users, items, values)
    arrays = (np.zeros(n_users, np.float32), np.zeros(n_items, np.float32),
              rng.normal(0, 0.1, (n_users, k)).astype(np.float32),
              rng.normal(0, 0.1, (n_items, k)).astype(np.float32))
    layout = Layout.build(blocks.user_block, blocks.item_block, GRID, 1)
    return grouped, arrays, layout, np.float32(values.mean())


def worker_for(grouped, arrays, layout, mu):
    users, items, values, ptr = grouped
    bu, bi, P, Q = arrays
    worker = BlockWorker(0, layout, mu, 2, False)
    lu, li = local_indices(layout, users, items, ptr, 0, GRID)
    worker.load(lu, li, values.copy(), ptr.copy(), (P.copy(), bu.copy()))
    worker.put_items({c: (Q[slice(*layout.item_rows(c))].copy(),
                          bi[slice(*layout.item_rows(c))].copy()) for c in range(GRID)})
    return worker


def epoch(worker, order):
    sse, sent, held = asyncio.run(worker.run_epoch(1, *order, np.float32(0.01),
                                                   np.float32(0.05), np.float32(0.05)))
    assert sent == 0 and held == list(range(GRID))
    return np.array([sse[b] for b in range(GRID * GRID)])


def host(worker):
    """Copies of the worker's (b_u, b_i, P, Q)."""
    _, (P, bu), held = worker.arrays()
    Q = np.concatenate([held[c][0] for c in range(GRID)])
    bi = np.concatenate([held[c][1] for c in range(GRID)])
    return bu.copy(), bi.copy(), P.copy(), Q


def test_one_epoch_is_the_in_process_kernels_bit_for_bit():
    grouped, arrays, layout, mu = problem()
    worker = worker_for(grouped, arrays, layout, mu)
    assert worker.whole
    rng = np.random.default_rng(3)
    orders = [draw_order(rng, GRID) for _ in range(2)]
    here = tuple(a.copy() for a in arrays)
    none = np.zeros(0, np.float32)
    for order in orders:
        block_sse = np.zeros(GRID * GRID)
        sgd_epoch_blocked(*grouped[:4], GRID, *order, mu, *here, np.float32(0.01),
                          np.float32(0.05), np.float32(0.05), block_sse, 2, False, none,
                          none, none, none)
        assert np.array_equal(epoch(worker, order), block_sse)
    assert all(np.array_equal(a, b) for a, b in zip(host(worker), here))


def test_after_a_restore_the_restored_blocks_are_trained():
    grouped, arrays, layout, mu = problem()
    worker = worker_for(grouped, arrays, layout, mu)
    order = draw_order(np.random.default_rng(4), GRID)
    first = epoch(worker, order)
    worker.snapshot(1)
    after_one = host(worker)
    second = epoch(worker, order)
    worker.restore(1)
    assert all(np.array_equal(a, b) for a, b in zip(host(worker), after_one))
    assert np.array_equal(epoch(worker, order), second)  # from the restored arrays again
    assert not np.array_equal(first, second)
