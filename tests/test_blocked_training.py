"""The fast training path: block layout, rating order, thread independence, and accuracy
against the plain reference kernel."""

import subprocess
import sys

import numba
import numpy as np
import pytest

from recsys import FunkSVD
from recsys.data.ratings import Ratings
from recsys.data.synth import SHAPES, SynthSpec, generate
from recsys.kernels.cpu.blocks import group_into_blocks, shuffle_and_sort_blocks, sort_block_by_user
from recsys.kernels.cpu.rng import shuffle_range, stream_seed
from recsys.kernels.cpu.sgd import (
    _sgd_block,
    sgd_epoch,
    sgd_epoch_blocked,
    sum_squared_error,
)
from recsys.training.strata import contiguous_blocks
from tests.conftest import tiny_problem


def _grouped(ratings, grid):
    ub = contiguous_blocks(np.bincount(ratings.users, minlength=ratings.n_users), grid)
    ib = contiguous_blocks(np.bincount(ratings.items, minlength=ratings.n_items), grid)
    return ub, ib, _group(ratings.users, ratings.items, ratings.values, ub, ib, grid)


def _group(users, items, values, ub, ib, grid):
    """group_into_blocks into fresh copies, filled with garbage first: every row is
    written."""
    out = (np.full_like(users, -7), np.full_like(items, -7), np.full_like(values, np.nan))
    return (*out, group_into_blocks(users, items, values, ub, ib, grid, *out))


def test_contiguous_blocks_are_ordered_ranges_of_about_equal_weight():
    counts = np.random.default_rng(0).zipf(1.8, 5_000).clip(max=500)
    grid = 16
    blocks = contiguous_blocks(counts, grid)
    assert blocks.dtype == np.int32
    assert np.all(np.diff(blocks) >= 0)  # contiguous index ranges
    assert blocks[0] == 0 and blocks[-1] == grid - 1
    sums = np.bincount(blocks, weights=counts, minlength=grid)
    assert sums.max() <= counts.sum() / grid + counts.max()
    assert sums.min() >= counts.sum() / grid - counts.max()


def _sort_each(users, items, values, ptr):
    """sort_block_by_user on every block."""
    for a, b in zip(ptr[:-1], ptr[1:], strict=True):
        sort_block_by_user(users, items, values, a, b)


def test_sort_blocks_by_user_keeps_each_blocks_ratings(small_ratings):
    ub, ib, (users, items, values, ptr) = _grouped(small_ratings, 4)
    before = [sorted(zip(users[a:b], items[a:b], values[a:b], strict=True))
              for a, b in zip(ptr[:-1], ptr[1:], strict=True)]
    shuffle_and_sort_blocks(users, items, values, ptr, 3, 0)
    for n, (a, b) in enumerate(zip(ptr[:-1], ptr[1:], strict=True)):
        assert sorted(zip(users[a:b], items[a:b], values[a:b], strict=True)) == before[n]
        assert np.all(np.diff(users[a:b]) >= 0)
        assert np.all(ub[users[a:b]] * 4 + ib[items[a:b]] == n)


@pytest.mark.parametrize("width", [40, 100_000])  # counting sort / merge sort fallback
def test_shuffle_and_sort_is_each_block_shuffled_then_stably_sorted(width):
    rng = np.random.default_rng(width)
    n = 5000
    users = rng.integers(0, width, n).astype(np.int32)
    items = rng.integers(0, 50, n).astype(np.int32)
    values = rng.random(n).astype(np.float32)
    ptr = np.array([0, 7, 7, 1200, 1201, 3000, n], dtype=np.int64)  # empty and 1-rating blocks
    two = users.copy(), items.copy(), values.copy()  # each block shuffled, then sorted
    for b, (start, end) in enumerate(zip(ptr[:-1], ptr[1:], strict=True)):
        shuffle_range(*two, start, end, np.uint64(stream_seed(11, 2, 5 + b)))
        order = np.argsort(two[0][start:end], kind="stable") + start
        for column in two:
            column[start:end] = column[order]
    one = users.copy(), items.copy(), values.copy()
    shuffle_and_sort_blocks(*one, ptr, 11, 2, 5)
    for fused, separate in zip(one, two, strict=True):
        np.testing.assert_array_equal(fused, separate)
    assert not np.array_equal(one[1], items)  # it did move them


@pytest.mark.parametrize("width", [40, 100_000])  # counting sort / merge sort fallback
def test_sort_blocks_by_user_is_a_stable_sort_of_each_block(width):
    rng = np.random.default_rng(width)
    sizes = rng.integers(0, 300, 25)
    ptr = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    users = np.concatenate([rng.integers(40 * b, 40 * b + width, s)
                            for b, s in enumerate(sizes)]).astype(np.int32)
    items = rng.integers(0, 1_000, len(users)).astype(np.int32)
    values = rng.random(len(users)).astype(np.float32)
    expected = [a.copy() for a in (users, items, values)]
    for a, b in zip(ptr[:-1], ptr[1:], strict=True):
        order = np.argsort(users[a:b], kind="stable") + a
        for want, got in zip(expected, (users, items, values), strict=True):
            want[a:b] = got[order]
    _sort_each(users, items, values, ptr)
    for want, got in zip(expected, (users, items, values), strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("k", [16, 128])
def test_adaptive_block_kernel_is_its_single_steps(k):
    """The blocked AdaGrad kernel over many ratings is its one-rating step (the one the
    gradient check tests) applied rating after rating, bit for bit."""
    from recsys.kernels.cpu.sgd import _adagrad_block, adagrad_step

    users, items, values, p = tiny_problem(seed=3, n_users=30, n_items=20, n_ratings=400, k=k,
                                           dtype=np.float32)
    args = [np.float32(0.05), np.float32(0.05), np.float32(0.01)]
    runs = []
    for kernel in ("steps", "block"):
        arrays = {key: v.copy() for key, v in p.items() if key != "mu"}
        acc = [1 + np.arange(n, dtype=np.float32) / n for n in (30, 20, 30, 20)]
        common = (p["mu"], arrays["bu"], arrays["bi"], arrays["P"], arrays["Q"], *args, *acc)
        if kernel == "steps":
            sse = sum(float(adagrad_step(u, i, r, *common)) ** 2
                      for u, i, r in zip(users, items, values, strict=True))
        else:
            sse = _adagrad_block(users, items, values, 0, len(values), *common)
        runs.append((sse, *arrays.values(), *acc))
    assert runs[0][0] == pytest.approx(runs[1][0], rel=1e-6)  # Σ e² summed in another order
    for a, b in zip(runs[0][1:], runs[1][1:], strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(runs[0][3], p["P"])


def test_block_kernel_equals_plain_loop():
    users, items, values, p = tiny_problem(seed=2, n_users=30, n_items=20, n_ratings=200, k=16,
                                           dtype=np.float32)
    args = [np.float32(0.02), np.float32(0.05), np.float32(0.01)]
    a = {k: v.copy() for k, v in p.items() if k != "mu"}
    b = {k: v.copy() for k, v in p.items() if k != "mu"}
    sse_plain = sgd_epoch(users, items, values, p["mu"], a["bu"], a["bi"], a["P"], a["Q"], *args)
    sse_block = _sgd_block(users, items, values, 0, len(values), p["mu"], b["bu"], b["bi"],
                           b["P"], b["Q"], *args)
    assert sse_plain == sse_block
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
        assert not np.array_equal(a[key], p[key])


def test_blocked_epoch_visits_every_block(small_ratings):
    grid = 5
    _, _, (users, items, values, ptr) = _grouped(small_ratings, grid)
    rng = np.random.default_rng(1)
    k = 4
    P = rng.normal(0, 0.1, (small_ratings.n_users, k)).astype(np.float32)
    Q = rng.normal(0, 0.1, (small_ratings.n_items, k)).astype(np.float32)
    bu = np.zeros(small_ratings.n_users, np.float32)
    bi = np.zeros(small_ratings.n_items, np.float32)
    mu = np.float32(values.mean())
    block_sse = np.full(grid * grid, np.nan)
    zero = np.float32(0)  # lr 0: nothing moves, so block_sse is the plain Σ e² per block
    sgd_epoch_blocked(users, items, values, ptr, grid, rng.permutation(grid),
                      rng.permutation(grid), mu, bu, bi, P, Q, zero, zero, zero,
                      block_sse, numba.get_num_threads(), False, *([np.zeros(0, P.dtype)] * 4))
    assert not np.isnan(block_sse).any()
    want = sum_squared_error(users, items, values, mu, bu, bi, P, Q, np.float32(-1e9),
                             np.float32(1e9))
    assert block_sse.sum() == pytest.approx(want, rel=1e-5)


def test_model_is_bit_identical_for_any_thread_count(small_ratings):
    fits = [FunkSVD(n_factors=8, n_epochs=5, grid=4, n_jobs=jobs, seed=3).fit(small_ratings)
            for jobs in (1, 2)]
    for name in ("user_bias_", "item_bias_", "user_factors_", "item_factors_"):
        np.testing.assert_array_equal(getattr(fits[0], name), getattr(fits[1], name))
    again = FunkSVD(n_factors=8, n_epochs=5, grid=4, n_jobs=2, seed=4).fit(small_ratings)
    assert not np.array_equal(again.user_factors_, fits[0].user_factors_)


def _reference_rmse(train, valid, k, epochs, lr, reg, seed=0):
    """The plain kernel over a fresh random order each epoch, as a baseline for accuracy."""
    rng = np.random.default_rng(seed)
    P = rng.normal(0, 0.1, (train.n_users, k)).astype(np.float32)
    Q = rng.normal(0, 0.1, (train.n_items, k)).astype(np.float32)
    bu = np.zeros(train.n_users, np.float32)
    bi = np.zeros(train.n_items, np.float32)
    mu = np.float32(train.values.mean(dtype=np.float64))
    f = np.float32
    for _ in range(epochs):
        order = rng.permutation(len(train))
        sgd_epoch(train.users[order], train.items[order], train.values[order], mu, bu, bi, P, Q,
                  f(lr), f(reg), f(reg))
    lo, hi = f(train.values.min()), f(train.values.max())
    sse = sum_squared_error(valid.users, valid.items, valid.values, mu, bu, bi, P, Q, lo, hi)
    return float(np.sqrt(sse / len(valid)))


def _split(ratings, fraction, seed):
    test = np.random.default_rng(seed).random(len(ratings)) < fraction
    def part(mask):
        idx = np.flatnonzero(mask)
        return Ratings(ratings.users[idx], ratings.items[idx], ratings.values[idx],
                       ratings.user_map, ratings.item_map)
    return part(~test), part(test)


def _fast_rmse(train, valid, k, epochs, lr, reg):
    model = FunkSVD(n_factors=k, n_epochs=epochs, lr=lr, reg=reg, reg_bias=reg, init_std=0.1,
                    n_jobs=1, lr_schedule="constant").fit(train)  # the reference's settings
    return model.state_.factors.rmse(valid.users, valid.items, valid.values,
                                     *model.rating_scale_)


def test_fast_path_reaches_reference_rmse_on_generated_1m():
    n_users, n_items, n = SHAPES["ml-1m"]
    ratings, _ = generate(SynthSpec(n_users=n_users, n_items=n_items, n_ratings=n, seed=1))
    train, valid = _split(ratings, 0.02, 2)
    ref = _reference_rmse(train, valid, k=32, epochs=12, lr=0.005, reg=0.02)
    fast = _fast_rmse(train, valid, k=32, epochs=12, lr=0.005, reg=0.02)
    assert abs(fast - ref) < 0.003, (fast, ref)


@pytest.mark.movielens
def test_fast_path_reaches_reference_rmse_on_ml100k(ml100k):
    from recsys.data.readers import read_ratings

    train, valid = _split(read_ratings(ml100k / "u.data"), 0.1, 2)
    ref = _reference_rmse(train, valid, k=100, epochs=40, lr=0.01, reg=0.08)
    fast = _fast_rmse(train, valid, k=100, epochs=40, lr=0.01, reg=0.08)
    assert abs(fast - ref) < 0.003, (fast, ref)


def test_cli_import_does_not_import_numba():
    code = "import recsys.cli, sys; assert 'numba' not in sys.modules, 'numba imported'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_blocked_epoch_same_for_any_worker_count_even_on_one_thread(small_ratings):
    """More workers than threads (the workers then run one after another) neither hangs
    nor changes the result: a block only ever waits for blocks claimed before it."""
    grid = 6
    _, _, (users, items, values, ptr) = _grouped(small_ratings, grid)
    rng = np.random.default_rng(5)
    k = 4
    P0 = rng.normal(0, 0.1, (small_ratings.n_users, k)).astype(np.float32)
    Q0 = rng.normal(0, 0.1, (small_ratings.n_items, k)).astype(np.float32)
    shifts, cols = rng.permutation(grid), rng.permutation(grid)
    f = np.float32
    results = []
    previous = numba.get_num_threads()
    try:
        for threads, workers in ((1, 1), (1, 4), (min(2, numba.config.NUMBA_NUM_THREADS), 2)):
            numba.set_num_threads(threads)
            P, Q = P0.copy(), Q0.copy()
            bu = np.zeros(small_ratings.n_users, np.float32)
            bi = np.zeros(small_ratings.n_items, np.float32)
            sse = np.zeros(grid * grid)
            sgd_epoch_blocked(users, items, values, ptr, grid, shifts, cols, f(3.5), bu, bi,
                              P, Q, f(0.02), f(0.05), f(0.01), sse, workers, False,
                              *([np.zeros(0, P.dtype)] * 4))
            results.append((P, Q, bu, bi, sse))
    finally:
        numba.set_num_threads(previous)
    for other in results[1:]:
        for want, got in zip(results[0], other, strict=True):
            np.testing.assert_array_equal(want, got)
    assert not np.array_equal(results[0][0], P0)


@pytest.mark.parametrize("n", [0, 7, 255, 256, 5_001])
def test_grouping_is_a_stable_sort_by_block_however_the_input_is_chunked(n):
    rng = np.random.default_rng(n)
    users = rng.integers(0, 50, n).astype(np.int32)
    items = rng.integers(0, 40, n).astype(np.int32)
    values = rng.random(n).astype(np.float32)
    ub = np.sort(rng.integers(0, 5, 50)).astype(np.int32)
    ib = np.sort(rng.integers(0, 5, 40)).astype(np.int32)
    out_u, out_i, out_v, block_ptr = _group(users, items, values, ub, ib, 5)
    block = ub[users].astype(np.int64) * 5 + ib[items]
    order = np.argsort(block, kind="stable")  # input order kept within a block
    np.testing.assert_array_equal(out_u, users[order])
    np.testing.assert_array_equal(out_i, items[order])
    np.testing.assert_array_equal(out_v, values[order])
    np.testing.assert_array_equal(block_ptr, np.concatenate(
        [[0], np.cumsum(np.bincount(block, minlength=25))]))


@pytest.mark.parametrize("dtype, k", [(np.float32, 128), (np.float32, 20), (np.float64, 7)])
def test_prefetching_user_rows_changes_no_value(dtype, k):
    """Both block kernels, prefetching 1, 3, 16 or more ratings ahead than the block holds,
    give what they give without prefetching, bit for bit (users sorted, as in a fit)."""
    from recsys.kernels.cpu.sgd import _adagrad_block

    users, items, values, p = tiny_problem(seed=4, n_users=40, n_items=30, n_ratings=600,
                                           k=k, dtype=dtype)
    order = np.argsort(users, kind="stable")
    users, items, values = users[order], items[order], values[order]
    args = [dtype(0.02), dtype(0.05), dtype(0.01)]
    results = {}
    for ahead in (0, 1, 3, 16, 10_000):
        for adaptive in (False, True):
            a = {key: v.copy() for key, v in p.items() if key != "mu"}
            common = (users, items, values, 0, len(values), p["mu"], a["bu"], a["bi"],
                      a["P"], a["Q"], *args)
            if adaptive:
                acc = [np.ones(n, dtype) for n in (40, 30, 40, 30)]
                sse = _adagrad_block(*common, *acc, ahead)
            else:
                acc, sse = [], _sgd_block(*common, ahead)
            results[ahead, adaptive] = (sse, *a.values(), *acc)
    for (_ahead, adaptive), got in results.items():
        want = results[0, adaptive]
        assert got[0] == want[0]
        for x, y in zip(got[1:], want[1:], strict=True):
            np.testing.assert_array_equal(x, y)
    assert not np.array_equal(results[0, False][3], p["P"])


def test_the_cpu_backend_prefetches_only_factors_larger_than_the_cache(monkeypatch):
    from recsys.training.backends import cpu

    assert cpu.last_level_cache_bytes() > 0
    f = type("F", (), {"user_factors": np.zeros((1000, 128), np.float32),
                       "item_factors": np.zeros((24, 128), np.float32)})
    monkeypatch.setattr(cpu, "last_level_cache_bytes", lambda: 512 * 1024)
    assert cpu.prefetch_ahead(f) == 0  # exactly the cache: no
    monkeypatch.setattr(cpu, "last_level_cache_bytes", lambda: 512 * 1024 - 1)
    assert cpu.prefetch_ahead(f) == cpu.PREFETCH_AHEAD > 0


def test_a_fit_that_prefetches_is_the_fit_that_does_not(monkeypatch, small_ratings):
    from recsys.training.backends import cpu

    plain = FunkSVD(n_factors=16, n_epochs=5, grid=3, n_jobs=2, seed=1).fit(small_ratings)
    monkeypatch.setattr(cpu, "last_level_cache_bytes", lambda: 0)  # every fit prefetches
    fetched = FunkSVD(n_factors=16, n_epochs=5, grid=3, n_jobs=2, seed=1).fit(small_ratings)
    assert fetched.state_.digest() == plain.state_.digest()


def test_item_starts_are_the_first_item_of_each_item_block(small_ratings):
    from recsys.training.backends.cpu import item_starts
    from recsys.training.factors import GroupedRatings

    grid = 4
    ub, ib, (users, items, values, ptr) = _grouped(small_ratings, grid)
    grouped = GroupedRatings(users, items, values, ptr, grid, ub, ib)
    starts = item_starts(grouped)
    assert starts[0] == 0 and starts[-1] == small_ratings.n_items and len(starts) == grid + 1
    for c in range(grid):
        assert np.all(ib[starts[c]:starts[c + 1]] == c)
    assert item_starts(GroupedRatings(users, items, values, ptr, grid)) is None


def test_the_blocked_epoch_prefetching_rows_is_the_epoch_that_does_not(small_ratings):
    grid = 4
    _, ib, (users, items, values, ptr) = _grouped(small_ratings, grid)
    _sort_each(users, items, values, ptr)
    starts = np.concatenate([[0], np.cumsum(np.bincount(ib, minlength=grid))])
    rng = np.random.default_rng(5)
    P0 = rng.normal(0, 0.1, (small_ratings.n_users, 16)).astype(np.float32)
    Q0 = rng.normal(0, 0.1, (small_ratings.n_items, 16)).astype(np.float32)
    order = (rng.permutation(grid), rng.permutation(grid))
    runs = []
    for ahead, given in ((0, None), (16, starts.astype(np.int64)), (3, None)):
        P, Q = P0.copy(), Q0.copy()
        bu, bi = np.zeros(len(P), np.float32), np.zeros(len(Q), np.float32)
        sse = np.zeros(grid * grid)
        sgd_epoch_blocked(users, items, values, ptr, grid, *order, np.float32(3.5), bu, bi,
                          P, Q, np.float32(0.02), np.float32(0.05), np.float32(0.01), sse, 2,
                          False, *([np.zeros(0, np.float32)] * 4), ahead, given)
        runs.append((sse, bu, bi, P, Q))
    for run in runs[1:]:
        for got, want in zip(run, runs[0], strict=True):
            np.testing.assert_array_equal(got, want)
    assert not np.array_equal(runs[0][3], P0)


def test_the_block_kernels_compile_the_prefetch_to_an_instruction():
    """The prefetch changes no value, so only the code shows it is there: a non-cached
    copy of each block kernel, compiled for float32 rows, holds a prefetch instruction
    (x86 prefetch*, ARM prfm) and not a call."""
    from recsys.kernels.cpu.sgd import FASTMATH, _adagrad_block

    users, items, values, p = tiny_problem(seed=1, n_users=8, n_items=6, n_ratings=30, k=16,
                                           dtype=np.float32)
    args = (users, items, values, 0, len(values), p["mu"], p["bu"], p["bi"], p["P"], p["Q"],
            np.float32(0.01), np.float32(0.05), np.float32(0.01))
    acc = [np.ones(n, np.float32) for n in (8, 6, 8, 6)]
    for kernel, extra in ((_sgd_block, ()), (_adagrad_block, acc)):
        copy = numba.njit(fastmath=FASTMATH)(kernel.py_func)
        copy(*args, *extra, 4)
        asm = "\n".join(copy.inspect_asm().values()).lower()
        assert "prefetch" in asm or "prfm" in asm, kernel.__name__


def test_of_users_keeps_the_blocks_and_their_order(small_ratings):
    from recsys.training.factors import GroupedRatings

    ub, ib, (users, items, values, ptr) = _grouped(small_ratings, 4)
    shuffle_and_sort_blocks(users, items, values, ptr, 3, 0)
    grouped = GroupedRatings(users, items, values, ptr, 4, ub, ib, sgd_order=3)
    keep = np.random.default_rng(0).random(small_ratings.n_users) < 0.5
    keep[users[ptr[5]:ptr[6]]] = False  # a block left empty
    kept = grouped.of_users(keep)
    assert kept.grid == 4 and kept.sgd_order == 3 and kept.user_block is ub
    assert kept.block_ptr[6] == kept.block_ptr[5]
    for b in range(16):
        rows = slice(ptr[b], ptr[b + 1])
        mine = keep[users[rows]]
        got = slice(kept.block_ptr[b], kept.block_ptr[b + 1])
        np.testing.assert_array_equal(kept.users[got], users[rows][mine])
        np.testing.assert_array_equal(kept.items[got], items[rows][mine])
        np.testing.assert_array_equal(kept.values[got], values[rows][mine])
    assert len(kept) == keep[users].sum()
