"""evaluate, folds and cross-validation; the baselines against hand-computed fits."""

import numpy as np
import pytest

from recsys.data.ratings import Ratings
from recsys.data.split import holdout, kfold
from recsys.evaluation.evaluate import cross_validate, evaluate, relevant_items
from recsys.models.baselines import Biases, GlobalMean
from recsys.models.funksvd import FunkSVD

TOY = Ratings.from_raw(users=[1, 1, 1, 2, 2, 3], items=[10, 20, 30, 10, 40, 20],
                       values=[5, 3, 4, 1, 2, 4])


def test_global_mean_predicts_the_mean():
    model = GlobalMean().fit(TOY)
    np.testing.assert_allclose(model.predict([1, 99], [10, 77]), [19 / 6, 19 / 6])


def test_damped_biases_by_hand():
    mu = 19 / 6
    model = Biases(method="damped", item_damping=1.0, user_damping=2.0).fit(TOY)
    # item 10: ratings 5 and 1 -> (5 - mu + 1 - mu) / (1 + 2)
    b10 = (5 - mu + 1 - mu) / 3
    b20 = (3 - mu + 4 - mu) / 3
    b30 = (4 - mu) / 2
    assert model.item_bias_[model.item_map_.index_of(10)] == pytest.approx(b10)
    # user 1 rated 10, 20, 30: residuals after the item biases, over (2 + 3)
    b1 = ((5 - mu - b10) + (3 - mu - b20) + (4 - mu - b30)) / 5
    assert model.user_bias_[model.user_map_.index_of(1)] == pytest.approx(b1)
    assert model.predict([1], [10])[0] == pytest.approx(mu + b1 + b10)
    # unknown ids fall back to zero bias
    assert model.predict([99], [10])[0] == pytest.approx(mu + b10)


def test_sgd_biases_minimize_the_regularized_least_squares(small_ratings):
    model = Biases(method="sgd", lr=0.01, reg_bias=0.05, n_epochs=60).fit(small_ratings)
    r = small_ratings
    e = r.values - (model.mu_ + model.user_bias_[r.users] + model.item_bias_[r.items])
    # the gradient of J = Σ e² + γ(b_u² + b_i²) (per rating) nearly vanishes at the fit
    g_u = np.bincount(r.users, -2 * e + 2 * 0.05 * model.user_bias_[r.users], r.n_users)
    g_i = np.bincount(r.items, -2 * e + 2 * 0.05 * model.item_bias_[r.items], r.n_items)
    start = np.bincount(r.users, -2 * (r.values - model.mu_), r.n_users)
    assert np.abs(g_u).max() < 0.1 * np.abs(start).max()
    assert np.abs(g_i).max() < 0.1 * np.abs(start).max()
    rmses = [h["train_rmse"] for h in model.history_]
    assert rmses[-1] < rmses[0]


def test_kfold_partitions_the_ratings(small_ratings):
    seen = []
    for train, test in kfold(small_ratings, k=4, seed=1, compact_train=True):
        assert len(train) + len(test) == len(small_ratings)
        keys = set(zip(test.raw_users.tolist(), test.raw_items.tolist(), strict=True))
        train_keys = set(zip(train.raw_users.tolist(), train.raw_items.tolist(), strict=True))
        assert not keys & train_keys
        seen.extend(keys)
        assert len(train.user_map) == len(np.unique(train.users))  # compacted
    assert len(seen) == len(set(seen)) == len(small_ratings)


def test_holdout_fraction(small_ratings):
    train, test = holdout(small_ratings, 0.1, seed=0, compact_train=True)
    assert len(test) == 200 and len(train) == 1800


def test_evaluate_matches_direct_computation(small_ratings):
    train, test = holdout(small_ratings, 0.2, seed=2, compact_train=True)
    model = FunkSVD(n_factors=4, n_epochs=5, n_jobs=1).fit(train)
    out = evaluate(model, test, ranking_k=5)
    pred = model.predict(test.raw_users, test.raw_items).astype(np.float64)
    assert out["rmse"] == pytest.approx(np.sqrt(np.mean((pred - test.values) ** 2)))
    assert out["ratings"] == len(test)
    relevant = relevant_items(test)
    assert out["ranked_users"] == sum(1 for u in relevant if u in model.user_map_)
    for name in ("precision@5", "recall@5", "ndcg@5", "map@5", "hit_rate@5", "coverage@5"):
        assert 0.0 <= out[name] <= 1.0


def test_ranking_of_a_perfect_oracle_by_hand():
    # a baseline whose item biases put the held-out liked item first for every user
    train = Ratings.from_raw([1, 1, 2, 2], [10, 20, 10, 30], [5, 1, 5, 1])
    test = Ratings.from_raw([1, 2], [40, 40], [5, 5])
    model = Biases(item_damping=0.0, user_damping=0.0).fit(train)
    model.state_.item_map = type(model.item_map_)(np.array([10, 20, 30, 40]))
    model.state_.factors.item_bias = np.array([0.0, -1.0, -1.0, 2.0])
    model.state_.factors.item_factors = np.zeros((4, 0))
    out = evaluate(model, test, ranking_k=1)
    assert out["precision@1"] == 1.0 and out["ndcg@1"] == 1.0 and out["hit_rate@1"] == 1.0
    assert out["coverage@1"] == pytest.approx(1 / 4)


def test_cross_validate_reports_mean_std_and_times(small_ratings):
    result = cross_validate(Biases(), small_ratings, folds=3, seed=0)
    assert len(result["folds"]) == 3
    rmses = [f["rmse"] for f in result["folds"]]
    assert result["mean"]["rmse"] == pytest.approx(np.mean(rmses))
    assert result["std"]["rmse"] == pytest.approx(np.std(rmses))
    assert result["mean"]["fit_time"] >= 0 and "predict_time" in result["mean"]


def test_cross_validate_beats_the_mean_with_biases(small_ratings):
    mean = cross_validate(GlobalMean, small_ratings, folds=3)["mean"]["rmse"]
    biases = cross_validate(lambda: Biases(), small_ratings, folds=3)["mean"]["rmse"]
    assert biases < mean


def test_tune_grid_and_sample():
    from recsys.evaluation.tune import grid, sample

    space = {"n_factors": [1, 2, 3], "lr": [0.1, 0.2]}
    points = grid(space)
    assert len(points) == 6 and {"n_factors": 3, "lr": 0.2} in points
    drawn = sample(space, 4, seed=1)
    assert len(drawn) == 4 and all(p in points for p in drawn)
    assert len({tuple(p.items()) for p in drawn}) == 4
    assert drawn == sample(space, 4, seed=1)
    assert sample(space, 10) == points


def test_search_ranks_by_mean_rmse(small_ratings):
    from recsys.evaluation.tune import search

    rows = search(small_ratings, {"n_factors": [2], "n_epochs": [0, 10], "lr": [0.01]},
                  folds=2, base={"n_jobs": 1})
    assert [r["params"]["n_epochs"] for r in rows] == [10, 0]  # training beats no training
    assert rows[0]["rmse"] <= rows[1]["rmse"]


def test_config_round_trip_and_errors(tmp_path):
    from recsys.errors import DataError
    from recsys.evaluation.tune import load_config, save_config

    path = tmp_path / "c.json"
    save_config(path, {"n_factors": 7, "lr": 0.02}, {"rmse": 0.9})
    assert load_config(path) == {"n_factors": 7, "lr": 0.02}
    path.write_text("{not json")
    with pytest.raises(DataError, match="c.json:1"):
        load_config(path)
    path.write_text('{"params": {"speed": 3}}')
    with pytest.raises(DataError, match="speed"):
        load_config(path)


def test_cross_validate_accepts_funksvd_parameters(small_ratings):
    params = {"n_factors": 2, "n_epochs": 3, "n_jobs": 1}
    by_dict = cross_validate(params, small_ratings, folds=2, seed=4)
    by_model = cross_validate(FunkSVD(**params), small_ratings, folds=2, seed=4)
    assert by_dict["mean"]["rmse"] == by_model["mean"]["rmse"]  # same seed, same folds
    with pytest.raises(ValueError):
        cross_validate({"n_factors": 0}, small_ratings, folds=2)


def test_optuna_engine_ranks_its_trials_and_prunes_through_the_fit_callback(small_ratings):
    pytest.importorskip("optuna")
    from recsys.evaluation.tune import optuna_search

    space = {"n_factors": [2, 4], "lr": [0.001, 0.02], "n_epochs": [20], "reg": [0.05]}
    seen = []
    rows = optuna_search(small_ratings, space, n_trials=6, seed=1, callback=seen.append)
    assert rows == sorted(rows, key=lambda r: r["rmse"]) and rows == sorted(seen, key=lambda
                                                                              r: r["rmse"])
    assert all(r["params"]["n_factors"] in (2, 4) for r in rows)
    again = optuna_search(small_ratings, space, n_trials=6, seed=1)
    assert [r["rmse"] for r in again] == [r["rmse"] for r in rows]  # seeded
