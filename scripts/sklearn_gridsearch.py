"""GridSearchCV over n_factors and reg of FunkSVD on MovieLens 100k, with scikit-learn's
public API only (recsys.sklearn.FunkSVDRegressor is the estimator).

    python scripts/sklearn_gridsearch.py [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import sys

import _accuracy as acc
import pandas as pd
from sklearn.model_selection import GridSearchCV, KFold

from recsys.sklearn import FunkSVDRegressor


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    path = acc.find("ml-100k", args.data_dir)
    if path is None:
        print("MovieLens 100k not found; get it with `recsys download ml-100k`",
              file=sys.stderr)
        return 1
    frame = pd.read_csv(path, sep="\t", names=["user", "item", "rating", "timestamp"])
    X, y = frame[["user", "item"]], frame["rating"]
    search = GridSearchCV(FunkSVDRegressor(n_jobs=1),
                          {"n_factors": [50, 100], "reg": [0.05, 0.08]},
                          scoring="neg_root_mean_squared_error",
                          cv=KFold(3, shuffle=True, random_state=0))
    search.fit(X, y)
    for params, score in zip(search.cv_results_["params"],
                             search.cv_results_["mean_test_score"], strict=True):
        print(f"{params}: RMSE {-score:.4f}")
    print(f"best: {search.best_params_} RMSE {-search.best_score_:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
