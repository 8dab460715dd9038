"""The ratings laid out for the blocked SGD kernel (``recsys.kernels.cpu.sgd``): grouped
into the blocks of the grid (a counting sort), shuffled within each block, then sorted by
user within each block. Plain functions over arrays; the grid itself is
``recsys.training.strata``'s.
"""

import numba
import numpy as np

from recsys.kernels.cpu.rng import shuffle_range, stream_seed


@numba.njit(cache=True, parallel=True)
def shuffle_and_sort_blocks(users, items, values, block_ptr, seed, epoch, first=0):
    """Shuffle each block's ratings, then stable-sort them by user, in place (as LIBMF
    does), the blocks in parallel.

    Block b is shuffled from the stream (seed, epoch, first + b): ``first``, the number of
    the first block given, lets a process that holds some of the grid's blocks shuffle
    them as the whole grid's would be. After the sort a user's ratings follow one another,
    so p_u stays in L1 between them, and the user rows are met in increasing address
    order; the sort is stable, so a user's items stay in their shuffled order. Each block
    is sorted while its shuffled ratings are still in cache (10M ratings, two threads: one
    pass over the ratings where a shuffle pass and a sort pass took two).
    """
    for b in numba.prange(len(block_ptr) - 1):
        shuffle_range(users, items, values, block_ptr[b], block_ptr[b + 1],
                      stream_seed(seed, epoch, first + b))
        sort_block_by_user(users, items, values, block_ptr[b], block_ptr[b + 1])


@numba.njit(cache=True, inline="always")
def sort_block_by_user(users, items, values, start, end):
    """Stable-sort ratings start..end-1 by user, in place. A block's users are a
    contiguous range of indices (``recsys.training.strata``), so it is a counting sort
    over that range, linear in the block (a merge sort where the range is much wider than
    the block). Temporaries are one block's size."""
    if end - start < 2:
        return
    lo = users[start]
    hi = lo
    for n in range(start, end):
        lo = min(lo, users[n])
        hi = max(hi, users[n])
    width = hi - lo + 1
    if width > 4 * (end - start) + 64:
        order = np.argsort(users[start:end], kind="mergesort") + start
        users[start:end] = users[order]
        items[start:end] = items[order]
        values[start:end] = values[order]
        return
    offset = np.zeros(width + 1, dtype=np.int64)  # offset[j]: where user lo + j starts
    for n in range(start, end):
        offset[users[n] - lo + 1] += 1
    for j in range(1, width + 1):
        offset[j] += offset[j - 1]
    sorted_u = np.empty(end - start, dtype=users.dtype)
    sorted_i = np.empty(end - start, dtype=items.dtype)
    sorted_v = np.empty(end - start, dtype=values.dtype)
    for n in range(start, end):
        j = users[n] - lo
        at = offset[j]
        offset[j] = at + 1
        sorted_u[at] = users[n]
        sorted_i[at] = items[n]
        sorted_v[at] = values[n]
    users[start:end] = sorted_u
    items[start:end] = sorted_i
    values[start:end] = sorted_v


#: Input chunks of ``group_into_blocks``: a fixed number, so the work split (not only the
#: result) is the same whatever the thread count.
GROUP_CHUNKS = 16


@numba.njit(cache=True, parallel=True)
def group_into_blocks(users, items, values, user_block, item_block, grid, out_u, out_i,
                      out_v):
    """Copy the ratings grouped by block (counting sort) into ``out_u``, ``out_i``,
    ``out_v`` (as long as the ratings); returns block_ptr.

    Within a block the ratings keep their input order. The input is cut into
    ``GROUP_CHUNKS`` consecutive chunks counted and scattered in parallel; block b's
    ratings from chunk c go after those of the chunks before it, so the copies are those
    of a serial stable counting sort, bit for bit. The copies are the caller's, allocated
    by numpy (on huge pages: ``recsys.kernels.cpu.counting``).
    """
    n = len(values)
    n_blocks = grid * grid
    chunks = GROUP_CHUNKS if n >= 16 * GROUP_CHUNKS else 1
    size = (n + chunks - 1) // chunks
    counts = np.zeros((chunks, n_blocks), dtype=np.int64)
    for c in numba.prange(chunks):
        for n_ in range(c * size, min(n, (c + 1) * size)):
            counts[c, user_block[users[n_]] * grid + item_block[items[n_]]] += 1
    block_ptr = np.zeros(n_blocks + 1, dtype=np.int64)
    fill = np.empty((chunks, n_blocks), dtype=np.int64)
    pos = 0
    for b in range(n_blocks):
        block_ptr[b] = pos
        for c in range(chunks):
            fill[c, b] = pos
            pos += counts[c, b]
    block_ptr[n_blocks] = pos
    for c in numba.prange(chunks):
        for n_ in range(c * size, min(n, (c + 1) * size)):
            b = user_block[users[n_]] * grid + item_block[items[n_]]
            at = fill[c, b]
            fill[c, b] += 1
            out_u[at] = users[n_]
            out_i[at] = items[n_]
            out_v[at] = values[n_]
    return block_ptr


@numba.njit(cache=True, parallel=True)
def kept_per_block(users, block_ptr, keep):
    """How many of each block's ratings have ``keep[user]`` set."""
    counts = np.zeros(len(block_ptr) - 1, dtype=np.int64)
    for b in numba.prange(len(block_ptr) - 1):
        count = 0
        for n in range(block_ptr[b], block_ptr[b + 1]):
            if keep[users[n]]:
                count += 1
        counts[b] = count
    return counts


@numba.njit(cache=True, parallel=True)
def copy_kept(users, items, values, block_ptr, keep, kept_ptr, out_u, out_i, out_v):
    """The ratings of the users with ``keep`` set, block by block into the blocks of
    ``kept_ptr`` (from ``kept_per_block``), in the order they have: a subsequence of
    each block keeps it sorted by user and each user's items in their shuffled order."""
    for b in numba.prange(len(block_ptr) - 1):
        at = kept_ptr[b]
        for n in range(block_ptr[b], block_ptr[b + 1]):
            if keep[users[n]]:
                out_u[at] = users[n]
                out_i[at] = items[n]
                out_v[at] = values[n]
                at += 1
