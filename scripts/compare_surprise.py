"""scikit-surprise's SVD next to recsys's FunkSVD on the same MovieLens 100k folds, in one run.

Folds: the official u1..u5, and 5-fold random cross-validation of u.data (the folds of
``recsys.data.split.kfold`` with seed 0, handed to both libraries). Surprise's SVD runs with
its own defaults (k=100, 20 epochs, lr 0.005, reg 0.02, init std 0.1) and with recsys's
previous, constant-step defaults (Surprise has no decaying rate), which recsys also runs;
its BaselineOnly (ALS biases) stands next to recsys's damped biases.
Needs scikit-surprise (the ``compare`` extra).

    python scripts/compare_surprise.py [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import sys
import time

import _accuracy as acc
import numpy as np

from recsys.data.readers import read_ratings
from recsys.data.split import UFOLDS, kfold, ml100k_folds
from recsys.evaluation.metrics import mae, rmse
from recsys.models.baselines import Biases
from recsys.models.funksvd import FunkSVD
from recsys.models.params import PARAMS, REG_REFERENCE


def surprise_models():
    from surprise import SVD, BaselineOnly

    # Surprise has no decaying rate, so it gets recsys's previous defaults, the constant-step
    # ones (k 200, 85 epochs, lr 0.005, reg_bias 0.01), with the γ reg 'auto' chooses on
    # every MovieLens 100k fold
    tuned = dict(n_factors=200, n_epochs=85, lr_all=0.005, reg_bu=0.01, reg_bi=0.01,
                 reg_pu=REG_REFERENCE, reg_qi=REG_REFERENCE,
                 init_std_dev=PARAMS["init_std"].default, random_state=0)
    return {
        "surprise SVD, its defaults": lambda: SVD(random_state=0),
        "surprise SVD, recsys's constant-step settings": lambda: SVD(**tuned),
        "surprise BaselineOnly (ALS)": lambda: BaselineOnly(verbose=False),
    }


def recsys_models():
    return {
        "recsys FunkSVD, defaults": lambda: FunkSVD(n_jobs=1),
        "recsys FunkSVD, constant-step settings": lambda: FunkSVD(
            n_factors=200, n_epochs=85, lr=0.005, lr_schedule="constant", reg_bias=0.01,
            n_jobs=1),
        "recsys biases, damped means": lambda: Biases(),
    }


def fit_surprise(factory, train, test):
    from surprise import Dataset, Reader

    frame = train.to_dataframe()[["user", "item", "rating"]]
    data = Dataset.load_from_df(frame, Reader(rating_scale=(1, 5)))
    algo = factory()
    start = time.perf_counter()
    algo.fit(data.build_full_trainset())
    fit = time.perf_counter() - start
    rows = zip(test.raw_users.tolist(), test.raw_items.tolist(), test.values.tolist(),
               strict=True)
    preds = np.array([p.est for p in algo.test(list(rows))])
    return preds, fit


def fit_recsys(factory, train, test):
    model = factory()
    start = time.perf_counter()
    model.fit(train)
    fit = time.perf_counter() - start
    return model.predict(test.raw_users, test.raw_items), fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    try:
        import surprise
    except ImportError:
        sys.exit("scikit-surprise is not installed (pip install -e '.[compare]'); skipping")
    path = acc.find("ml-100k", args.data_dir)
    if path is None:
        sys.exit("MovieLens 100k not found; skipping")
    protocols = {
        "u1..u5": [(r.compact(), t) for r, t in ml100k_folds(path.parent, UFOLDS).values()],
        "5-fold random": list(kfold(read_ratings(path), k=5, seed=0, compact_train=True)),
    }
    runners = [(name, f, fit_surprise) for name, f in surprise_models().items()] + \
        [(name, f, fit_recsys) for name, f in recsys_models().items()]
    rows = []
    for name, factory, fit in runners:
        row = {"model": name}
        for protocol, splits in protocols.items():
            scores = []
            for train, test in splits:
                preds, seconds = fit(factory, train, test)
                scores.append((rmse(test.values, preds), mae(test.values, preds), seconds))
            r, m, s = np.mean(scores, axis=0)
            row.update({f"{protocol} rmse": r, f"{protocol} mae": m, f"{protocol} fit": s})
        print(f"  {name}: {row}", file=sys.stderr, flush=True)
        rows.append(row)
    columns = [("model", "model", "s")]
    for protocol in protocols:
        columns += [(f"{protocol} rmse", f"{protocol} RMSE", ".4f"),
                    (f"{protocol} mae", "MAE", ".4f"), (f"{protocol} fit", "fit s", ".2f")]
    print(f"Measured {acc.stamp()}; scikit-surprise {surprise.__version__}.\n")
    print(acc.table(rows, columns))


if __name__ == "__main__":
    main()
