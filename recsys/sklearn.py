"""scikit-learn estimators over recsys models: ``fit(X, y)``, ``predict(X)``, ``score``.

X holds (user, item) pairs: a DataFrame (columns found by name as for ratings files:
user/userId/user_id..., item/movieId/item_id...; else its first two columns) or a 2-column
array; y the ratings. So ``GridSearchCV``, ``cross_val_score``, ``clone`` and ``Pipeline``
work as with any regressor::

    from sklearn.model_selection import GridSearchCV
    from recsys.sklearn import FunkSVDRegressor
    search = GridSearchCV(FunkSVDRegressor(), {"n_factors": [50, 100], "reg": [0.05, 0.1]},
                          scoring="neg_root_mean_squared_error", cv=3).fit(X, y)

The parameters are those of the wrapped model (``recsys.models.params``); ``model_`` is
the fitted recsys model (recommend, similar items, save ...). Unknown users and items in
``predict`` fall back to the biases, as in recsys. Needs scikit-learn (``pip install
scikit-learn``).
"""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from recsys.data.readers import read_ratings
from recsys.data.readers.frames import find_columns
from recsys.models.funksvd import FunkSVD
from recsys.models.hybrid import HybridMF
from recsys.models.svdpp import SVDpp


def _pairs(X) -> tuple[np.ndarray, np.ndarray]:
    """(users, items) of X: a DataFrame (columns by name, else the first two) or an array."""
    if isinstance(X, pd.DataFrame):
        roles = find_columns(X, "X", need_rating=False)
        return X.iloc[:, roles["user"]].to_numpy(), X.iloc[:, roles["item"]].to_numpy()
    array = np.asarray(X)
    if array.ndim != 2 or array.shape[1] < 2:
        raise ValueError(f"X must have a user and an item column, not shape {array.shape}")
    return array[:, 0], array[:, 1]


class _Regressor(RegressorMixin, BaseEstimator):
    _MODEL = FunkSVD

    def __init__(self, **params):
        for name, value in params.items():
            setattr(self, name, value)

    def fit(self, X, y, **fit_params):
        """Fit the model to the ratings y of the (user, item) pairs X; the frame goes
        through recsys's validated input path (scale, duplicates, id checks)."""
        users, items = _pairs(X)
        frame = pd.DataFrame({"user": users, "item": items,
                              "rating": np.asarray(y, dtype=np.float64)})
        ratings = read_ratings(frame, scale=None, duplicates="mean")
        self.model_ = self._MODEL(**self.get_params()).fit(ratings, **fit_params)
        self.n_features_in_ = 2
        return self

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self, "model_")
        users, items = _pairs(X)
        return self.model_.predict(users, items).astype(np.float64)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        tags.target_tags.required = True
        return tags


def _regressor(model, doc: str):
    """A scikit-learn regressor class whose parameters are ``model``'s, with its defaults
    (in the signature scikit-learn reads)."""
    params = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=value)
              for name, value in inspect.signature(model.__init__).parameters.items()
              if name != "self" and value.default is not inspect.Parameter.empty
              for value in [value.default]]

    def __init__(self, **kwargs):
        for parameter in params:
            setattr(self, parameter.name, kwargs.pop(parameter.name, parameter.default))
        if kwargs:
            raise TypeError(f"unknown parameter {next(iter(kwargs))!r}")

    __init__.__signature__ = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD), *params])
    return type(f"{model.__name__}Regressor", (_Regressor,),
                {"__init__": __init__, "_MODEL": model, "__doc__": doc,
                 "__module__": __name__})


FunkSVDRegressor = _regressor(FunkSVD, "recsys.FunkSVD as a scikit-learn regressor.")
SVDppRegressor = _regressor(SVDpp, "recsys.SVDpp as a scikit-learn regressor.")
HybridMFRegressor = _regressor(HybridMF, "recsys.HybridMF as a scikit-learn regressor.")
