"""The scikit-learn adapter against scikit-learn itself: clone, GridSearchCV,
cross_val_score, Pipeline, tags."""

import numpy as np
import pandas as pd
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer  # noqa: E402

from recsys.data.synth import SynthSpec, generate  # noqa: E402
from recsys.models.funksvd import FunkSVD  # noqa: E402
from recsys.sklearn import FunkSVDRegressor  # noqa: E402

FAST = dict(n_factors=4, n_epochs=10, lr=0.01, init_std=0.1, reg=0.05)


@pytest.fixture(scope="module")
def Xy():
    ratings, _ = generate(SynthSpec(n_users=150, n_items=80, n_ratings=4_000, rank=3,
                                    noise=0.3, seed=6))
    X = pd.DataFrame({"userId": ratings.raw_users, "movieId": ratings.raw_items})
    return X, ratings.values.astype(np.float64)


def test_parameters_are_the_models_and_clone_keeps_them():
    est = FunkSVDRegressor(n_factors=7, reg=0.1)
    assert set(est.get_params()) == set(FunkSVD._PARAMS)
    assert est.get_params()["n_epochs"] == FunkSVD().n_epochs
    copy = clone(est)
    assert copy.get_params() == est.get_params() and copy is not est
    with pytest.raises(TypeError):
        FunkSVDRegressor(nonsense=1)


def test_fit_predict_score_match_the_model(Xy):
    X, y = Xy
    est = FunkSVDRegressor(**FAST).fit(X, y)
    model = FunkSVD(**FAST).fit(pd.DataFrame({"user": X["userId"], "item": X["movieId"],
                                              "rating": y}))
    np.testing.assert_array_equal(est.predict(X), model.predict(X["userId"], X["movieId"]))
    assert 0 < est.score(X, y) <= 1  # R² on the training pairs
    np.testing.assert_array_equal(est.predict(X.to_numpy()), est.predict(X))


def test_grid_search_and_cross_val_score_work(Xy):
    X, y = Xy
    search = GridSearchCV(FunkSVDRegressor(**FAST), {"n_factors": [2, 6], "reg": [0.02, 0.2]},
                          scoring="neg_root_mean_squared_error", cv=KFold(3, shuffle=True,
                                                                          random_state=0))
    search.fit(X, y)
    assert set(search.best_params_) == {"n_factors", "reg"}
    assert -1.0 < search.best_score_ < 0
    scores = cross_val_score(FunkSVDRegressor(**FAST), X, y, cv=3)
    assert scores.shape == (3,) and np.isfinite(scores).all()


def test_a_pipeline_feeds_it(Xy):
    X, y = Xy
    rename = FunctionTransformer(lambda f: f.rename(columns={"userId": "user",
                                                             "movieId": "item"}))
    pipe = make_pipeline(rename, FunkSVDRegressor(**FAST)).fit(X, y)
    assert pipe.predict(X).shape == (len(X),)


def test_unfitted_predict_raises_not_fitted(Xy):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        FunkSVDRegressor().predict(Xy[0])
