"""Ground-truth check: on synthetic ratings from a known rank-10 model plus Gaussian noise
of σ = 0.5 (continuous, never rounded), the held-out RMSE of a trained model cannot go
below σ, and a model that learned the truth gets close to it. Prints the gap (RMSE − σ)/σ.

Trains FunkSVD with the default settings except n_factors = 10 (other parameters can be
overridden; by default reg is 'auto') on 90% of the ratings and scores the other 10%; also
prints the RMSE of the true model on the same test ratings (≈ σ by construction), of the
true biases alone, and the parametric floor σ·sqrt(1 + (k+1)(users+items)/train ratings):
roughly what an unbiased estimator of that many parameters can reach, since each user's
and item's k factors and bias are learned from its own ratings only.

The default shape is 2·√N users x √N items (half the cells rated, the densest the generator
allows: 2,000 x 1,000 for 1M ratings), where the floor lies 1.8% above σ at 1M ratings and
less beyond. On a MovieLens release's shape (--shape movielens: 6,040 x 3,706 for 1M) the
floor itself is 5.8% above σ, so no model can pass the 3% check there; --users/--items set
any other shape.

    python scripts/ground_truth.py [--ratings 1000000] [--shape dense|movielens]
        [--users N --items M] [--noise 0.5] [--reg R --lr L --epochs T --init-std S] [--jobs N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _accuracy import stamp

from recsys.data.split import holdout
from recsys.data.synth import SHAPES, SynthSpec, generate
from recsys.evaluation.metrics import rmse
from recsys.models.funksvd import FunkSVD


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", type=int, default=1_000_000)
    parser.add_argument("--noise", type=float, default=0.5)
    parser.add_argument("--rank", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shape", choices=("dense", "movielens"), default="dense")
    parser.add_argument("--users", type=int, default=None)
    parser.add_argument("--items", type=int, default=None)
    parser.add_argument("--reg", default=None, help="a number or auto (the default)")
    for name in ("lr", "init-std"):
        parser.add_argument(f"--{name}", type=float, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()

    if args.shape == "movielens":  # the user and item counts of the release of about this size
        shape = min(SHAPES.values(), key=lambda s: abs(np.log(s[2] / args.ratings)))
    else:
        side = int(np.ceil(np.sqrt(args.ratings)))
        shape = (2 * side, side)
    spec = SynthSpec(n_users=args.users or shape[0], n_items=args.items or shape[1],
                     n_ratings=args.ratings, rank=args.rank, noise=args.noise, scale="none",
                     seed=args.seed)
    start = time.perf_counter()
    ratings, truth = generate(spec)
    print(f"generated {len(ratings):,} ratings ({spec.n_users:,} users x {spec.n_items:,} "
          f"items, rank {spec.rank}, σ = {spec.noise}) in {time.perf_counter() - start:.1f}s")
    train, test = holdout(ratings, 0.1, seed=args.seed, compact_train=True)

    reg = None if args.reg is None else args.reg if args.reg == "auto" else float(args.reg)
    overrides = {k: v for k, v in (("reg", reg), ("lr", args.lr), ("n_epochs", args.epochs),
                                   ("init_std", args.init_std)) if v is not None}
    model = FunkSVD(n_factors=args.rank, n_jobs=args.jobs, **overrides)
    start = time.perf_counter()
    model.fit(train)
    fit_s = time.perf_counter() - start
    got = rmse(test.values, model.predict(test.raw_users, test.raw_items))
    # the true model on the same test ratings (ids are 1-based indices in synth)
    u, i = test.raw_users - 1, test.raw_items - 1
    true_pred = truth["mu"] + truth["user_bias"][u] + truth["item_bias"][i] \
        + np.einsum("nk,nk->n", truth["U"][u], truth["V"][i])
    oracle = rmse(test.values, true_pred)
    biases = rmse(test.values, truth["mu"] + truth["user_bias"][u] + truth["item_bias"][i])
    gap = (got - spec.noise) / spec.noise
    floor = spec.noise * np.sqrt(1 + (spec.rank + 1) * (train.n_users + train.n_items)
                                 / len(train))
    print(f"{stamp()}")
    print(f"model     {model!r}")
    print(f"fit       {fit_s:.1f}s")
    print(f"reg       {model.reg_:g}" + (" (auto; held-out RMSE " + ", ".join(
        f"{r:g}: {e:.4f}" for r, e in model.reg_trials_) + ")" if model.reg_trials_ else ""))
    print("| ratings | users x items | σ | true model | true biases only | parametric floor "
          "| FunkSVD | gap (RMSE − σ)/σ |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    print(f"| {len(ratings):,} | {spec.n_users:,} x {spec.n_items:,} | {spec.noise} | "
          f"{oracle:.4f} | {biases:.4f} | {floor:.4f} ({100 * (floor / spec.noise - 1):+.1f}%) "
          f"| {got:.4f} | {100 * gap:+.2f}% |")
    print("PASS" if abs(gap) <= 0.03 else "FAIL", "(target: within 3% of σ)")


if __name__ == "__main__":
    main()
