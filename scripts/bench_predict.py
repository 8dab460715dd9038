"""Prediction speed: batch predictions per second and top-10 for every user of a 1M set.

Each figure comes with a plain NumPy baseline measured in the same run (row gathers and
einsum for pairs; one matrix product and argpartition per chunk for top-N), so the ratio
is meaningful on a busy machine. The model is fitted for 2 epochs on MovieLens-1M-shaped
synthetic data with k=128 float32 (speed does not depend on how well it is trained).

    python scripts/bench_predict.py            # writes the bench_predict section
    python scripts/bench_predict.py --output -
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sgd import machine  # noqa: E402
from benchdoc import DOC, write_section  # noqa: E402

from recsys import FunkSVD  # noqa: E402
from recsys.data.synth import SHAPES, SynthSpec, generate  # noqa: E402


def best_of(fn, repeats):
    """Fastest of ``repeats`` calls (after one warm-up call), in seconds."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def numpy_pairs(model, u, i):
    P, Q = model.user_factors_, model.item_factors_
    out = model.mu_ + model.user_bias_[u] + model.item_bias_[i]
    out += np.einsum("nk,nk->n", P[u], Q[i])
    return np.clip(out, *model.rating_scale_)


def numpy_top_n(model, users, n, chunk=1024):
    P, Q = model.user_factors_, model.item_factors_
    base = model.item_bias_ + model.mu_
    indptr, seen = model.seen_
    out = np.empty((len(users), n), dtype=np.int64)
    for start in range(0, len(users), chunk):
        rows = users[start:start + chunk]
        scores = P[rows] @ Q.T + base
        for r, u in enumerate(rows):
            scores[r, seen[indptr[u]:indptr[u + 1]]] = -np.inf
        top = np.argpartition(-scores, n, axis=1)[:, :n]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        out[start:start + len(rows)] = np.take_along_axis(top, order, axis=1)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=str(DOC), help="'-': print only")
    args = parser.parse_args(argv)

    n_users, n_items, n = SHAPES["ml-1m"]
    ratings, _ = generate(SynthSpec(n_users=n_users, n_items=n_items, n_ratings=n, seed=1))
    model = FunkSVD(n_factors=128, n_epochs=2, lr=0.005, reg=0.02).fit(ratings)
    rng = np.random.default_rng(0)
    u = rng.integers(0, n_users, args.pairs)
    i = rng.integers(0, n_items, args.pairs)
    raw_u, raw_i = model.user_map_.ids[u], model.item_map_.ids[i]

    ours_idx = best_of(lambda: model._predict_indexed(u, i), args.repeats)
    ours_raw = best_of(lambda: model.predict(raw_u, raw_i), args.repeats)
    base_pairs = best_of(lambda: numpy_pairs(model, u, i), args.repeats)
    check = np.abs(model._predict_indexed(u[:1000], i[:1000]) - numpy_pairs(model, u[:1000],
                                                                            i[:1000]))
    assert check.max() < 1e-4, "predictions disagree with the NumPy baseline"

    everyone = model.user_map_.ids
    ours_top = best_of(lambda: model.recommend_many(everyone, n=10), args.repeats)
    base_top = best_of(lambda: numpy_top_n(model, np.arange(n_users), 10), args.repeats)
    ids, _ = model.recommend_many(everyone[:50], n=10)
    want = model.item_map_.ids[numpy_top_n(model, np.arange(50), 10)]
    agree = float(np.mean(ids == want))

    rate = lambda s: args.pairs / s / 1e6  # noqa: E731
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = "\n".join([
        "## Prediction speed",
        "",
        f"Measured {now} on {machine()} by `python scripts/bench_predict.py` (model: "
        "k=128 float32 on 1M MovieLens-shaped ratings; best of "
        f"{args.repeats}; all cores).",
        "",
        "| task | recsys | NumPy baseline | speed-up |",
        "|---|---|---|---|",
        f"| predict {args.pairs:,} index pairs (`predict_pairs`) | {rate(ours_idx):.1f} M/s | "
        f"{rate(base_pairs):.1f} M/s | {base_pairs / ours_idx:.1f}x |",
        f"| predict {args.pairs:,} raw-id pairs (`FunkSVD.predict`) | {rate(ours_raw):.1f} M/s "
        f"| - | - |",
        f"| top-10 for all {n_users:,} users (`recommend_many`) | {ours_top:.3f} s | "
        f"{base_top:.3f} s | {base_top / ours_top:.1f}x |",
        "",
        f"Top-10 lists equal to the baseline's for {agree:.0%} of 500 slots (ties may order "
        "differently).",
    ])
    print(text)
    if args.output != "-":
        print(f"wrote {write_section('bench_predict', text, args.output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
