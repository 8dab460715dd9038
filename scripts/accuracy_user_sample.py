"""reg auto's trials on a share of the users: do they rank γ as the trials on every user do?

For each data set: the defaults' held-out share (10%, seed 0) and shared warm-up (3
AdaGrad epochs at γ 0.065 on the other 90%), then for each γ of the ladder a short trial
from the warm-up, as ``reg='auto'`` runs it, twice: on all the trial ratings, scored on
the whole held-out share and on the held-out ratings of the sampled users; and on the
trial ratings of a ``--share`` of the users only (drawn as the fit draws them, seed 0),
scored on those users' held-out ratings. The γ each column would choose is marked. Files
are read as ratings (MovieLens 100k's ``u1.base``, say); ``1m`` and ``10m`` are the
generated sets of ``scripts/bench_tta.py``.

    python scripts/accuracy_user_sample.py ../shared/data/ml-100k/u1.base 1m 10m --share 0.5
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from recsys.data.readers.read import read_ratings  # noqa: E402
from recsys.data.split import split_off  # noqa: E402
from recsys.models.funksvd import FunkSVD  # noqa: E402
from recsys.models.regsearch import _SHORTENED, picked_users  # noqa: E402
from recsys.training import autoreg  # noqa: E402
from recsys.training.loop import IndexedRatings, train  # noqa: E402

LADDER = (0.13, 0.065, 0.0325, 0.01625, 0.008125)


def ratings_of(name: str):
    if name in ("1m", "10m", "100m"):
        from bench_tta import data

        return data(name)[0]
    return read_ratings(name)


def scored(held):
    return IndexedRatings(held.users, held.items, held.values.astype(np.float64),
                          held.n_users, held.n_items)


def compare(name: str, share: float) -> None:
    ratings = ratings_of(name)
    model = FunkSVD()
    rest, held = split_off(ratings, autoreg.HOLDOUT, 0, stream=2)
    warm = replace(model._train_config(autoreg.REFERENCE), n_epochs=3, early_stopping=0)
    start = train(warm, IndexedRatings.of(rest)).factors
    picked = picked_users(rest.n_users, share, 0)
    _, sample = rest.split(picked[rest.users])
    _, their = held.split(picked[held.users])
    short = autoreg.trial_params(model.get_params(), "sgd")
    lo, hi = float(rest.values.min()), float(rest.values.max())
    print(f"# {name}: {len(rest):,} trial ratings of {rest.n_users:,} users and "
          f"{rest.n_items:,} items; the sample: {share:.0%} of the users, {len(sample):,} "
          f"ratings")
    print("γ | all users | all users, on the sample's held-out | the sample")
    rows = []
    for reg in LADDER:
        config = replace(model._train_config(reg), **{k: short[k] for k in _SHORTENED})
        config = replace(config, warmup_epochs=0, n_epochs=config.n_epochs - 3)
        whole = train(config, IndexedRatings.of(rest), init=start.copy()).factors
        part = train(config, IndexedRatings.of(sample), init=start.copy()).factors
        rows.append((reg, *(f.rmse(s.users, s.items, s.values, lo, hi) for f, s in (
            (whole, scored(held)), (whole, scored(their)), (part, scored(their))))))
    best = [min(rows, key=lambda r, c=c: r[c])[0] for c in (1, 2, 3)]
    for reg, *errors in rows:
        print(f"{reg:g} | " + " | ".join(
            f"{e:.5f}{' *' if reg == b else ''}" for e, b in zip(errors, best, strict=True)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="+", help="ratings files, or 1m / 10m (generated)")
    parser.add_argument("--share", type=float, default=autoreg.SAMPLE_SHARE)
    args = parser.parse_args(argv)
    for name in args.data:
        compare(name, args.share)
    return 0


if __name__ == "__main__":
    sys.exit(main())
