"""Scoring a fitted model on held-out ratings, and k-fold cross-validation.

``evaluate`` gives RMSE and MAE (and, with ``ranking_k``, the top-k ranking metrics of
``recsys.evaluation.metrics``: each test user's held-out items rated >= ``threshold`` are
the relevant ones, and the model ranks every item the user did not rate in training).
``cross_validate`` fits a fresh estimator on each fold of ``recsys.data.split.kfold``
(training side compacted) and reports the mean and standard deviation of every metric,
with fit and predict times.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from recsys.data.ratings import Ratings
from recsys.data.split import kfold
from recsys.evaluation.metrics import mae, ranking_scores, rmse

#: Held-out ratings at or above this count as relevant for the ranking metrics.
RELEVANT = 4.0


def evaluate(model, test: Ratings, ranking_k: int | None = None,
             threshold: float = RELEVANT) -> dict:
    """Metrics of a fitted ``model`` (FunkSVD or a baseline) on the ratings in ``test``."""
    users, items = test.raw_users, test.raw_items
    start = time.perf_counter()
    preds = model.predict(users, items)
    out = {
        "rmse": rmse(test.values, preds),
        "mae": mae(test.values, preds),
        "ratings": len(test),
        "unknown_users": int((model.user_map_.indices(users) < 0).sum()),
        "unknown_items": int((model.item_map_.indices(items) < 0).sum()),
    }
    if ranking_k is not None:
        out.update(ranking(model, test, ranking_k, threshold))
    out["predict_time"] = time.perf_counter() - start
    return out


def relevant_items(test: Ratings, threshold: float = RELEVANT) -> dict:
    """{raw user id: set of raw item ids rated >= threshold} for the users in ``test``."""
    keep = test.values >= threshold
    out: dict = {}
    pairs = zip(test.raw_users[keep].tolist(), test.raw_items[keep].tolist(), strict=True)
    for user, item in pairs:
        out.setdefault(user, set()).add(item)
    return out


def ranking(model, test: Ratings, k: int, threshold: float = RELEVANT) -> dict:
    """Top-k metrics over the test users the model knows that have a relevant item."""
    relevant = relevant_items(test, threshold)
    users = [u for u in relevant if model.user_map_.index_of(u) >= 0]
    if not users:
        raise ValueError(f"no known test user has a held-out rating >= {threshold:g}")
    ids, scores = model.recommend_many(np.array(users), n=k, exclude_seen=True)
    lists = [row[np.isfinite(sc)].tolist() for row, sc in zip(ids, scores, strict=True)]
    return ranking_scores(lists, [relevant[u] for u in users], k, len(model.item_map_))


# ----------------------------------------------------------------------------- cv


def _factory(estimator) -> Callable[[], object]:
    """A callable making fresh unfitted estimators: from a factory, a class, an instance or
    a dict of FunkSVD parameters (``method='svdpp'``: SVDpp's)."""
    if isinstance(estimator, dict):
        from recsys.models.registry import make_estimator

        params = dict(estimator)
        make_estimator(params)
        return lambda: make_estimator(params)
    if isinstance(estimator, type):
        return estimator
    if hasattr(estimator, "get_params") and hasattr(estimator, "fit"):
        cls, params = type(estimator), estimator.get_params()
        return lambda: cls(**params)
    if callable(estimator):
        return estimator
    raise TypeError("expected an estimator, an estimator class or a factory")


def summarize(per_fold: list[dict]) -> dict:
    """{'folds': per-fold dicts, 'mean': {...}, 'std': {...}} over the numeric metrics."""
    names = [k for k, v in per_fold[0].items() if isinstance(v, (int, float, np.number))]
    mean = {k: float(np.mean([f[k] for f in per_fold])) for k in names}
    std = {k: float(np.std([f[k] for f in per_fold])) for k in names}
    return {"folds": per_fold, "mean": mean, "std": std}


def score_folds(estimator, splits, ranking_k: int | None = None, callback=None,
                threshold: float = RELEVANT) -> dict:
    """Fit a fresh estimator on each (train, test) of ``splits`` and summarize the scores."""
    make = _factory(estimator)
    per_fold = []
    for number, (train, test) in enumerate(splits, 1):
        model = make()
        start = time.perf_counter()
        model.fit(train)
        fit_time = time.perf_counter() - start
        scores = evaluate(model, test, ranking_k=ranking_k, threshold=threshold)
        scores = {"fold": number, **scores, "fit_time": fit_time}
        per_fold.append(scores)
        if callback is not None:
            callback(scores)
    if not per_fold:
        raise ValueError("no folds to score")
    return summarize(per_fold)


def cross_validate(estimator, ratings: Ratings, folds: int = 5, seed: int = 0,
                   ranking_k: int | None = None, callback=None,
                   threshold: float = RELEVANT) -> dict:
    """k-fold cross-validation: mean and std of each metric, fit and predict times.

    ``estimator`` is an estimator (cloned from its parameters for every fold), an
    estimator class, a function returning a new estimator, or a dict of FunkSVD parameters.
    """
    return score_folds(estimator, kfold(ratings, folds, seed, compact_train=True), ranking_k,
                       callback, threshold)
