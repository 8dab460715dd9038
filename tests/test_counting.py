"""The chunked parallel counts and partitions give numpy's (serial) results, bit for bit,
on any number of threads."""

import numba
import numpy as np
import pytest

from recsys.kernels.cpu.counting import (
    CHUNKS,
    bincount,
    chunk_count,
    group_by,
    group_by_into,
    keys_of,
    split_by_mask,
)
from recsys.kernels.cpu.predict import seen_csr

SIZES = [0, 1, 2, 15, 16, 17, 1000, 65_537]


def on_threads(fn, *args):
    """``fn(*args)`` on one thread and on every thread numba has."""
    previous = numba.get_num_threads()
    try:
        results = []
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            results.append(fn(*args))
        return results
    finally:
        numba.set_num_threads(previous)


def test_chunks_stay_within_a_byte_per_row_and_the_cap():
    assert chunk_count(0, 10) == 1 and chunk_count(10, 10) == 1
    assert chunk_count(10_000_000, 70_000) == CHUNKS
    # many buckets and few rows: one chunk rather than chunks x buckets of counts
    assert chunk_count(1_000_000, 1_000_000) == 1
    for n, buckets in [(10_000, 100), (100_000, 943), (5_000_000, 480_189)]:
        assert chunk_count(n, buckets) * (buckets + 1) * 8 <= max(n, 8 * (buckets + 1))


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("n_buckets", [1, 7, 3000])
def test_bincount_is_numpys(n, n_buckets):
    index = np.random.default_rng(n).integers(0, n_buckets, n).astype(np.int32)
    for counts in on_threads(bincount, index, n_buckets):
        np.testing.assert_array_equal(counts, np.bincount(index, minlength=n_buckets))
        assert counts.dtype == np.int64


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("n_keys", [1, 5, 2000])
def test_group_by_is_a_stable_sort_by_key(n, n_keys):
    rng = np.random.default_rng(n + n_keys)
    keys = rng.integers(0, n_keys, n).astype(np.int32)
    values = rng.integers(0, 1 << 30, n).astype(np.int32)
    order = np.argsort(keys, kind="stable")
    expected_ptr = np.concatenate([[0], np.cumsum(np.bincount(keys, minlength=n_keys))])
    for indptr, grouped in on_threads(group_by, keys, values, n_keys):
        np.testing.assert_array_equal(grouped, values[order])
        np.testing.assert_array_equal(indptr, expected_ptr)
        assert grouped.dtype == values.dtype

    def into():
        out = np.full(n, -1, dtype=np.int64)  # another dtype: the values are cast
        return group_by_into(keys, values, n_keys, out), out

    for indptr, grouped in on_threads(into):
        np.testing.assert_array_equal(grouped, values[order])
        np.testing.assert_array_equal(indptr, expected_ptr)


def test_keys_of_undoes_the_grouping():
    keys = np.sort(np.random.default_rng(1).integers(0, 50, 5000)).astype(np.int32)
    indptr, _ = group_by(keys, keys, 60)  # keys 50..59 have no rows
    out = np.full(len(keys), -1, dtype=np.int32)
    keys_of(indptr, out)
    np.testing.assert_array_equal(out, keys)


@pytest.mark.parametrize("n", SIZES)
def test_seen_csr_is_each_users_items_sorted(n):
    rng = np.random.default_rng(n)
    n_users = 40
    users = rng.integers(0, n_users, n).astype(np.int32)
    items = rng.integers(0, 3000, n).astype(np.int32)
    order = np.lexsort((items, users))
    expected_ptr = np.concatenate([[0], np.cumsum(np.bincount(users, minlength=n_users))])
    for indptr, indices in on_threads(seen_csr, users, items, n_users):
        np.testing.assert_array_equal(indices, items[order])
        np.testing.assert_array_equal(indptr, expected_ptr)
        assert indices.dtype == np.int32 and indptr.dtype == np.int64
    roomy = (np.full(n + 3, -1, np.int32), np.full(n + 3, -1, np.int32))
    short = (np.full(max(n - 1, 0), -1, np.int32), np.full(n, -1, np.int32))
    for scratch in (roomy, short):
        before = [a.copy() for a in scratch]
        indptr, indices = seen_csr(users, items, n_users, scratch)
        np.testing.assert_array_equal(indices, items[order])
        assert not any(np.shares_memory(indices, a) for a in scratch)
        written = any(not np.array_equal(a, b) for a, b in zip(scratch, before, strict=True))
        assert written == (scratch is roomy and n > 0)  # used only where it fits


def test_group_by_and_seen_csr_keep_their_contract():
    rng = np.random.default_rng(3)
    users = rng.integers(0, 300, 50_000).astype(np.int32)
    items = rng.integers(0, 900, 50_000).astype(np.int32)
    indptr, indices = group_by(users, items, 300)
    assert indices.dtype == np.int32
    for u in (0, 17, 299):
        np.testing.assert_array_equal(indices[indptr[u]:indptr[u + 1]], items[users == u])
    indptr, indices = seen_csr(users, items, 300)
    np.testing.assert_array_equal(indices[indptr[5]:indptr[6]], np.sort(items[users == 5]))


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("share", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("dtype", [np.int32, np.float32, np.int64])
def test_split_by_mask_is_the_two_selections(n, share, dtype):
    rng = np.random.default_rng(n)
    column = rng.integers(-1000, 1000, n).astype(dtype)
    mask = rng.random(n) < share
    def split():
        held = int(mask.sum())
        rest, kept = np.full(n - held, 7, dtype=dtype), np.full(held, 7, dtype=dtype)
        split_by_mask(column, mask, rest, kept)
        return rest, kept

    for rest, held in on_threads(split):
        np.testing.assert_array_equal(rest, column[~mask])
        np.testing.assert_array_equal(held, column[mask])
        assert rest.dtype == held.dtype == np.dtype(dtype)
