"""Time a full fit on MovieLens 100k (u1.base, k=100, 20 epochs) once the JIT cache is warm.

    python scripts/bench_ml100k.py [--data ../shared/data/ml-100k] [--repeat 5]

Prints the median fit time on one thread and on all cores, the time of the plain
reference loop (one shuffled pass per epoch, same work) as the baseline measured in the
same run, and the test RMSE on u1.test.
"""

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from recsys.data.readers import read_ratings
from recsys.kernels.cpu.sgd import sgd_epoch
from recsys.models.funksvd import FunkSVD
from recsys.models.params import REG_REFERENCE
from recsys.training.backends.cpu import default_jobs


def _median_time(func, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared"
                                              / "data" / "ml-100k"))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    folder = Path(args.data)
    if not (folder / "u1.base").is_file():
        raise SystemExit(f"MovieLens 100k not found in {folder}; run `recsys download ml-100k` "
                         "and pass --data")
    train, test = read_ratings(folder / "u1.base"), read_ratings(folder / "u1.test")
    params = {"n_factors": 100, "n_epochs": 20, "reg": REG_REFERENCE}  # one fit, no search
    FunkSVD(**params, n_jobs=1).fit(train)  # warm the JIT cache

    def reference():
        rng = np.random.default_rng(0)
        k = params["n_factors"]
        P = rng.normal(0, 0.1, (train.n_users, k)).astype(np.float32)
        Q = rng.normal(0, 0.1, (train.n_items, k)).astype(np.float32)
        bu, bi = np.zeros(train.n_users, np.float32), np.zeros(train.n_items, np.float32)
        mu = np.float32(train.values.mean())
        for _ in range(params["n_epochs"]):
            order = rng.permutation(len(train))
            u, i, v = train.users[order], train.items[order], train.values[order]
            sgd_epoch(u, i, v, mu, bu, bi, P, Q, np.float32(0.01), np.float32(0.08),
                      np.float32(0.08))

    reference()
    t_ref = _median_time(reference, args.repeat)
    t_one = _median_time(lambda: FunkSVD(**params, n_jobs=1).fit(train), args.repeat)
    t_all = _median_time(lambda: FunkSVD(**params).fit(train), args.repeat)
    model = FunkSVD(**params).fit(train)
    pred = model.predict(test.raw_users, test.raw_items)
    rmse = float(np.sqrt(np.mean((pred - test.values) ** 2)))
    print(f"ml-100k u1.base: {len(train):,} ratings, k=100, 20 epochs (median of {args.repeat})")
    print(f"  reference loop (shuffled copy per epoch): {t_ref:.3f} s")
    print(f"  FunkSVD.fit, 1 thread:                    {t_one:.3f} s  ({t_one / t_ref:.2f}x)")
    print(f"  FunkSVD.fit, {default_jobs()} threads:                  {t_all:.3f} s  "
          f"({t_all / t_ref:.2f}x)")
    print(f"  u1.test RMSE: {rmse:.4f}")


if __name__ == "__main__":
    main()
