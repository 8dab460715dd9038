"""RMSE, MAE and top-10 ranking metrics on MovieLens 100k for every baseline and variant.

Two protocols: the official folds u1..u5 (u{n}.base / u{n}.test) and 5-fold random
cross-validation of u.data (seed 0). Prints markdown tables (mean ± std over the folds).

    python scripts/accuracy_ml100k.py [--data-dir DIR] [--quick] [--only NAME ...]
        [--output docs/results-ml100k.md]
"""

from __future__ import annotations

import argparse
import sys

import _accuracy as acc

from recsys.data.readers import read_ratings
from recsys.data.split import UFOLDS, kfold, ml100k_folds
from recsys.evaluation.evaluate import score_folds

COLUMNS = [("model", "model", "s"), ("rmse", "RMSE", ".4f"), ("rmse_std", "± std", ".4f"),
           ("mae", "MAE", ".4f"), ("precision@10", "P@10", ".4f"),
           ("recall@10", "R@10", ".4f"), ("ndcg@10", "NDCG@10", ".4f"),
           ("map@10", "MAP@10", ".4f"), ("hit_rate@10", "HR@10", ".3f"),
           ("coverage@10", "cov@10", ".3f"), ("fit_time", "fit s", ".2f")]


def run(name, factory, splits) -> dict:
    result = score_folds(factory, splits, ranking_k=10)
    row = {"model": name, **result["mean"], "rmse_std": result["std"]["rmse"]}
    print(f"  {name}: RMSE {row['rmse']:.4f} ± {row['rmse_std']:.4f}", file=sys.stderr,
          flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--quick", action="store_true", help="Shorter reference runs.")
    parser.add_argument("--only", nargs="*", default=None, help="Model names to run.")
    parser.add_argument("--output", default=None, help="Also write the tables here.")
    args = parser.parse_args()
    path = acc.find("ml-100k", args.data_dir)
    if path is None:
        sys.exit("MovieLens 100k not found (looked in "
                 f"{', '.join(map(str, acc.DATA_DIRS))}); skipping")
    folder = path.parent
    models = {k: v for k, v in acc.models(args.quick).items()
              if not args.only or k in args.only}
    official = [(r.compact(), t) for r, t in ml100k_folds(folder, UFOLDS).values()]
    everything = read_ratings(path)
    random = list(kfold(everything, k=5, seed=0, compact_train=True))
    text = [f"Measured {acc.stamp()}.", ""]
    for title, splits in (("official folds u1..u5", official),
                          ("5-fold random cross-validation of u.data (seed 0)", random)):
        print(f"{title}:", file=sys.stderr)
        rows = [run(name, factory, splits) for name, factory in models.items()]
        text += [f"#### MovieLens 100k, {title}", "", acc.table(rows, COLUMNS), ""]
    out = "\n".join(text)
    print(out)
    if args.output:
        from recsys.atomic import atomic_write

        with atomic_write(args.output, "w", encoding="utf-8") as fh:
            fh.write(out + "\n")


if __name__ == "__main__":
    main()
