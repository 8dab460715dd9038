"""Time of ``recsys update`` against a full retrain, whole commands, in one run.

Generated MovieLens-1M-shaped ratings (recsys synth --shape ml-1m) lose a random 2% as a
test set; the rest is split by time into the earliest 90% (the base) and the latest 10%
(the update). Timed, alternating, in fresh processes (wall seconds, reading and writing
included): ``recsys train ALL -o full.npz`` (the defaults: reg auto and all) against
``recsys update BASE_MODEL NEW --base OLD -o updated.npz``, where BASE_MODEL was trained on
the base with the defaults beforehand (not timed). Prints each run, the medians, their
ratio and both models' test RMSE.

    python scripts/bench_update.py [--repeats 3] [--shape ml-1m]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from recsys.data.readers import read_ratings
from recsys.data.split import holdout, temporal, write_splits
from recsys.data.synth import SHAPES, SynthSpec, generate
from recsys.evaluation.metrics import rmse
from recsys.models.registry import load

RECSYS = [sys.executable, "-m", "recsys"]


def timed(args) -> float:
    start = time.perf_counter()
    subprocess.run(RECSYS + [str(a) for a in args] + ["-q"], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="ml-1m", choices=sorted(SHAPES))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    n_users, n_items, n = SHAPES[args.shape]
    ratings, _ = generate(SynthSpec(n_users=n_users, n_items=n_items, n_ratings=n, seed=1))
    with tempfile.TemporaryDirectory() as folder:
        d = Path(folder)
        rest, test = holdout(ratings, 0.02, seed=0)
        old, new = temporal(rest, fraction=0.1)
        write_splits([(rest, d / "all.csv"), (old, d / "old.csv"), (new, d / "new.csv"),
                      (test, d / "test.csv")])
        print(f"# {args.shape}: {len(rest):,} ratings; base {len(old):,}, update {len(new):,}; "
              f"{len(test):,} held out", flush=True)
        subprocess.run(RECSYS + ["train", d / "old.csv", "-o", d / "base.npz", "-q"],
                       check=True)
        full, update = [], []
        for run in range(args.repeats):
            full.append(timed(["train", d / "all.csv", "-o", d / "full.npz"]))
            update.append(timed(["update", d / "base.npz", d / "new.csv", "--base",
                                 d / "old.csv", "-o", d / "updated.npz"]))
            print(f"run {run + 1}: train {full[-1]:.2f} s, update {update[-1]:.2f} s",
                  flush=True)
        held = read_ratings(d / "test.csv")
        scores = {name: rmse(held.values, load(d / f"{name}.npz").predict(
            held.raw_users, held.raw_items).astype(np.float64)) for name in ("full", "updated")}
    f, u = statistics.median(full), statistics.median(update)
    print(f"median of {args.repeats}: train {f:.2f} s ({min(full):.2f}..{max(full):.2f}), "
          f"update {u:.2f} s ({min(update):.2f}..{max(update):.2f}); update / train "
          f"{u / f:.3f}")
    print(f"test RMSE: full retrain {scores['full']:.4f}, update {scores['updated']:.4f} "
          f"({scores['updated'] - scores['full']:+.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
