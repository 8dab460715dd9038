"""FunkSVD as a user sees it: fit, predict with fallbacks, recommend, similar items."""

import numpy as np
import pandas as pd
import pytest

from recsys.data.ratings import Ratings
from recsys.data.synth import SynthSpec, generate
from recsys.errors import NotFittedError, TrainingError, UnknownIdError
from recsys.models.funksvd import FunkSVD


def _fit(ratings, **params):
    base = {"n_factors": 4, "n_epochs": 25, "lr": 0.02, "reg": 0.02, "seed": 1,
            "lr_schedule": "constant"}
    base.update(params)
    return FunkSVD(**base).fit(ratings)


def test_fit_learns_signal_better_than_biases(small_ratings):
    model = _fit(small_ratings, n_epochs=60)
    assert len(model.history_) == 60
    train = [h["train_rmse"] for h in model.history_]
    assert train[-1] < 0.7 * train[0]
    biases_only = _fit(small_ratings, n_factors=1, init_std=0.0, n_epochs=60)
    pred = model.predict(small_ratings.raw_users, small_ratings.raw_items)
    pred0 = biases_only.predict(small_ratings.raw_users, small_ratings.raw_items)
    err = np.sqrt(np.mean((pred - small_ratings.values) ** 2))
    err0 = np.sqrt(np.mean((pred0 - small_ratings.values) ** 2))
    assert err < 0.8 * err0


def test_validation_rmse_recorded_and_matches_predict(small_ratings):
    n = len(small_ratings)
    train, valid = small_ratings.subset(np.arange(n) % 5 != 0), small_ratings.subset(
        np.arange(n) % 5 == 0)
    model = FunkSVD(n_factors=4, n_epochs=5, seed=3).fit(train, validation=valid)
    last = model.history_[-1]["valid_rmse"]
    pred = model.predict(valid.raw_users, valid.raw_items)
    assert last == pytest.approx(np.sqrt(np.mean((pred - valid.values) ** 2)), rel=1e-6)


def test_accepts_dataframe_and_path(tmp_path, small_ratings):
    frame = small_ratings.to_dataframe()
    a = _fit(frame, n_epochs=3)
    path = tmp_path / "r.csv"
    frame.to_csv(path, index=False)
    b = _fit(str(path), n_epochs=3)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)


def test_predictions_clipped_to_training_scale(small_ratings):
    model = _fit(small_ratings, lr=0.05, n_epochs=40, reg=0.0, n_factors=20)
    users, items = (a.ravel() for a in np.meshgrid(small_ratings.user_map.ids,
                                                    small_ratings.item_map.ids))
    pred = model.predict(users, items)
    lo, hi = small_ratings.values.min(), small_ratings.values.max()
    assert pred.min() >= lo and pred.max() <= hi
    assert pred.min() == lo or pred.max() == hi  # clipping did happen somewhere


def test_unknown_ids_fall_back_to_biases(small_ratings):
    model = _fit(small_ratings, n_epochs=5)
    u, i = small_ratings.user_map.id_of(0), small_ratings.item_map.id_of(0)
    mu, bu, bi = model.mu_, model.user_bias_[0], model.item_bias_[0]
    got = model.predict([u, 999_999, 999_999], [999_999, i, 888_888])
    np.testing.assert_allclose(got, [mu + bu, mu + bi, mu], rtol=1e-6)
    with pytest.raises(UnknownIdError, match="999999"):
        model.predict([u, 999_999], [i, i], strict=True)


def test_string_ids_from_command_line_match_integer_ids(small_ratings):
    model = _fit(small_ratings, n_epochs=3)
    u, i = small_ratings.user_map.id_of(3), small_ratings.item_map.id_of(5)
    assert model.predict([str(u)], [str(i)])[0] == model.predict([u], [i])[0]


def test_text_ids_work_end_to_end():
    frame = pd.DataFrame({"user": ["ann", "bob", "ann", "cy"], "item": ["x", "y", "y", "x"],
                          "rating": [5.0, 3.0, 4.0, 2.0]})
    model = FunkSVD(n_factors=2, n_epochs=3).fit(frame)
    items, scores = model.recommend("bob", n=5)
    assert set(items) == {"x"}  # y is seen
    assert model.predict(["ann"], ["x"]).shape == (1,)


def test_recommend_excludes_seen_and_is_sorted(small_ratings):
    model = _fit(small_ratings, n_epochs=10)
    user = small_ratings.user_map.id_of(2)
    seen = set(small_ratings.raw_items[small_ratings.users == 2].tolist())
    items, scores = model.recommend(user, n=15)
    assert len(items) == 15 and not seen & set(items.tolist())
    assert np.all(np.diff(scores) <= 0)
    # the scores are the unclipped model scores of those items, and they are the best unseen
    all_items = small_ratings.item_map.ids
    everything = model.mu_ + model.user_bias_[2] + model.item_bias_ + \
        model.item_factors_ @ model.user_factors_[2]
    unseen = np.array([it not in seen for it in all_items])
    best = np.sort(everything[unseen])[::-1][:15]
    np.testing.assert_allclose(scores, best, rtol=1e-5)
    items_all, _ = model.recommend(user, n=15, exclude_seen=False)
    assert len(items_all) == 15


def test_recommend_many_matches_recommend(small_ratings):
    model = _fit(small_ratings, n_epochs=5)
    users = small_ratings.user_map.ids[:20]
    ids, scores = model.recommend_many(users, n=7, chunk=6)
    for row, user in enumerate(users):
        one_ids, one_scores = model.recommend(user, n=7)
        np.testing.assert_array_equal(ids[row], one_ids)
        np.testing.assert_allclose(scores[row], one_scores, rtol=1e-6)


def test_recommend_unknown_user_gets_popular_or_error(small_ratings):
    model = _fit(small_ratings, n_epochs=5)
    items, scores = model.recommend(123_456, n=5)
    best = np.argsort(-(model.item_bias_), kind="stable")[:5]
    np.testing.assert_array_equal(items, small_ratings.item_map.ids[best])
    with pytest.raises(UnknownIdError):
        model.recommend(123_456, strict=True)


def test_similar_items_ranks_by_cosine(small_ratings):
    model = _fit(small_ratings, n_epochs=10)
    item = small_ratings.item_map.id_of(0)
    items, sims = model.similar_items(item, n=5)
    Q = model.item_factors_.astype(np.float64)
    cos = Q @ Q[0] / (np.linalg.norm(Q, axis=1) * np.linalg.norm(Q[0]))
    cos[0] = -np.inf
    np.testing.assert_array_equal(items, small_ratings.item_map.ids[np.argsort(-cos)[:5]])
    assert item not in items.tolist()
    with pytest.raises(UnknownIdError):
        model.similar_items("no such item")


@pytest.mark.parametrize("bad", [{"n_factors": 0}, {"n_epochs": -1}, {"lr": float("nan")},
                                 {"reg": -1.0}, {"dtype": "float16"}, {"n_jobs": 0},
                                 {"seed": -3}])
def test_bad_parameters_are_rejected_in_fit(small_ratings, bad):
    model = FunkSVD(**bad)  # construction stores parameters verbatim
    with pytest.raises(ValueError):
        model.fit(small_ratings)


def test_divergence_is_detected_in_the_epoch_it_happens(small_ratings):
    model = FunkSVD(n_factors=8, n_epochs=30, lr=5.0, warmup_epochs=0)
    with pytest.raises(TrainingError, match="diverged in epoch 1.*smaller learning rate"):
        model.fit(small_ratings)
    # after the AdaGrad warm-up (3 epochs at its own rate), the first epoch at rate 5
    with pytest.raises(TrainingError, match="diverged in epoch 4.*smaller learning rate"):
        FunkSVD(n_factors=8, n_epochs=30, lr=5.0).fit(small_ratings)


def test_unfitted_model_says_so():
    with pytest.raises(NotFittedError, match="not fitted"):
        FunkSVD().predict([1], [1])
    assert not hasattr(FunkSVD(), "user_factors_")  # as scikit-learn's check_is_fitted expects


def test_get_set_params_round_trip():
    model = FunkSVD(n_factors=7)
    clone = FunkSVD(**model.get_params())
    assert clone.get_params() == model.get_params()
    assert model.set_params(lr=0.5).lr == 0.5
    with pytest.raises(ValueError):
        model.set_params(nonsense=1)


def test_float64_training(small_ratings):
    model = _fit(small_ratings, dtype="float64", n_epochs=3)
    assert model.user_factors_.dtype == np.float64
    assert model.predict([small_ratings.user_map.id_of(0)], [small_ratings.item_map.id_of(0)]
                         ).dtype == np.float64


def test_ratings_csr_export(small_ratings):
    csr = small_ratings.to_csr()
    assert csr.shape == (small_ratings.n_users, small_ratings.n_items)
    assert csr.nnz == len(small_ratings)
    assert csr[small_ratings.users[5], small_ratings.items[5]] == small_ratings.values[5]


def test_empty_training_data_is_an_error():
    empty = Ratings.from_raw(np.array([], dtype=np.int64), np.array([], dtype=np.int64),
                             np.array([], dtype=np.float32))
    with pytest.raises(TrainingError):
        FunkSVD().fit(empty)


def test_model_beats_global_mean_on_held_out_ratings():
    ratings, _ = generate(SynthSpec(n_users=300, n_items=200, n_ratings=12_000, rank=5,
                                    noise=0.3, seed=4))
    test = np.arange(len(ratings)) % 10 == 0
    model = FunkSVD(n_factors=5, n_epochs=30, lr=0.01, reg=0.02).fit(ratings.subset(~test))
    held = ratings.subset(test)
    pred = model.predict(held.raw_users, held.raw_items)
    rmse = np.sqrt(np.mean((pred - held.values) ** 2))
    baseline = np.sqrt(np.mean((ratings.subset(~test).values.mean() - held.values) ** 2))
    assert rmse < 0.85 * baseline


@pytest.mark.parametrize("bad, reason", [
    ({"rating": [4.0, float("nan"), 3.0]}, "is not a (finite )?number"),
    ({"rating": [4.0, 99.0, 3.0]}, "outside the scale"),
    ({"item": [1, 1, 2]}, "duplicate rating"),
])
def test_a_bad_dataframe_fails_in_fit_like_the_same_file(tmp_path, bad, reason):
    from recsys.errors import DataError

    frame = pd.DataFrame({"user": [1, 1, 2], "item": [1, 2, 2], "rating": [4.0, 5.0, 3.0]})
    frame = frame.assign(**bad)
    path = tmp_path / "r.csv"
    frame.to_csv(path, index=False)
    for data in (frame, str(path)):
        with pytest.raises(DataError, match=reason):
            FunkSVD(n_factors=2, n_epochs=1).fit(data)
    with pytest.raises(DataError, match=r"DataFrame: row 2"):
        FunkSVD(n_factors=2, n_epochs=1).fit(frame)


def test_dataframe_columns_are_found_by_name_as_in_files():
    frame = pd.DataFrame({"movieId": [10, 20, 10], "userId": [1, 1, 2],
                          "rating": [4.0, 3.0, 5.0]})
    model = FunkSVD(n_factors=2, n_epochs=2).fit(frame)
    assert sorted(model.user_map_.ids.tolist()) == [1, 2]
    assert sorted(model.item_map_.ids.tolist()) == [10, 20]
