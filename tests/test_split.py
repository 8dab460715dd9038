"""Splits: disjoint, covering, seeded; per-user splits keep every user in training."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.data.ratings import Ratings
from recsys.data.split import (
    fold_ids,
    holdout,
    keep_known,
    kfold,
    ml100k_folds,
    per_user,
    temporal,
)
from recsys.errors import RecsysError


def _ratings(n_users, n_items, n, seed, ties=False):
    rng = np.random.default_rng(seed)
    keys = rng.choice(n_users * n_items, n, replace=False)
    stamps = rng.integers(0, 5 if ties else 10**6, n)
    return Ratings.from_raw(keys // n_items + 1, keys % n_items + 1,
                            rng.integers(1, 6, n).astype(np.float32), stamps)


def _rows(part: Ratings) -> set:
    return set(zip(part.raw_users.tolist(), part.raw_items.tolist(), strict=True))


@st.composite
def ratings_st(draw):
    n_users = draw(st.integers(1, 12))
    n_items = draw(st.integers(2, 12))
    n = draw(st.integers(2, n_users * n_items))
    return _ratings(n_users, n_items, n, draw(st.integers(0, 10**6)), draw(st.booleans()))


@settings(max_examples=60, deadline=None)
@given(ratings_st(), st.integers(2, 6), st.integers(0, 100))
def test_kfold_disjoint_and_covering(r, k, seed):
    k = min(k, len(r))
    folds = kfold(r, k=k, seed=seed)
    tests = [_rows(test) for _, test in folds]
    assert sum(len(t) for t in tests) == len(r)
    assert set().union(*tests) == _rows(r)
    for (train, test), t in zip(folds, tests, strict=True):
        assert _rows(train).isdisjoint(t)
        assert len(train) + len(test) == len(r)
    sizes = [len(t) for t in tests]
    assert max(sizes) - min(sizes) <= 1


@settings(max_examples=60, deadline=None)
@given(ratings_st(), st.floats(0.05, 0.95), st.integers(0, 100))
def test_holdout_disjoint_and_covering(r, fraction, seed):
    train, test = holdout(r, fraction, seed)
    assert _rows(train).isdisjoint(_rows(test))
    assert _rows(train) | _rows(test) == _rows(r)
    assert len(test) == max(1, round(len(r) * fraction))  # never an empty test set


@settings(max_examples=60, deadline=None)
@given(ratings_st(), st.floats(0.05, 0.95), st.integers(0, 100))
def test_per_user_fraction_keeps_every_user_in_training(r, fraction, seed):
    train, test = per_user(r, fraction=fraction, seed=seed)
    assert set(train.raw_users.tolist()) == set(r.raw_users.tolist())
    assert _rows(train).isdisjoint(_rows(test)) and len(train) + len(test) == len(r)
    counts = np.bincount(r.users, minlength=r.n_users)
    got = np.bincount(test.users, minlength=r.n_users)
    expected = np.minimum(np.floor(counts * fraction + 0.5), np.maximum(counts - 1, 0))
    assert got.tolist() == expected.astype(int).tolist()


@settings(max_examples=60, deadline=None)
@given(ratings_st(), st.integers(1, 4))
def test_per_user_last_n_takes_the_latest(r, last_n):
    train, test = per_user(r, last_n=last_n)
    assert set(train.raw_users.tolist()) == set(r.raw_users.tolist())
    for u in range(r.n_users):
        tr = train.timestamps[train.users == u]
        te = test.timestamps[test.users == u]
        total = int((r.users == u).sum())
        assert len(te) == min(last_n, max(total - 1, 0))
        if len(te) and len(tr):
            assert tr.max() <= te.min()


@settings(max_examples=60, deadline=None)
@given(ratings_st(), st.floats(0.05, 0.95))
def test_temporal_fraction_is_a_cut_in_time(r, fraction):
    train, test = temporal(r, fraction=fraction)
    assert len(test) == round(len(r) * fraction)
    assert _rows(train) | _rows(test) == _rows(r)
    if len(train) and len(test):
        assert train.timestamps.max() <= test.timestamps.min()


def test_temporal_at_time(small_ratings):
    cut = int(np.median(small_ratings.timestamps))
    train, test = temporal(small_ratings, at=cut)
    assert (train.timestamps < cut).all() and (test.timestamps >= cut).all()
    assert len(train) + len(test) == len(small_ratings)


def test_splits_are_seeded(small_ratings):
    a = holdout(small_ratings, 0.2, seed=5)[1]
    b = holdout(small_ratings, 0.2, seed=5)[1]
    c = holdout(small_ratings, 0.2, seed=6)[1]
    assert _rows(a) == _rows(b) and _rows(a) != _rows(c)
    assert fold_ids(100, 5, 1).tolist() == fold_ids(100, 5, 1).tolist()


def test_bad_arguments(small_ratings):
    with pytest.raises(RecsysError, match="between 0 and 1"):
        holdout(small_ratings, 1.5)
    with pytest.raises(RecsysError, match="2 <= k"):
        kfold(small_ratings, k=1)
    no_time = Ratings.from_raw([1, 2], [1, 1], [3, 4])
    with pytest.raises(RecsysError, match="needs timestamps"):
        temporal(no_time, fraction=0.5)
    with pytest.raises(RecsysError, match="needs timestamps"):
        per_user(no_time, last_n=1)


def test_keep_known_drops_unseen_users_and_items():
    r = Ratings.from_raw([1, 1, 2, 3, 3, 4], [10, 11, 10, 12, 10, 13],
                         [1, 2, 3, 4, 5, 1])
    train, test = r.subset(np.array([0, 1, 2])), r.subset(np.array([3, 4, 5]))
    kept, dropped = keep_known(train, test)
    # user 3 and 4 never occur in training; item 12 and 13 neither
    assert len(kept) == 0
    assert (dropped.ratings, dropped.users, dropped.items) == (3, 2, 2)
    train2, test2 = r.subset(np.array([0, 1, 2, 3])), r.subset(np.array([4, 5]))
    kept, dropped = keep_known(train2, test2)
    assert _rows(kept) == {(3, 10)}
    assert (dropped.ratings, dropped.users, dropped.items) == (1, 1, 1)
    assert "dropped 1 test ratings of 1 users and 1 items" in str(dropped)


def test_ml100k_official_folds(ml100k):
    folds = ml100k_folds(ml100k)
    assert sorted(folds) == ["u1", "u2", "u3", "u4", "u5", "ua", "ub"]
    tests = [_rows(folds[f"u{i}"][1]) for i in range(1, 6)]
    assert [len(t) for t in tests] == [20_000] * 5
    assert len(set().union(*tests)) == 100_000  # disjoint, covering u.data
    for name in ("ua", "ub"):
        train, test = folds[name]
        assert len(test) == 9_430 and len(train) == 90_570
        assert np.bincount(test.users).tolist() == [10] * 943


def test_split_off_holds_out_exactly_its_share_uniformly():
    """The held-out share of a fit is exact, the same for a seed and stream, another for
    another stream, and every row is equally likely to be in it."""
    from recsys.data.split import split_off
    from recsys.kernels.cpu.rng import stream_seed
    from recsys.kernels.cpu.sample import held_out_mask

    ratings = Ratings.from_raw(np.arange(1000) % 37, np.arange(1000) % 23,
                               np.ones(1000, dtype=np.float32))
    rest, held = split_off(ratings, 0.1, 3, stream=2)
    assert len(held) == 100 and len(rest) == 900
    again, _ = split_off(ratings, 0.1, 3, stream=2)
    np.testing.assert_array_equal(rest.users, again.users)
    other, _ = split_off(ratings, 0.1, 3, stream=1)
    assert not np.array_equal(rest.users, other.users)
    assert rest.n_users == held.n_users == ratings.n_users  # the maps are kept
    # each of 20 rows is held out in 5/20 of the draws: 4,000 draws, so within 0.04 (5 σ)
    counts = sum(held_out_mask(5, np.uint64(stream_seed(s, 2, 0)),
                               np.empty(20, dtype=bool)).astype(int) for s in range(4000))
    # every row of the mask is written, whatever it held
    assert held_out_mask(5, np.uint64(9), np.ones(20, dtype=bool)).sum() == 5
    np.testing.assert_allclose(counts / 4000, 0.25, atol=0.04)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 300), share=st.floats(0, 1), seed=st.integers(0, 2**16),
       stamps=st.booleans())
def test_a_mask_splits_ratings_as_two_selections_would(n, share, seed, stamps):
    """``Ratings.split`` (one pass a column) gives ``subset(~mask), subset(mask)``: the
    same rows in the same order, timestamps included, the maps kept."""
    ratings = _ratings(30, 20, n, seed)
    if not stamps:
        ratings.timestamps = None
    mask = np.random.default_rng(seed).random(n) < share
    rest, held = ratings.split(mask)
    for got, want in ((rest, ratings.subset(~mask)), (held, ratings.subset(mask))):
        for name in ("users", "items", "values", "timestamps"):
            a, b = getattr(got, name), getattr(want, name)
            assert (a is None) == (b is None)
            if a is not None:
                assert a.dtype == b.dtype
                np.testing.assert_array_equal(a, b)
        assert got.user_map is ratings.user_map and got.item_map is ratings.item_map


def test_a_mask_of_the_wrong_length_is_refused():
    ratings = _ratings(5, 5, 10, 0)
    with pytest.raises(ValueError, match=r"shape \(9,\), not \(10,\)"):
        ratings.split(np.zeros(9, dtype=bool))
