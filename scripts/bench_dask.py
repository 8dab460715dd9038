"""Blocked SGD on Dask against the in-process fit, on generated ratings.

Per-epoch seconds of a fit on one Dask worker process with 2 threads beside the
in-process fit with 2 threads (the same data, parameters and seed, so the same model bit
for bit; runs alternated, the first epoch of each fit left out: it holds the start-up),
and the bytes of item blocks moved between workers per epoch with 2 and 3 worker
processes, beside two predictions. The exact one counts the hand-offs of the epoch's own
stratum order (``recsys.distributed.traffic``): each item block is handed on grid times
(to its stratum-0 worker, then from each stratum's to the next's), at a cost of its bytes
when the two workers differ. The expected one averages over random orders: two strata in
a row meet an item block with two *different* user blocks, on the same worker with
probability Σ n_w (n_w − 1) / (grid (grid − 1)) (n_w user blocks on worker w), and the
first hand-off of an epoch goes to a worker drawn independently of the holder (the same
one with probability Σ n_w² / grid²), so per epoch (Q + b_i) × [(grid − 1)(1 − Σ n_w (n_w
− 1) / (grid (grid − 1))) + 1 − Σ n_w² / grid²], a little above the rough grid × (W − 1)
/ W × (Q + b_i).

    python scripts/bench_dask.py                  # 1M ratings, 3 runs (~3 min, 2 cores)
    python scripts/bench_dask.py --ratings 10m --runs 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import time

import numpy as np

SHAPES = {"1m": (6_040, 3_706, 1_000_000), "10m": (69_878, 10_677, 10_000_000)}


def epoch_seconds(model) -> list[float]:
    return [h["seconds"] for h in model.history_[1:]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", choices=sorted(SHAPES), default="1m")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--factors", type=int, default=64)
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    from recsys import FunkSVD
    from recsys.data.synth import SynthSpec, generate
    from recsys.distributed.backend import DaskBackend

    n_users, n_items, n = SHAPES[args.ratings]
    ratings, _ = generate(SynthSpec(n_users=n_users, n_items=n_items, n_ratings=n, seed=1))
    # a fit on a cluster has no warm-up: the same settings in both processes
    params = dict(n_factors=args.factors, n_epochs=args.epochs, reg=0.05, seed=2, n_jobs=2,
                  warmup_epochs=0)
    print(f"# bench_dask: {n:,} generated ratings ({n_users:,} users, {n_items:,} items), "
          f"k={args.factors}, {args.epochs} epochs a fit, {args.runs} runs alternated; "
          f"{platform.node()}, {os.cpu_count()} cores, {dt.date.today()}")

    local_s, dask_s, same = [], [], True
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                      dashboard_address=":0", worker_dashboard_address=":0") as cluster, \
            Client(cluster, timeout=60) as client:
        client.wait_for_workers(1, timeout=60)
        FunkSVD(**{**params, "n_epochs": 1}).fit(ratings, client=client)  # compile there
        for _ in range(args.runs):
            t = time.perf_counter()
            local = FunkSVD(**params).fit(ratings)
            local_s.append(statistics.median(epoch_seconds(local)))
            wall_local = time.perf_counter() - t
            t = time.perf_counter()
            remote = FunkSVD(**params).fit(ratings, client=DaskBackend(client, timeout=600))
            dask_s.append(statistics.median(epoch_seconds(remote)))
            wall_dask = time.perf_counter() - t
            same &= all(np.array_equal(a, b) for a, b in zip(
                local.state_.factors.arrays(), remote.state_.factors.arrays()))
            print(f"run: in-process {local_s[-1]:.3f} s/epoch ({wall_local:.1f} s fit), "
                  f"1 Dask worker {dask_s[-1]:.3f} s/epoch ({wall_dask:.1f} s fit)")
    ratio = [d / m for d, m in zip(dask_s, local_s)]
    print(f"per-epoch seconds, median of runs (min-max): in-process "
          f"{statistics.median(local_s):.3f} ({min(local_s):.3f}-{max(local_s):.3f}), "
          f"1 Dask worker x 2 threads {statistics.median(dask_s):.3f} "
          f"({min(dask_s):.3f}-{max(dask_s):.3f}); ratio Dask / in-process "
          f"{statistics.median(ratio):.2f} ({min(ratio):.2f}-{max(ratio):.2f}); "
          f"models bit-identical: {same}")

    for workers in (2, 3):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=":0", worker_dashboard_address=":0") as cluster, \
                Client(cluster, timeout=60) as client:
            client.wait_for_workers(workers, timeout=60)
            fit = DaskBackend(client, timeout=600)
            model = FunkSVD(**{**params, "n_jobs": 1}).fit(ratings, client=fit)
            grid = fit.layout.grid
            item_bytes = n_items * (args.factors + 1) * 4
            n_w = np.array([last - first for first, last in map(
                fit.layout.user_blocks, range(workers))], dtype=np.float64)
            stay = (n_w * (n_w - 1)).sum() / (grid * (grid - 1))
            expected = item_bytes * ((grid - 1) * (1 - stay) + 1 - (n_w ** 2).sum() / grid**2)
            rough = grid * (workers - 1) / workers * item_bytes
            measured = statistics.median(fit.bytes_sent)
            secs = statistics.median(epoch_seconds(model))
            stats = fit.worker_stats
            # an epoch's wall time less its blocks' kernel time: waiting for item blocks
            # and handing them on (all epochs, the first included, per epoch)
            idle = [(st["epoch_seconds"] - st["kernel_seconds"] / st["threads"]) / args.epochs
                    for st in stats]
            waited = ", ".join(f"{s:.3f}" for s in idle)
            peaks = ", ".join(f"{st['peak_rss'] / 2**20:.0f}" for st in stats)
            mib = [f"{b / 2**20:.2f}" for b in fit.bytes_sent]
            print(f"{workers} workers x 1 thread: grid {grid}, item blocks moved per epoch "
                  f"{measured / 2**20:.1f} MiB (each epoch: {', '.join(mib)}); predicted "
                  f"from each epoch's order: equal in every epoch: "
                  f"{fit.bytes_sent == fit.bytes_predicted}; expected over random orders "
                  f"{expected / 2**20:.1f} MiB (rough grid x (W-1)/W x (Q + b_i): "
                  f"{rough / 2**20:.1f}; Q + b_i = {item_bytes / 2**20:.2f} MiB); "
                  f"{secs:.3f} s/epoch; of a worker's epoch not in the kernel (waiting for and "
                  f"handing on item blocks), by worker: "
                  f"{waited} s; peak memory by worker: {peaks} MiB")


if __name__ == "__main__":
    main()
