"""GPU training speed and accuracy: FunkSVD(device='cuda') against the CPU in the same run.

For each data size (MovieLens-10M and Netflix shapes, synthetic: ``recsys.data.synth``)
and k (32 and 128): FunkSVD in float32, N epochs (20), lr 0.005, reg 0.02, on the CPU
(all cores) and on the GPU ('cuda': Hogwild; add 'cuda-strata' with --devices). Each row:

* ns per rating per epoch: the mean of epochs 2..N as the training loop times them (the
  first also pays for compiling the kernels and copying to the GPU); a GPU epoch ends
  when its Σ e² is back on the host, so its time is the GPU's, not the launch's;
* validation RMSE after N epochs on 2% of the ratings, held out;
* end-to-end seconds: reading the training CSV (written once, untimed), grouping, the
  copy to the device, the N epochs, the copy back, writing the model file.

With no GPU it says so and exits 0. ``--simulate`` runs a toy size in numba's CUDA
simulator instead, to show the script works: its times mean nothing.

    python scripts/bench_gpu.py                   # 10m and 100m, k 32 and 128
    python scripts/bench_gpu.py --sizes 10m --k 128 --devices cpu,cuda,cuda-strata
    python scripts/bench_gpu.py --simulate
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

SIZES = {"10m": "ml-10m", "100m": "netflix"}
TOY = (40, 30, 400)  # users, items, ratings of --simulate
LR, REG = 0.005, 0.02
HOLDOUT = 0.02


def make_data(size: str, folder: Path):
    """(path of the training CSV, held-out raw users, items, values)."""
    import numpy as np
    import pandas as pd

    from recsys.data.synth import SHAPES, SynthSpec, generate

    n_users, n_items, n = TOY if size == "toy" else SHAPES[SIZES[size]]
    ratings, _ = generate(SynthSpec(n_users=n_users, n_items=n_items, n_ratings=n, seed=1))
    test = np.random.default_rng(2).random(len(ratings)) < HOLDOUT
    users, items, values = ratings.raw_users, ratings.raw_items, ratings.values
    path = folder / f"{size}-train.csv"
    keep = ~test
    pd.DataFrame({"user": users[keep], "item": items[keep], "rating": values[keep]}).to_csv(
        path, index=False)
    return path, int(keep.sum()), (users[test], items[test], values[test].astype(np.float64))


def run(path, n_train, valid, k, device, epochs, folder):
    """(ns per rating per epoch, validation RMSE, end-to-end seconds) of one fit."""
    import numpy as np

    from recsys import FunkSVD

    seconds = []
    model = FunkSVD(n_factors=k, n_epochs=epochs, lr=LR, reg=REG, device=device)
    start = time.perf_counter()
    model.fit(str(path), callback=lambda info: seconds.append(info.seconds))
    model.save(folder / f"model-{device}.npz")
    end_to_end = time.perf_counter() - start
    timed = seconds[1:] or seconds
    ns = float(np.mean(timed)) / n_train * 1e9
    pred = model.predict(valid[0], valid[1]).astype(np.float64)
    rmse = math.sqrt(float(np.mean((pred - valid[2]) ** 2)))
    return ns, rmse, end_to_end


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10m,100m", help=f"of {', '.join(SIZES)}")
    parser.add_argument("--k", default="32,128")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--devices", default="cpu,cuda",
                        help="of cpu, cuda, cuda-strata (the first is the baseline)")
    parser.add_argument("--simulate", action="store_true",
                        help="a toy size in numba's CUDA simulator (proves the script runs)")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (epoch 1 is not timed)")
    devices = [d.strip() for d in args.devices.split(",")]
    sizes = [s.strip().lower() for s in args.sizes.split(",")]
    for s in sizes:
        if s not in SIZES:
            parser.error(f"unknown size {s!r}; choose from {', '.join(SIZES)}")
    ks = [int(x) for x in args.k.split(",")]
    if args.simulate:  # before numba is imported
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
        sizes, ks, args.epochs = ["toy"], [8], 2

    from recsys.errors import DeviceError
    from recsys.training.backends import require

    try:
        for device in devices:
            require(device)
    except DeviceError as exc:
        print(f"bench_gpu: no GPU to measure here ({exc})")
        return 0

    from numba import cuda

    gpu = "numba's CUDA simulator" if args.simulate else cuda.get_current_device().name
    gpu = gpu.decode() if isinstance(gpu, bytes) else gpu
    print(f"# {gpu}; CPU: {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores; float32, {args.epochs} epochs, lr {LR}, reg {REG}",
          flush=True)
    if args.simulate:
        print("# simulated: the times below mean nothing", flush=True)
    print(f"{'size':>5} {'k':>4} {'device':12} {'ns/rating/epoch':>16} {'speed-up':>9}"
          f" {'valid RMSE':>10} {'end-to-end s':>12}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for size in sizes:
            path, n_train, valid = make_data(size, folder)
            for k in ks:
                base = None
                for device in devices:
                    ns, rmse, total = run(path, n_train, valid, k, device, args.epochs, folder)
                    base = base or ns
                    print(f"{size:>5} {k:>4} {device:12} {ns:16.2f} {base / ns:8.2f}x"
                          f" {rmse:10.4f} {total:12.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
