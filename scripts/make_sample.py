"""Regenerate data/sample.csv and data/sample-test.csv, the small embedded rating set.

The ratings are synthetic (never MovieLens): 600 users, 400 items, a rank-8 signal plus
noise on the 1-5 scale. One rating in ten goes to the test file, every user and item
keeping ratings in the training file.

    python scripts/make_sample.py [--folder data]
"""

import argparse
from pathlib import Path

import numpy as np

from recsys.data.synth import SynthSpec, generate, write_csv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default="data")
    args = parser.parse_args()
    spec = SynthSpec(n_users=600, n_items=400, n_ratings=33_000, rank=8, noise=0.6, seed=2024)
    ratings, _ = generate(spec)
    rng = np.random.default_rng(spec.seed)
    test = rng.random(len(ratings)) < 0.1
    # keep each user's and item's first rating in training so the test set has no strangers
    first_user = np.unique(ratings.users, return_index=True)[1]
    first_item = np.unique(ratings.items, return_index=True)[1]
    test[first_user] = False
    test[first_item] = False
    folder = Path(args.folder)
    write_csv(ratings.subset(~test), folder / "sample.csv")
    write_csv(ratings.subset(test), folder / "sample-test.csv")
    print(f"wrote {int((~test).sum()):,} training and {int(test.sum()):,} test ratings "
          f"({ratings.n_users} users, {ratings.n_items} items) to {folder}")


if __name__ == "__main__":
    main()
