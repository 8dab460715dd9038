"""The estimator contract: one test class that every model and backend passes.

A test module subclasses ``EstimatorContract`` and says how to make an unfitted model::

    class TestFunkSVD(EstimatorContract):
        def make(self, **params):
            return FunkSVD(n_factors=4, n_epochs=5, **params)

and pytest runs every check below on it: fit on generated data, predict (in scale,
fallbacks for unknown ids, strict), recommend and recommend_many (seen items excluded,
sorted, the two agreeing, unknown users), similar items, fold-in of a new user, the save
and load round trip, parameter cloning, DataFrame input, bad input, and determinism (the
same seed gives the same model bit for bit, whatever the thread count). A backend that
cannot promise bit-identity sets ``exact = False`` and the determinism checks use
``tolerance``. Needs pytest (the ``dev`` extra).
"""

from __future__ import annotations

import numpy as np
import pytest

from recsys.data.synth import SynthSpec, generate
from recsys.errors import NotFittedError, TrainingError, UnknownIdError
from recsys.models.registry import load

UNKNOWN = 987_654_321


class EstimatorContract:
    #: Whether the model has item factors (similar_items needs them).
    has_factors = True
    #: Whether two fits with the same seed agree bit for bit (else within ``tolerance``).
    exact = True
    tolerance = 1e-5
    #: Whether the model takes ``n_jobs`` (threads) and a ``seed``.
    threaded = True
    #: Whether predictions are ratings (clipped to the training ratings' range); a ranking
    #: model predicts preference scores in its own ``rating_scale_``.
    predicts_ratings = True

    def make(self, **params):
        """An unfitted model (subclasses override)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ fixtures

    @pytest.fixture(scope="class")
    @staticmethod
    def ratings():
        ratings, _ = generate(SynthSpec(n_users=60, n_items=40, n_ratings=1_200, rank=3,
                                        noise=0.3, seed=11))
        return ratings

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, ratings):
        return cls().make().fit(ratings)

    def _same(self, a, b):
        if self.exact:
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, rtol=self.tolerance, atol=self.tolerance)

    def _arrays(self, model):
        return (model.user_bias_, model.item_bias_, model.user_factors_, model.item_factors_)

    # ------------------------------------------------------------------ fitting

    def test_fit_returns_the_fitted_model(self, ratings):
        model = self.make()
        assert not hasattr(model, "user_factors_")
        assert model.fit(ratings) is model
        assert model.user_factors_.shape[0] == ratings.n_users
        assert model.item_factors_.shape[0] == ratings.n_items
        assert model.train_summary_["ratings"] == len(ratings)

    def test_unfitted_model_raises_not_fitted(self):
        with pytest.raises(NotFittedError):
            self.make().predict([1], [1])

    def test_empty_data_is_an_error(self, ratings):
        with pytest.raises((TrainingError, ValueError)):
            self.make().fit(ratings.subset(np.zeros(len(ratings), dtype=bool)))

    def test_a_dataframe_fits_what_the_same_file_fits(self, ratings, tmp_path):
        frame = ratings.to_dataframe()
        frame.to_csv(tmp_path / "ratings.csv", index=False)
        from_frame = self.make().fit(frame)
        from_file = self.make().fit(str(tmp_path / "ratings.csv"))
        for a, b in zip(self._arrays(from_frame), self._arrays(from_file), strict=True):
            self._same(a, b)

    def test_parameters_clone(self, fitted):
        clone = type(fitted)(**fitted.get_params())
        assert clone.get_params() == fitted.get_params()
        assert repr(clone) == repr(type(fitted)(**fitted.get_params()))

    # ------------------------------------------------------------------ prediction

    def test_predictions_are_finite_and_in_the_training_scale(self, fitted, ratings):
        pred = fitted.predict(ratings.raw_users, ratings.raw_items)
        lo, hi = fitted.rating_scale_
        if self.predicts_ratings:
            assert (lo, hi) == (ratings.values.min(), ratings.values.max())
        assert pred.shape == (len(ratings),) and np.isfinite(pred).all()
        assert pred.min() >= lo and pred.max() <= hi

    def test_unknown_ids_fall_back_to_biases_or_raise_when_strict(self, fitted, ratings):
        u, i = ratings.user_map.id_of(0), ratings.item_map.id_of(0)
        mu, bu, bi = fitted.mu_, fitted.user_bias_[0], fitted.item_bias_[0]
        lo, hi = fitted.rating_scale_
        got = fitted.predict([u, UNKNOWN, UNKNOWN], [UNKNOWN, i, UNKNOWN])
        np.testing.assert_allclose(got, np.clip([mu + bu, mu + bi, mu], lo, hi), rtol=1e-6)
        with pytest.raises(UnknownIdError, match=str(UNKNOWN)):
            fitted.predict([UNKNOWN], [i], strict=True)

    # ------------------------------------------------------------------ top-N

    def test_recommend_excludes_seen_items_best_first(self, fitted, ratings):
        user = ratings.user_map.id_of(3)
        seen = set(ratings.raw_items[ratings.users == 3].tolist())
        items, scores = fitted.recommend(user, n=10)
        assert len(items) == 10 and not seen & set(items.tolist())
        assert np.all(np.diff(scores) <= 0)
        expected = fitted.mu_ + fitted.user_bias_[3] + fitted.item_bias_ \
            + fitted.item_factors_ @ fitted.user_factors_[3]
        np.testing.assert_allclose(scores, expected[fitted.item_map_.indices(items)],
                                   rtol=1e-5)

    def test_recommend_many_agrees_with_recommend(self, fitted, ratings):
        users = ratings.user_map.ids[:12]
        ids, scores = fitted.recommend_many(users, n=5, chunk=5)
        assert ids.shape == scores.shape == (12, 5)
        for row, user in enumerate(users):
            one_ids, one_scores = fitted.recommend(user, n=5)
            np.testing.assert_array_equal(ids[row], one_ids)
            np.testing.assert_allclose(scores[row], one_scores, rtol=1e-6)

    def test_an_unknown_user_gets_popular_items_or_an_error_when_strict(self, fitted):
        items, _ = fitted.recommend(UNKNOWN, n=5)
        order = np.argsort(-fitted.state_.unknown_user_scores(), kind="stable")[:5]
        np.testing.assert_array_equal(items, fitted.item_map_.ids[order])
        with pytest.raises(UnknownIdError):
            fitted.recommend(UNKNOWN, strict=True)

    def test_similar_items(self, fitted, ratings):
        item = ratings.item_map.id_of(0)
        if not self.has_factors:
            with pytest.raises(ValueError, match="factors"):
                fitted.similar_items(item)
            return
        items, sims = fitted.similar_items(item, n=5)
        Q = fitted.item_factors_.astype(np.float64)
        cos = Q @ Q[0] / np.maximum(np.linalg.norm(Q, axis=1) * np.linalg.norm(Q[0]), 1e-300)
        cos[0] = -np.inf
        np.testing.assert_allclose(sims, np.sort(cos)[::-1][:5], rtol=1e-9)
        assert item not in items.tolist()
        with pytest.raises(UnknownIdError):
            fitted.similar_items(UNKNOWN)

    # ------------------------------------------------------------------ new users

    def test_fold_in_scores_a_new_user_like_the_model(self, fitted, ratings):
        items = ratings.item_map.ids[:6]
        values = np.array([5.0, 4.0, 1.0, 2.0, 5.0, 3.0])
        vector, bias = fitted.fold_in((items, values))
        assert vector.shape == (fitted.item_factors_.shape[1],) and np.isfinite(bias)
        got, scores = fitted.recommend_for_ratings((items, values), n=8)
        assert not set(got.tolist()) & set(items.tolist())
        expected = fitted.mu_ + fitted.item_bias_ + fitted.item_factors_ @ vector + bias
        np.testing.assert_allclose(scores, expected[fitted.item_map_.indices(got)], rtol=1e-5)
        with pytest.raises(UnknownIdError):
            fitted.fold_in(([UNKNOWN], [4.0]), strict=True)

    # ------------------------------------------------------------------ persistence

    def test_save_and_load_round_trip(self, fitted, ratings, tmp_path):
        path = tmp_path / "model.npz"
        fitted.save(path)
        for again in (load(path), type(fitted).load(path)):
            assert type(again) is type(fitted)
            assert again.get_params() == fitted.get_params()
            for a, b in zip(self._arrays(again), self._arrays(fitted), strict=True):
                np.testing.assert_array_equal(a, b)
            users, items = ratings.raw_users[:50], ratings.raw_items[:50]
            np.testing.assert_array_equal(again.predict(users, items),
                                          fitted.predict(users, items))
            np.testing.assert_array_equal(again.recommend_many(users[:5], n=4)[0],
                                          fitted.recommend_many(users[:5], n=4)[0])
            assert again.history_ == fitted.history_
            assert again.state_.lineage == fitted.state_.lineage

    # ------------------------------------------------------------------ determinism

    def test_same_seed_same_model_whatever_the_threads(self, ratings, fitted):
        if not self.threaded:
            pytest.skip("the model takes no threads")
        for n_jobs in (1, 2):
            again = self.make(n_jobs=n_jobs).fit(ratings)
            for a, b in zip(self._arrays(again), self._arrays(fitted), strict=True):
                self._same(a, b)

    def test_another_seed_another_model(self, ratings, fitted):
        if "seed" not in fitted.get_params() or not self.has_factors:
            pytest.skip("nothing random in this model")
        other = self.make(seed=fitted.seed + 1).fit(ratings)
        assert not np.array_equal(other.user_factors_, fitted.user_factors_)
