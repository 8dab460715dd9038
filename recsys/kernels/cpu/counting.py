"""Counts and stable partitions of rating columns, split into chunks that run in parallel
and give the serial result bit for bit.

Why: a fit counts the ratings of every user and item (the block grid), splits off its
held-out share and builds the seen-items index by a counting sort; done serially these
passes held one core of two idle for about 0.5 s of a 5.2 s fit of 10M ratings on two
threads (cProfile, 2026-12-07).
Each runs here in two parallel passes over a fixed number of consecutive chunks (count,
then place), with the per-chunk offsets summed in between in a fixed order, so the
output does not depend on the thread count: integer counts add exactly, and a chunk's
rows go after those of the chunks before it, as a serial stable pass would put them.

The chunk count depends only on the sizes (never the threads): at most ``CHUNKS``, and
few enough that the per-chunk counts (8 bytes per chunk and bucket) stay within a byte
per rating, so memory stays bounded whatever the number of buckets.

Outputs as long as the ratings are the caller's, allocated by numpy: numpy asks Linux for
transparent huge pages for large arrays, where an array allocated in compiled code comes
from malloc in 4 KiB pages, each faulted in on first write (filling a 40 MB array: 19 ms
against 3.5 ms; a 10M fit made about 110,000 such faults). ``group_by`` allocates for
compiled callers.
"""

import numba
import numpy as np

#: The most chunks a pass is cut into (more than the cores of the machines measured).
CHUNKS = 16


@numba.njit(cache=True)
def chunk_count(n, buckets):
    """Chunks for a pass over ``n`` rows into ``buckets`` buckets: up to ``CHUNKS``, with
    chunks × (buckets + 1) × 8 bytes at most ``n`` (one chunk for small inputs)."""
    by_memory = n // (8 * (buckets + 1))
    return max(1, min(CHUNKS, by_memory))


@numba.njit(cache=True, parallel=True)
def chunk_counts(index, n_buckets):
    """(counts[c, b]: rows of chunk c in bucket b, the chunks' size in rows), the chunks
    counted in parallel."""
    n = len(index)
    chunks = chunk_count(n, n_buckets)
    size = (n + chunks - 1) // chunks
    counts = np.zeros((chunks, n_buckets), dtype=np.int64)
    for c in numba.prange(chunks):
        for t in range(c * size, min(n, (c + 1) * size)):
            counts[c, index[t]] += 1
    return counts, size


@numba.njit(cache=True, parallel=True)
def bincount(index, n_buckets):
    """``np.bincount(index, minlength=n_buckets)`` as int64, for indices in
    0..n_buckets-1 (not checked)."""
    counts, _ = chunk_counts(index, n_buckets)
    chunks = counts.shape[0]
    total = np.zeros(n_buckets, dtype=np.int64)
    for b in numba.prange(n_buckets):
        s = 0
        for c in range(chunks):
            s += counts[c, b]
        total[b] = s
    return total


@numba.njit(cache=True, parallel=True)
def group_by_into(keys, values, n_keys, out):
    """Each key's values, in input order, into ``out`` (as long as ``values``), CSR-style:
    a stable counting sort of ``values`` by ``keys`` (in 0..n_keys-1, not checked); returns
    indptr (int64, n_keys + 1): key k's values are out[indptr[k]:indptr[k + 1]]."""
    n = len(keys)
    fill, size = chunk_counts(keys, n_keys)
    chunks = fill.shape[0]
    indptr = np.zeros(n_keys + 1, dtype=np.int64)
    pos = 0
    for k in range(n_keys):  # key by key, chunk after chunk: where each chunk's rows go
        indptr[k] = pos
        for c in range(chunks):
            count = fill[c, k]
            fill[c, k] = pos
            pos += count
    indptr[n_keys] = pos
    for c in numba.prange(chunks):
        for t in range(c * size, min(n, (c + 1) * size)):
            k = keys[t]
            out[fill[c, k]] = values[t]
            fill[c, k] += 1
    return indptr


@numba.njit(cache=True, parallel=True)
def keys_of(indptr, out):
    """The inverse of grouping: out[indptr[k]:indptr[k + 1]] = k for every key k."""
    for k in numba.prange(len(indptr) - 1):
        out[indptr[k]:indptr[k + 1]] = k


@numba.njit(cache=True)
def group_by(keys, values, n_keys):
    """(indptr, the values grouped): ``group_by_into`` with the output allocated here."""
    out = np.empty(len(values), dtype=values.dtype)
    return group_by_into(keys, values, n_keys, out), out


@numba.njit(cache=True, parallel=True)
def split_by_mask(column, mask, rest, held):
    """The rows of ``column`` where ``mask`` is False into ``rest``, those where it is True
    into ``held``, each in row order: ``column[~mask], column[mask]`` in one pass, without
    the negated mask and the second pass over the rows. ``held`` is as long as the mask
    has True rows, ``rest`` as the others."""
    n = len(column)
    chunks = chunk_count(n, 1)
    size = (n + chunks - 1) // chunks
    held_before = np.zeros(chunks + 1, dtype=np.int64)  # True rows before chunk c
    for c in numba.prange(chunks):
        count = 0
        for t in range(c * size, min(n, (c + 1) * size)):
            if mask[t]:
                count += 1
        held_before[c + 1] = count
    for c in range(chunks):
        held_before[c + 1] += held_before[c]
    for c in numba.prange(chunks):
        b = held_before[c]
        a = c * size - b
        for t in range(c * size, min(n, (c + 1) * size)):
            if mask[t]:
                held[b] = column[t]
                b += 1
            else:
                rest[a] = column[t]
                a += 1
