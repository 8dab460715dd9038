"""AdaGrad on MovieLens 100k: how close the adaptive steps come to the default's RMSE.

The AdaGrad setting that beats LIBMF's time to accuracy on generated data (docs/benchmarks.md,
"Time to accuracy") is judged here on real ratings: a grid of factors, initial std, base
rate and regularization, each fitted on u1..u5 for ``--epochs`` epochs with the test fold as
validation. Printed per setting: the mean test RMSE over the folds at its best epoch (chosen
on the test folds themselves, so optimistic) and at 10, 20 and the last epoch; last, the
default FunkSVD's mean RMSE on the same folds for comparison.

    python scripts/accuracy_adagrad.py --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _accuracy as acc  # noqa: E402

from recsys.data.split import ml100k_folds  # noqa: E402
from recsys.evaluation.evaluate import evaluate  # noqa: E402
from recsys.models.funksvd import FunkSVD  # noqa: E402

GRID = dict(n_factors=(128, 200), init_std=(0.005, 0.1), lr=(0.02, 0.05, 0.1),
            reg=(0.035, 0.05, 0.065, 0.08))
FOLDS = ("u1", "u2", "u3", "u4", "u5")


def curve(folds, epochs, **params):
    """Mean test RMSE over the folds after each epoch."""
    rows = []
    for train, test in folds.values():
        model = FunkSVD(lr_schedule="adagrad", n_epochs=epochs, n_jobs=1, seed=0, **params)
        model.fit(train, validation=test)
        rows.append([h["valid_rmse"] for h in model.report_.history])
    return np.mean(np.array(rows), axis=0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="folder holding ml-100k/ (default: search)")
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args(argv)
    path = acc.find("ml-100k", args.data_dir)
    if path is None:
        print("ml-100k not found: run `recsys download ml-100k` or pass --data-dir",
              file=sys.stderr)
        return 2
    folds = ml100k_folds(path.parent, names=FOLDS)
    print(f"# {acc.stamp()}; MovieLens 100k u1..u5, mean test RMSE, AdaGrad, "
          f"{args.epochs} epochs")
    best_overall = None
    for values in itertools.product(*GRID.values()):
        params = dict(zip(GRID, values))
        c = curve(folds, args.epochs, **params)
        best = int(np.argmin(c))
        at = "  ".join(f"@{e} {c[e - 1]:.4f}" for e in (10, 20, args.epochs)
                       if e <= args.epochs)
        label = " ".join(f"{k} {v}" for k, v in params.items())
        print(f"{label}: best {c[best]:.4f} at epoch {best + 1}  {at}", flush=True)
        if best_overall is None or c[best] < best_overall[0]:
            best_overall = (c[best], label, best + 1)
    default = np.mean([evaluate(FunkSVD(n_jobs=1).fit(train), test)["rmse"]
                       for train, test in folds.values()])
    print(f"best AdaGrad setting: {best_overall[1]} at epoch {best_overall[2]}: "
          f"{best_overall[0]:.4f}; FunkSVD defaults: {default:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
