"""The top-N kernels against a brute-force sort: seen items excluded, ties to the lower
column, NaN skipped, biases added as (score + item bias) + user bias."""

import numpy as np
import pytest

from recsys.kernels.cpu.predict import top_n_rows, top_n_rows_biased


def _problem(seed, n_rows=40, n_cols=60):
    rng = np.random.default_rng(seed)
    scores = (rng.integers(0, 12, (n_rows, n_cols)) / 4).astype(np.float32)  # many ties
    scores[rng.random(scores.shape) < 0.05] = np.nan
    seen = [np.sort(rng.choice(n_cols, rng.integers(0, n_cols), replace=False))
            for _ in range(n_rows)]
    ptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum([len(s) for s in seen], out=ptr[1:])
    idx = np.concatenate(seen).astype(np.int32)
    rows = np.arange(n_rows, dtype=np.int64)
    rows[::7] = -1  # rows without a user: nothing excluded
    return scores, rows, ptr, idx, seen


def _brute(scores, rows, seen, n, exclude):
    out_i = np.full((len(scores), n), -1, dtype=np.int64)
    out_s = np.full((len(scores), n), -np.inf, dtype=scores.dtype)
    for r, row in enumerate(scores):
        banned = set(seen[rows[r]].tolist()) if exclude and rows[r] >= 0 else set()
        cands = [(-row[c], c) for c in range(len(row)) if row[c] == row[c] and c not in banned]
        for j, (neg, c) in enumerate(sorted(cands)[:n]):
            out_i[r, j], out_s[r, j] = c, -neg
    return out_i, out_s


@pytest.mark.parametrize("exclude", [True, False])
@pytest.mark.parametrize("n", [1, 5, 60])
def test_top_n_rows_matches_brute_force(exclude, n):
    scores, rows, ptr, idx, seen = _problem(seed=n)
    out_i = np.zeros((len(scores), n), dtype=np.int64)
    out_s = np.zeros((len(scores), n), dtype=np.float32)
    top_n_rows(scores, n, rows, ptr, idx, exclude, out_i, out_s)
    want_i, want_s = _brute(scores, rows, seen, n, exclude)
    np.testing.assert_array_equal(out_i, want_i)
    np.testing.assert_array_equal(out_s, want_s)


def test_biased_kernel_equals_kernel_on_biased_scores():
    scores, rows, ptr, idx, _ = _problem(seed=9)
    rng = np.random.default_rng(1)
    col_bias = (rng.integers(-4, 4, scores.shape[1]) / 8).astype(np.float32)
    row_bias = (rng.integers(-4, 4, scores.shape[0]) / 8).astype(np.float32)
    n = 7
    got = np.zeros((len(scores), n), dtype=np.int64), np.zeros((len(scores), n), np.float32)
    want = np.zeros((len(scores), n), dtype=np.int64), np.zeros((len(scores), n), np.float32)
    top_n_rows_biased(scores, row_bias, col_bias, n, rows, ptr, idx, True, *got)
    top_n_rows((scores + col_bias) + row_bias[:, None], n, rows, ptr, idx, True, *want)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert (got[0] >= 0).any()


def test_recommend_many_same_with_and_without_unknown_users(small_ratings):
    from recsys import FunkSVD

    model = FunkSVD(n_factors=6, n_epochs=3, grid=2, n_jobs=1).fit(small_ratings)
    known = model.user_map_.ids[:20]
    fast_ids, fast_scores = model.recommend_many(known, n=5)  # all known: fused kernel
    mixed_ids, mixed_scores = model.recommend_many(np.r_[known, -12345], n=5)
    np.testing.assert_array_equal(fast_ids, mixed_ids[:20])
    np.testing.assert_array_equal(fast_scores, mixed_scores[:20])
    assert np.isfinite(mixed_scores[20]).all()


def test_seen_csr_matches_lexsort():
    from recsys.kernels.cpu.predict import seen_csr

    rng = np.random.default_rng(4)
    n_users = 50
    users = rng.integers(0, n_users - 3, 2_000).astype(np.int32)  # the last users have none
    items = rng.integers(0, 300, 2_000).astype(np.int32)
    indptr, indices = seen_csr(users, items, n_users)
    order = np.lexsort((items, users))
    np.testing.assert_array_equal(indices, items[order])
    np.testing.assert_array_equal(np.diff(indptr), np.bincount(users, minlength=n_users))
    assert indptr.dtype == np.int64 and indices.dtype == np.int32
