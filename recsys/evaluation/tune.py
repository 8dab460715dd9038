"""Hyperparameter search by cross-validation, and the JSON configs it saves.

``search`` scores a model (FunkSVD, or the one the ``objective`` parameter names) on
every point of a grid, or on ``n_iter`` points drawn at random from it, with k-fold
cross-validation, and returns them ranked by mean RMSE, or by mean NDCG@k with
``metric='ndcg'`` (the measure of top-N lists). The best point can be saved with
``save_config`` and read back by ``load_config`` (``recsys train --config``): a JSON object
``{"params": {...}, "score": {...}}`` of model parameters.
"""

from __future__ import annotations

import itertools
import json

import numpy as np

from recsys.errors import DataError

#: The default search space: around the tuned defaults (see docs/results.md).
DEFAULT_SPACE = {
    "n_factors": [64, 128, 200],
    "n_epochs": [10, 13, 20],
    "lr": [0.02, 0.03, 0.04],
    "reg": ["auto", 0.05, 0.08, 0.1],
    "init_std": [0.005, 0.1],
}
#: The ranking objective's default space, around its defaults.
RANKING_SPACE = {
    "n_factors": [32, 64, 128],
    "reg": [0.01, 0.02, 0.04],
    "unobserved_weight": [9.0, 18.0, 36.0],
    "confidence": [0.75, 1.5, 3.0],
}
METRICS = ("rmse", "ndcg")


def grid(space: dict) -> list[dict]:
    """Every combination of the values in ``space`` (name -> list), in a fixed order."""
    names = list(space)
    return [dict(zip(names, combo, strict=True))
            for combo in itertools.product(*(space[n] for n in names))]


def sample(space: dict, n_iter: int, seed: int = 0) -> list[dict]:
    """``n_iter`` distinct points of the grid drawn at random (all of it if smaller)."""
    points = grid(space)
    if n_iter >= len(points):
        return points
    picks = np.random.default_rng(seed).choice(len(points), n_iter, replace=False)
    return [points[i] for i in sorted(picks)]


def search(ratings, space: dict | None = None, n_iter: int | None = None, folds: int = 3,
           seed: int = 0, base: dict | None = None, callback=None, metric: str = "rmse",
           ranking_k: int = 10) -> list[dict]:
    """Cross-validate the model at each point; rows {params, rmse, rmse_std, mae, ndcg,
    ndcg_std, fit_time} sorted by mean RMSE (``metric='rmse'``) or by mean NDCG@``ranking_k``
    best first (``'ndcg'``, which also fills the ndcg columns). ``base`` holds fixed
    parameters; ``n_iter`` None means the grid."""
    from recsys.evaluation.evaluate import cross_validate
    from recsys.models.registry import make_estimator

    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, not {metric!r}")
    space = space or DEFAULT_SPACE
    points = grid(space) if n_iter is None else sample(space, n_iter, seed)
    rows = []
    for point in points:
        params = {**(base or {}), **point}
        result = cross_validate(make_estimator(params), ratings, folds=folds, seed=seed,
                                ranking_k=ranking_k if metric == "ndcg" else None)
        mean, std = result["mean"], result["std"]
        row = {"params": params, "rmse": mean["rmse"], "rmse_std": std["rmse"],
               "mae": mean["mae"], "fit_time": mean["fit_time"],
               "ndcg": mean.get(f"ndcg@{ranking_k}"), "ndcg_std": std.get(f"ndcg@{ranking_k}")}
        rows.append(row)
        if callback is not None:
            callback(row)
    if metric == "ndcg":
        return sorted(rows, key=lambda r: -r["ndcg"])
    return sorted(rows, key=lambda r: r["rmse"])


def optuna_search(ratings, space: dict | None = None, n_trials: int = 20, seed: int = 0,
                  base: dict | None = None, callback=None, metric: str = "rmse",
                  ranking_k: int = 10, holdout: float = 0.2) -> list[dict]:
    """Search with optuna (TPE, seeded) instead of the grid: each trial fits the model on
    a seeded ``holdout`` split of ``ratings`` and is scored on the held-out part; for the
    rating objective the fit reports the validation RMSE after every epoch and optuna's
    median pruner stops the trials that lag (through the fit callback). Rows as
    ``search`` gives them (rmse_std and ndcg_std are None: one split), best first.
    Needs optuna (``pip install optuna``).
    """
    try:
        import optuna
    except ImportError:
        from recsys.errors import RecsysError

        raise RecsysError("the optuna engine needs optuna: pip install optuna") from None
    from recsys.data.split import holdout as split_holdout
    from recsys.evaluation.evaluate import evaluate
    from recsys.models.registry import make_estimator

    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, not {metric!r}")
    space = space or DEFAULT_SPACE
    train, test = split_holdout(ratings, holdout, seed, compact_train=True)
    rows = []

    def objective(trial):
        point = {name: trial.suggest_categorical(name, values) for name, values in
                 space.items()}
        model = make_estimator({**(base or {}), **point})

        def report(info):
            if metric == "rmse" and info.valid_rmse is not None:
                trial.report(info.valid_rmse, info.epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned()

        import time

        start = time.perf_counter()
        try:
            model.fit(train, validation=test, callback=report)
        except TypeError:  # models whose fit takes no validation set
            model.fit(train)
        fit_time = time.perf_counter() - start
        scores = evaluate(model, test, ranking_k=ranking_k if metric == "ndcg" else None)
        row = {"params": {**(base or {}), **point}, "rmse": scores["rmse"], "rmse_std": None,
               "mae": scores["mae"], "fit_time": fit_time,
               "ndcg": scores.get(f"ndcg@{ranking_k}"), "ndcg_std": None}
        rows.append(row)
        if callback is not None:
            callback(row)
        return row["ndcg"] if metric == "ndcg" else row["rmse"]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if metric == "ndcg" else "minimize",
                                sampler=optuna.samplers.TPESampler(seed=seed),
                                pruner=optuna.pruners.MedianPruner(n_warmup_steps=5))
    study.optimize(objective, n_trials=n_trials)
    pruned = sum(trial.state == optuna.trial.TrialState.PRUNED for trial in study.trials)
    if pruned:
        import logging

        logging.getLogger(__name__).warning("optuna pruned %d of %d trials (not listed)",
                                            pruned, n_trials)
    key = (lambda r: -r["ndcg"]) if metric == "ndcg" else (lambda r: r["rmse"])
    return sorted(rows, key=key)


def save_config(path, params: dict, score: dict | None = None) -> None:
    """Write ``{"params": params, "score": score}`` as JSON, atomically."""
    from recsys.atomic import atomic_write

    with atomic_write(path, "w", encoding="utf-8") as fh:
        json.dump({"params": params, "score": score or {}}, fh, indent=1, default=_plain)
        fh.write("\n")


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in a config")


def load_config(path) -> dict:
    """Model parameters from a config written by ``save_config`` (or a flat object)."""
    from recsys.models.registry import FLAT_PARAMS

    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise DataError(f"not a JSON config: {exc.msg}", path, exc.lineno) from None
    params = data.get("params", data) if isinstance(data, dict) else None
    if not isinstance(params, dict):
        raise DataError("a config is a JSON object of model parameters", path)
    unknown = sorted(set(params) - set(FLAT_PARAMS))
    if unknown:
        raise DataError(f"unknown parameter {unknown[0]!r} (known: "
                        f"{', '.join(FLAT_PARAMS)})", path)
    return params
