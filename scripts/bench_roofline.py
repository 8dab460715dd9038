"""The SGD kernel against this CPU's compute and memory limits, measured in one run.

What one rating costs the plain float32 kernel (``recsys.kernels.cpu.sgd.sgd_step``) at k
factors: the dot product p_u · q_i (k FMAs, reading both rows), then the update
p ← (1 − λγ) p + (λe) q and q ← (1 − λγ) q + (λe) p (per element a multiply and an FMA
for each row: 2k multiplies and 2k FMAs, reading both rows again and writing them). So
3k FMAs and 2k multiplies, 8k floating-point operations; 4k loads and 2k stores of
4 bytes. From memory, a rating needs at most both rows in and out (4 · 4k bytes) and its
own 12 bytes; in the blocked order a user's row stays in L1 across the user's ratings of
a block and the block's item rows (n_items / grid of them) stay in L2, so it is mostly
served from cache.

Ceilings, measured here on one thread:

- compute: single-precision matrix multiply (numpy's BLAS, one thread), in GFLOP/s;
- memory: a streaming copy of 2 × 256 MiB (read + write, numpy), in GB/s;
- the kernel with everything in cache: the block kernel over ratings of 16 users × 16
  items (16 KiB of rows: L1) and of 256 × 256 (256 KiB: L2, about a block of a 1M fit),
  in user order as in a fit (each rating's p_u was written by the rating before: a chain
  of dependent loads and stores) and in random order.

Then the kernel's rate on generated MovieLens-shaped ratings (1M and 10M; per run one
blocked fit on one thread of two plain epochs, timed on the second) and its ratios to each
ceiling. In cache and in the fits, runs with P and Q 48 bytes into a cache line (where
numpy's allocations put them before fits aligned them, ``recsys.aligned``) alternate with
the aligned runs, and their ratio is printed. Every figure is the median of ``--runs``
runs with their range.

    python scripts/bench_roofline.py [--sizes 1m,10m] [--k 128] [--runs 3]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # the BLAS ceiling is one thread's
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import functools  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from recsys import FunkSVD  # noqa: E402
from recsys.data.synth import SHAPES, SynthSpec, generate  # noqa: E402

SIZES = {"1m": "ml-1m", "10m": "ml-10m"}
#: Where numpy's allocations of the factors often started before fits aligned them.
MISALIGNED = 48


def timed_runs(fn, runs):
    """Each run's seconds (wall; the runs alternate with nothing else in between)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def gemm_gflops(runs) -> list[float]:
    n = 1024
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    a @ b  # warm
    return [2 * n ** 3 / t / 1e9 for t in timed_runs(lambda: a @ b, runs)]


def copy_gbs(runs) -> list[float]:
    src = np.ones(64 * 2 ** 20, dtype=np.float32)  # 256 MiB, far beyond any cache
    dst = np.empty_like(src)
    np.copyto(dst, src)  # the pages touched once before timing
    return [2 * src.nbytes / t / 1e9 for t in timed_runs(lambda: np.copyto(dst, src), runs)]


def rows_at(shape, offset, rng):
    """N(0, 0.1²) float32 rows whose data start ``offset`` bytes into a cache line."""
    from recsys import aligned

    rows = aligned.empty(shape, np.float32, offset)
    rows[...] = rng.normal(0, 0.1, shape)
    return rows


def kernel_in_cache(k, runs, side, by_user=True, offsets=(0,)) -> dict:
    """Ratings/s of the block kernel over ratings of ``side`` users × ``side`` items (all
    rows in cache): in user order as in a fit's blocks (each rating's p_u is the one the
    rating before it just wrote), or in random order (consecutive ratings mostly
    independent); per offset of P and Q into a cache line, the offsets' runs alternated."""
    from recsys.kernels.cpu.sgd import _sgd_block

    rng = np.random.default_rng(0)
    n = 2_000_000
    users = rng.integers(0, side, n).astype(np.int32)
    if by_user:
        users = np.sort(users)
    items = rng.integers(0, side, n).astype(np.int32)
    values = rng.uniform(1, 5, n).astype(np.float32)
    bu, bi = np.zeros(side, np.float32), np.zeros(side, np.float32)
    calls = {}
    for offset in offsets:
        args = (users, items, values, 0, n, np.float32(3.5), bu, bi,
                rows_at((side, k), offset, rng), rows_at((side, k), offset, rng),
                np.float32(0.001), np.float32(0.05), np.float32(0.01))
        _sgd_block(*args)  # compiled (or loaded) before timing
        calls[offset] = (lambda a=args: _sgd_block(*a))
    rates = {offset: [] for offset in offsets}
    for _ in range(runs):
        for offset, call in calls.items():
            rates[offset].append(n / timed_runs(call, 1)[0])
    return rates


def kernel_on(size, k, runs, offsets=(0,)) -> dict:
    """Ratings/s of the blocked one-thread fit on generated data, per offset of the
    factors into a cache line (0: where fits put them, ``recsys.aligned``; else as if
    numpy's allocation had started that far in). Each run is one fit of two plain SGD
    epochs (no warm-up) timed on its second; the offsets' fits alternate."""
    from recsys import aligned

    n_users, n_items, n = SHAPES[SIZES[size]]
    ratings, _ = generate(SynthSpec(n_users=n_users, n_items=n_items, n_ratings=n, seed=1))
    on_a_line = aligned.empty
    rates = {offset: [] for offset in offsets}
    for _ in range(runs):
        for offset in offsets:
            aligned.empty = functools.partial(on_a_line, offset=offset)
            try:
                model = FunkSVD(n_factors=k, n_epochs=2, reg=0.05, lr=0.005, n_jobs=1,
                                warmup_epochs=0, early_stopping=0).fit(ratings)
            finally:
                aligned.empty = on_a_line
            rates[offset].append(len(ratings) / model.history_[1]["seconds"])
    return rates


def spread(values, unit, scale=1.0):
    med = statistics.median(values) * scale
    return (f"{med:.1f} {unit} ({min(values) * scale:.1f}..{max(values) * scale:.1f}, "
            f"{len(values)} runs)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1m,10m")
    parser.add_argument("--k", type=int, default=128)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    k = args.k
    flops, fmas, loads, stores = 8 * k, 3 * k, 4 * k, 2 * k
    most_bytes = 4 * 4 * k + 12
    print(f"# per rating at k={k}: {fmas} FMAs + {2 * k} multiplies = {flops} flops; "
          f"{loads} loads and {stores} stores of 4 bytes; at most {most_bytes} bytes from "
          "memory (both rows in and out, and the rating)")
    gemm = gemm_gflops(args.runs)
    copy = copy_gbs(args.runs)
    print(f"compute ceiling, sgemm 1024^3 on one thread: {spread(gemm, 'GFLOP/s')}")
    print(f"memory ceiling, copy of 256 MiB: {spread(copy, 'GB/s')}")
    cached = {}
    for side, where in ((16, "L1"), (256, "L2")):
        both = kernel_in_cache(k, args.runs, side, offsets=(0, MISALIGNED))
        ordered, split = both[0], both[MISALIGNED]
        shuffled = kernel_in_cache(k, args.runs, side, by_user=False)[0]
        cached[where] = statistics.median(ordered)
        rows = 2 * side * k * 4 // 1024
        print(f"kernel on {side} users x {side} items ({rows} KiB of rows, {where}), user "
              f"order: {spread(ordered, 'M ratings/s', 1e-6)} = "
              f"{cached[where] * flops / 1e9:.1f} GFLOP/s "
              f"({cached[where] * flops / 1e9 / statistics.median(gemm):.0%} of sgemm's); "
              f"random order {spread(shuffled, 'M ratings/s', 1e-6)} "
              f"({statistics.median(shuffled) / cached[where]:.2f}x); rows {MISALIGNED} "
              f"bytes into a line {spread(split, 'M ratings/s', 1e-6)} "
              f"({statistics.median(split) / cached[where]:.2f}x)")
    for size in args.sizes.split(","):
        both = kernel_on(size, k, args.runs, offsets=(0, MISALIGNED))
        rates, split = both[0], both[MISALIGNED]
        rate = statistics.median(rates)
        share = rate * flops / 1e9 / statistics.median(gemm)
        print(f"{size}: kernel {spread(rates, 'M ratings/s', 1e-6)} = "
              f"{rate * flops / 1e9:.1f} GFLOP/s ({share:.0%} of sgemm's); "
              f"{rate / cached['L2']:.0%} of the in-L2 rate; if "
              f"every row came from memory {rate * most_bytes / 1e9:.1f} GB/s "
              f"({rate * most_bytes / 1e9 / statistics.median(copy):.0%} of the copy's); "
              f"factors {MISALIGNED} bytes into a line {spread(split, 'M ratings/s', 1e-6)} "
              f"({statistics.median(split) / rate:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
