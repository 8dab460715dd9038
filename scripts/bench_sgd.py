"""Training speed: ns per rating per epoch, against LIBMF built with AVX in the same run.

Rows, for each data size, k and dtype: the plain reference kernel (``sgd_epoch`` over the
ratings in their random input order), ``FunkSVD.fit`` (the blocked, cache-aware kernel) on
one thread and on all cores, LIBMF compiled from source with -O3 -march=native -DUSEAVX
-DUSEOMP -fopenmp on one thread and on all cores, and the PyPI ``libmf``, scikit-surprise
and lenskit-funksvd when they are installed (``pip install -e '.[bench]'``).

Times are marginal: set-up (grouping, copies, compilation) is removed by timing epochs
2..N of our fits, and for the others by timing fits of 1 and N epochs and dividing the
difference by N-1. One-thread rows are timed in CPU time of the process, so that other
programs sharing the cores do not inflate them; rows with more threads in wall time.
Every row also gives the validation RMSE after N epochs on a 2% hold-out. The data is
MovieLens-shaped synthetic (recsys.data.synth).

    python scripts/bench_sgd.py                  # 1M and 10M, k 32/128, float32/64
    python scripts/bench_sgd.py --quick          # smoke run: 1M, k=128, float32
    python scripts/bench_sgd.py --sizes 25m,100m --k 128 --dtypes float32
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import libmf_avx  # noqa: E402
from benchdoc import DOC, write_section  # noqa: E402

from recsys import FunkSVD  # noqa: E402
from recsys.data.ratings import Ratings  # noqa: E402
from recsys.data.synth import SHAPES, SynthSpec, generate  # noqa: E402

SIZES = {"1m": "ml-1m", "10m": "ml-10m", "25m": "ml-25m", "100m": "netflix"}
LR, REG = 0.005, 0.02
HOLDOUT = 0.02


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def rss_reset() -> None:
    """Reset the kernel's peak-RSS mark of this process (Linux), so VmHWM measures what follows."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def rss_peak() -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def clock(threads: int):
    """CPU time of this process for one thread (immune to sharing the cores with other
    programs), wall time for several (where waiting for each other is part of the cost)."""
    return time.process_time if threads == 1 else time.perf_counter


def make_data(size: str):
    n_users, n_items, n = SHAPES[SIZES[size]]
    ratings, _ = generate(SynthSpec(n_users=n_users, n_items=n_items, n_ratings=n, seed=1))
    test = np.random.default_rng(2).random(len(ratings)) < HOLDOUT
    keep = np.flatnonzero(~test)
    train = Ratings(ratings.users[keep], ratings.items[keep], ratings.values[keep],
                    ratings.user_map, ratings.item_map)
    valid = (ratings.users[test], ratings.items[test], ratings.values[test])
    del ratings
    gc.collect()
    return train, valid


def rmse_of(model: FunkSVD, valid) -> float:
    return model.state_.factors.rmse(valid[0], valid[1], valid[2], *model.rating_scale_)


# --------------------------------------------------------------------------- implementations


def run_reference(train, valid, k, dtype, epochs):
    """The plain kernel over the ratings in input (random) order."""
    from recsys.kernels.cpu.sgd import sgd_epoch, sum_squared_error

    dt_ = np.dtype(dtype).type
    rng = np.random.default_rng(0)
    P = rng.normal(0, 0.1, (train.n_users, k)).astype(dtype)
    Q = rng.normal(0, 0.1, (train.n_items, k)).astype(dtype)
    bu = np.zeros(train.n_users, dtype)
    bi = np.zeros(train.n_items, dtype)
    mu = dt_(train.values.mean(dtype=np.float64))
    times = []
    now = clock(1)
    for _ in range(epochs):
        start = now()
        sgd_epoch(train.users, train.items, train.values, mu, bu, bi, P, Q, dt_(LR), dt_(REG),
                  dt_(REG))
        times.append(now() - start)
    sse = sum_squared_error(valid[0], valid[1], valid[2], mu, bu, bi, P, Q,
                            dt_(train.values.min()), dt_(train.values.max()))
    return _marginal(times), math.sqrt(sse / len(valid[2])), None


def run_ours(train, valid, k, dtype, epochs, threads):
    model = FunkSVD(n_factors=k, n_epochs=epochs, lr=LR, reg=REG, dtype=dtype, n_jobs=threads)
    gc.collect()
    rss_reset()
    now = clock(threads)
    ends = []
    model.fit(train, callback=lambda info: ends.append(now()))
    peak = rss_peak()
    seconds = np.diff(ends)  # epochs 2..N, each timed from the end of the one before
    return float(np.mean(seconds)), rmse_of(model, valid), peak


def _marginal(seconds):
    """Mean seconds of epochs 2..N (the first pays for compilation and cold caches)."""
    return float(np.mean(seconds[1:]))


def run_libmf(module, train, valid, k, epochs, threads):
    X = np.column_stack([train.users, train.items, train.values]).astype(np.float32)
    first, *_ = libmf_avx.fit_seconds(module, X, k, threads, 1, clock(threads))
    total, P, Q, b = libmf_avx.fit_seconds(module, X, k, threads, epochs, clock(threads))
    return (total - first) / (epochs - 1), libmf_avx.rmse(P, Q, b, *valid), None


def run_surprise(train, valid, k, epochs):
    import pandas as pd
    from surprise import SVD, Dataset, Reader

    frame = pd.DataFrame({"u": train.users, "i": train.items, "r": train.values})
    data = Dataset.load_from_df(frame, Reader(rating_scale=(1, 5))).build_full_trainset()

    def fit(n):
        algo = SVD(n_factors=k, n_epochs=n, lr_all=LR, reg_all=REG, random_state=0)
        start = time.process_time()
        algo.fit(data)
        return time.process_time() - start, algo

    first, _ = fit(1)
    total, algo = fit(epochs)
    pred = np.array([algo.predict(int(u), int(i)).est
                     for u, i in zip(valid[0], valid[1], strict=True)])
    return (total - first) / (epochs - 1), float(np.sqrt(np.mean((pred - valid[2]) ** 2))), None


def run_lenskit(train, valid, k, epochs):
    import pandas as pd
    from lenskit.funksvd import FunkSVDScorer  # lenskit-funksvd

    frame = pd.DataFrame({"user_id": train.users, "item_id": train.items,
                          "rating": train.values})

    def fit(n):
        from lenskit.data import from_interactions_df

        algo = FunkSVDScorer(features=k, epochs=n, lrate=LR, reg=REG)
        data = from_interactions_df(frame)
        start = time.process_time()
        algo.train(data)
        return time.process_time() - start, algo

    first, _ = fit(1)
    total, _ = fit(epochs)
    return (total - first) / (epochs - 1), float("nan"), None


# --------------------------------------------------------------------------- driver


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1m,10m", help="of 1m, 10m, 25m, 100m")
    parser.add_argument("--k", default="32,128")
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per fit (timed: 2..N)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1m, k=128, float32")
    parser.add_argument("--no-reference", action="store_true",
                        help="skip the plain reference kernel (slow at 25M and 100M)")
    parser.add_argument("--output", default=str(DOC),
                        help="markdown file whose 'bench_sgd' section is rewritten ('-': print)")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.k, args.dtypes, args.epochs = "1m", "128", "float32", 3
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (epoch 1 is not timed)")
    sizes = [s.strip().lower() for s in args.sizes.split(",")]
    for s in sizes:
        if s not in SIZES:
            parser.error(f"unknown size {s!r}; choose from {', '.join(SIZES)}")
    ks = [int(x) for x in args.k.split(",")]
    dtypes = [d.strip() for d in args.dtypes.split(",")]
    cores = os.cpu_count() or 1

    try:
        wrapper, library = libmf_avx.build()
        avx = libmf_avx.load(wrapper, library, "libmf_avx_wrapper")
        avx_note = None
    except libmf_avx.Unavailable as exc:
        avx, avx_note = None, str(exc)
        print(f"LIBMF-AVX skipped: {exc}", file=sys.stderr)
    pypi_wrapper = libmf_avx.installed_wrapper()
    pypi = libmf_avx.load(pypi_wrapper, None, "libmf_pypi_wrapper") if pypi_wrapper else None
    extras = {}
    for name, module in (("surprise", "surprise"), ("lenskit-funksvd", "lenskit.funksvd")):
        try:
            __import__(module)
            extras[name] = True
        except ImportError:
            extras[name] = False

    rows = []

    def record(size, k, dtype, impl, threads, result, base):
        seconds, rmse, peak = result
        ns = seconds / n_train * 1e9
        ratio = ns / base if base else None
        rows.append((size, k, dtype, impl, threads, ns, ratio, rmse, peak))
        ratio_text = f"{ratio:.2f}x" if ratio else "-"
        peak_text = f"  peak RSS {peak / 2**30:.2f} GiB" if peak else ""
        print(f"{size:>5} k={k:<3} {dtype:7} {impl:22} {threads}t {ns:8.1f} ns  {ratio_text:>6}"
              f"  valid RMSE {rmse:.4f}{peak_text}", flush=True)

    for size in sizes:
        train, valid = make_data(size)
        n_train = len(train)
        print(f"# {size}: {n_train:,} training ratings, {len(valid[2]):,} held out", flush=True)
        for k in ks:
            base = {}
            if avx is not None:
                for threads in sorted({1, cores}):
                    result = run_libmf(avx, train, valid, k, args.epochs, threads)
                    base[threads] = result[0] / n_train * 1e9
                    record(size, k, "float32", "LIBMF-AVX", threads, result, None)
            if pypi is not None:
                record(size, k, "float32", "libmf (PyPI)", 1,
                       run_libmf(pypi, train, valid, k, args.epochs, 1), base.get(1))
            if size == "1m" and extras["surprise"]:
                record(size, k, "float64", "scikit-surprise SVD", 1,
                       run_surprise(train, valid, k, args.epochs), base.get(1))
            if size == "1m" and extras["lenskit-funksvd"]:
                try:
                    record(size, k, "float64", "lenskit FunkSVD", 1,
                           run_lenskit(train, valid, k, args.epochs), base.get(1))
                except Exception as exc:  # its API changes between releases
                    print(f"lenskit-funksvd failed: {exc}", file=sys.stderr)
            for dtype in dtypes:
                if not args.no_reference:
                    record(size, k, dtype, "recsys reference", 1,
                           run_reference(train, valid, k, dtype, args.epochs), base.get(1))
                for threads in sorted({1, cores}):
                    record(size, k, dtype, "recsys blocked", threads,
                           run_ours(train, valid, k, dtype, args.epochs, threads),
                           base.get(threads))
        del train, valid
        gc.collect()

    text = report(rows, args, cores, avx_note, extras, pypi is not None)
    if args.output != "-":
        print(f"wrote {write_section('bench_sgd', text, args.output)}")
    else:
        print(text)
    return 0


def report(rows, args, cores, avx_note, extras, have_pypi) -> str:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## Training speed",
        "",
        f"Measured {now} on {machine()} by `python scripts/bench_sgd.py "
        f"--sizes {args.sizes} --k {args.k} --dtypes {args.dtypes} --epochs {args.epochs}`.",
        "",
        "ns per rating per epoch (marginal: epochs 2..N, or the difference of 1- and "
        "N-epoch fits), in CPU time of the process for 1 thread (so that time-sharing the "
        "cores with other programs does not count) and in wall time for more; "
        "ratio: against LIBMF-AVX with the same threads in the same run "
        "(float32 LIBMF for both dtypes; lower is better); RMSE on a 2% hold-out after "
        f"{args.epochs} epochs (lr {LR}, reg {REG}; LIBMF uses its own adaptive step, eta 0.1, "
        "L2 0.05, and no biases). Peak RSS: the process's high-water mark during the fit, "
        "data included.",
        "",
        "| ratings | k | dtype | implementation | threads | ns/rating | vs LIBMF-AVX "
        "| valid RMSE | peak RSS |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for size, k, dtype, impl, threads, ns, ratio, rmse, peak in rows:
        lines.append(
            f"| {size.upper()} | {k} | {dtype} | {impl} | {threads} | {ns:.1f} | "
            f"{f'{ratio:.2f}x' if ratio else '-'} | "
            f"{'-' if rmse != rmse else f'{rmse:.4f}'} | "
            f"{f'{peak / 2**30:.2f} GiB' if peak else '-'} |")
    speedups = []
    for size, k, dtype, impl, threads, ns, *_ in rows:
        if impl == "recsys blocked" and threads > 1:
            one = [r[5] for r in rows if r[:4] == (size, k, dtype, impl) and r[4] == 1]
            if one:
                speedups.append(f"{size.upper()} k={k} {dtype}: {one[0] / ns:.2f}x")
    if speedups:
        lines += ["", f"Speed-up of `FunkSVD.fit` on {cores} threads over 1: "
                  + "; ".join(speedups) + "."]
    skipped = []
    if avx_note:
        skipped.append(f"LIBMF-AVX ({avx_note})")
    if not have_pypi:
        skipped.append("PyPI libmf (not installed)")
    skipped += [f"{name} (not installed)" for name, ok in extras.items() if not ok]
    if skipped:
        lines += ["", "Not measured in this run: " + ", ".join(skipped) + "."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
