"""RMSE on the larger MovieLens releases: 5 random 90/10 splits (seeds 0..4) per release.

Runs every release found among ml-1m, ml-10m, ml-20m, ml-25m (in $RECSYS_DATA,
../shared/data or ~/.cache/recsys; get them with the release's URL from grouplens.org, or
`recsys download` where available) and says which it skipped. Models: damped biases and
FunkSVD with the defaults (override with --factors/--epochs to keep big runs short).

    python scripts/accuracy_large.py [--data-dir DIR] [--datasets ml-1m ml-10m]
        [--splits 5] [--factors K] [--epochs T] [--reg auto|R] [--jobs N]
"""

from __future__ import annotations

import argparse
import sys

import _accuracy as acc

from recsys.data.readers import read_ratings
from recsys.data.split import holdout
from recsys.evaluation.evaluate import score_folds
from recsys.models.baselines import Biases
from recsys.models.funksvd import FunkSVD

COLUMNS = [("dataset", "dataset", "s"), ("model", "model", "s"), ("rmse", "RMSE", ".4f"),
           ("rmse_std", "± std", ".4f"), ("mae", "MAE", ".4f"), ("fit_time", "fit s", ".1f")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--datasets", nargs="*", default=["ml-1m", "ml-10m", "ml-20m", "ml-25m"])
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--factors", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--reg", default=None, help="auto (the default) or a number")
    parser.add_argument("--jobs", type=int, default=None)
    args = parser.parse_args()
    reg = None if args.reg in (None, "auto") else float(args.reg)
    params = {k: v for k, v in (("n_factors", args.factors), ("n_epochs", args.epochs),
                                ("reg", reg), ("n_jobs", args.jobs)) if v is not None}
    rows = []
    for name in args.datasets:
        path = acc.find(name, args.data_dir)
        if path is None:
            print(f"{name}: not downloaded (looked for {acc.RATINGS_FILES[name]} in "
                  f"{', '.join(map(str, acc.DATA_DIRS))}); skipping", file=sys.stderr)
            continue
        ratings = read_ratings(path)
        print(f"{name}: {len(ratings):,} ratings", file=sys.stderr, flush=True)
        for label, factory in (("biases, damped means", Biases),
                               ("FunkSVD" + (f" {params}" if params else ", defaults"),
                                lambda: FunkSVD(**params))):
            splits = (holdout(ratings, 0.1, seed, compact_train=True)
                      for seed in range(args.splits))
            result = score_folds(factory, splits)
            row = {"dataset": name, "model": label, **result["mean"],
                   "rmse_std": result["std"]["rmse"]}
            print(f"  {label}: RMSE {row['rmse']:.4f}", file=sys.stderr, flush=True)
            rows.append(row)
    if not rows:
        print("no larger MovieLens release found; nothing measured")
        return
    print(f"Measured {acc.stamp()}.\n")
    print(acc.table(rows, COLUMNS))


if __name__ == "__main__":
    main()
