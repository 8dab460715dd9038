"""The training wing on its own: the stratum schedule, a picklable TrainConfig, and the loop
run without any estimator giving exactly the estimator's model."""

import pickle

import numpy as np
import pytest

from recsys.errors import TrainingError
from recsys.models.funksvd import FunkSVD
from recsys.models.svdpp import SVDpp
from recsys.training import trainers
from recsys.training.config import TrainConfig
from recsys.training.loop import EpochInfo, IndexedRatings, train
from recsys.training.strata import BlockGrid, choose_grid, draw_order, strata


@pytest.mark.parametrize("grid", [1, 2, 5, 8])
def test_each_stratum_shares_no_rows_and_an_epoch_meets_every_block_once(grid):
    shifts, cols = draw_order(np.random.default_rng(grid), grid)
    epoch = strata(shifts, cols)
    assert len(epoch) == grid
    for stratum in epoch:
        assert sorted(a for a, _ in stratum) == list(range(grid))
        assert sorted(c for _, c in stratum) == list(range(grid))
    blocks = [block for stratum in epoch for block in stratum]
    assert sorted(blocks) == [(a, c) for a in range(grid) for c in range(grid)]


def test_the_order_follows_the_generator_only():
    a = draw_order(np.random.default_rng(5), 16)
    b = draw_order(np.random.default_rng(5), 16)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], draw_order(np.random.default_rng(6), 16)[0])


def test_grid_depends_on_sizes_only():
    assert choose_grid(100, 80, 2_000, 512) == 1  # too few ratings for blocks
    assert choose_grid(6_040, 3_706, 1_000_000, 512) == 22
    assert choose_grid(480_189, 17_770, 100_480_507, 512) == 32
    assert choose_grid(480_189, 17_770, 100_480_507, 8192) == 63  # rows of a block fit 1 MiB
    assert choose_grid(6_040, 3_706, 1_000_000, 512, grid=7) == 7


def test_grouping_puts_each_rating_in_its_block(small_ratings):
    r = small_ratings
    grid = BlockGrid.build(r.users, r.items, r.n_users, r.n_items, 4)
    users, items, values, ptr = grid.group(r.users, r.items, r.values)
    assert len(ptr) == 17 and ptr[-1] == len(r)
    for b in range(16):
        rows = slice(ptr[b], ptr[b + 1])
        assert (grid.user_block[users[rows]] == b // 4).all()
        assert (grid.item_block[items[rows]] == b % 4).all()
    assert sorted(zip(users.tolist(), items.tolist())) == sorted(zip(r.users.tolist(),
                                                                     r.items.tolist()))


def test_config_is_frozen_and_picklable():
    config = TrainConfig(n_factors=3, reg=0.1, seed=4)
    assert pickle.loads(pickle.dumps(config)) == config
    with pytest.raises(AttributeError):
        config.n_factors = 5
    with pytest.raises(ValueError, match="dtype"):
        TrainConfig(dtype="float16")


def _indexed(r):
    return IndexedRatings(r.users, r.items, r.values, r.n_users, r.n_items)


@pytest.mark.parametrize("model", [
    FunkSVD(n_factors=4, n_epochs=5, reg=0.05, seed=2),
    FunkSVD(n_factors=3, n_epochs=4, reg=0.05, method="funk", lr=0.01),
    FunkSVD(n_factors=3, n_epochs=4, reg=0.05, method="gd", lr=0.002, lr_schedule="bold"),
    SVDpp(n_factors=3, n_epochs=3, reg=0.05, reg_implicit=0.01),
], ids=["sgd", "funk", "gd", "svdpp"])
def test_the_loop_alone_gives_the_estimators_model(small_ratings, model):
    model.fit(small_ratings)
    config = pickle.loads(pickle.dumps(model._train_config(model.reg_)))  # as sent to a worker
    seen = []
    result = train(config, _indexed(small_ratings), on_epoch=seen.append)
    for got, want in zip(result.factors.arrays(), (model.user_bias_, model.item_bias_,
                                                   model.user_factors_, model.item_factors_),
                         strict=True):
        np.testing.assert_array_equal(got, want)
    assert all(isinstance(info, EpochInfo) for info in seen)
    assert [i.as_dict()["train_rmse"] for i in seen] == \
        [h["train_rmse"] for h in model.history_]


def test_trainers_are_found_by_name():
    assert set(trainers.TRAINERS) == {"sgd", "funk", "gd", "svdpp", "ials"}
    with pytest.raises(ValueError, match="unknown training method 'als'"):
        train(TrainConfig(method="als"), IndexedRatings(np.zeros(1, np.int32),
                                                        np.zeros(1, np.int32),
                                                        np.ones(1, np.float32), 1, 1))


def test_an_empty_set_of_ratings_is_refused():
    empty = IndexedRatings(np.zeros(0, np.int32), np.zeros(0, np.int32),
                           np.zeros(0, np.float32), 0, 0)
    with pytest.raises(TrainingError, match="no ratings"):
        train(TrainConfig(), empty)


def test_fits_sharing_their_start_are_the_fits_they_would_have_been(small_ratings,
                                                                    monkeypatch):
    import recsys.training.loop as loop

    r = small_ratings
    ratings = IndexedRatings(r.users, r.items, r.values, r.n_users, r.n_items)
    configs = [TrainConfig(n_factors=4, n_epochs=4, reg=reg, lr=lr, grid=3, seed=2,
                           n_jobs=1) for reg, lr in ((0.05, 0.03), (0.02, 0.05), (0.1, 0.03))]
    alone = [train(c, ratings).factors for c in configs]
    groupings = []
    grouped = loop._grouped
    monkeypatch.setattr(loop, "_grouped", lambda *a: groupings.append(1) or grouped(*a))
    shared = loop.Shared()
    together = [train(c, ratings, shared=shared).factors for c in configs]
    assert len(groupings) == 1  # grouped, ordered and drawn once
    for a, b in zip(alone, together, strict=True):
        for x, y in zip(a.arrays(), b.arrays(), strict=True):
            np.testing.assert_array_equal(x, y)
    # another seed is another start: grouped and drawn again, not reused
    train(TrainConfig(n_factors=4, n_epochs=1, grid=3, seed=3, n_jobs=1), ratings,
          shared=shared)
    assert len(groupings) == 2
