"""Load benchmark: ``read_ratings`` against ``pandas.read_csv`` on an ml-25m-shaped CSV.

The CSV (25,000,095 rows of ``user,item,rating,timestamp``, half stars, like ml-25m) is
generated once by ``recsys.data.synth`` into a cache folder outside git (``.bench-cache/``, or
``$RECSYS_BENCH_CACHE``) and reused. Each reader then runs in a fresh subprocess that
reports its wall time and peak resident memory (``resource.getrusage``, checked against
``VmHWM``), next to the memory the process held after its imports, so the figures of
both readers are measured the same way in the same run. The CSV is generated in a
subprocess too: Linux carries a parent's peak RSS over into a forked child's getrusage,
so this process stays small.

    python scripts/bench_load.py                # 25M rows
    python scripts/bench_load.py --rows 2000000 # a quicker check
    python scripts/bench_load.py --fallback     # also ours without the compiled kernel
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time
import numpy as np, pandas as pd
from recsys.data.readers import read_ratings

def status_kib(key):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])

which, path = sys.argv[1], sys.argv[2]
base = status_kib("VmRSS")
start = time.perf_counter()
if which.startswith("ours"):
    if which == "ours-fallback":  # the pandas pass, as files not in plain form get
        from recsys.data.readers import compiled
        compiled._KERNEL_BYTES = 1 << 62
    r = read_ratings(path, scale=(0.5, 5.0))
    rows = len(r)
    held = sum(a.nbytes for a in (r.users, r.items, r.values, r.timestamps))
else:
    frame = pd.read_csv(path)
    rows = len(frame)
    held = int(frame.memory_usage(index=False).sum())
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_kib": peak, "hwm_kib": status_kib("VmHWM"),
                  "base_kib": base, "rows": rows, "held_bytes": held}))
"""


def _cache_dir() -> Path:
    return Path(os.environ.get("RECSYS_BENCH_CACHE", ROOT / ".bench-cache"))


def ensure_csv(rows: int) -> Path:
    """The benchmark CSV, generated on first use (about ten seconds for 25M rows)."""
    sys.path.insert(0, str(ROOT))
    from recsys.data.synth import SHAPES, SynthSpec, generate, write_csv

    n_users, n_items, n_ratings = SHAPES["ml-25m"]
    if rows != n_ratings:  # keep the shape: users and items scale with the ratings
        f = rows / n_ratings
        n_users, n_items = max(int(n_users * f), 100), max(int(n_items * f ** 0.5), 100)
    path = _cache_dir() / f"ml25m-shaped-{rows}.csv"
    if path.is_file():
        print(f"reusing {path}", file=sys.stderr)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    ratings, _ = generate(SynthSpec(n_users=n_users, n_items=n_items, n_ratings=rows,
                                    scale="half", seed=0))
    generated = time.perf_counter() - start
    ratings.timestamps += 789_652_009 - 874_724_710  # ml-25m starts in 1995
    write_csv(ratings, path)
    print(f"generated {rows:,} ratings in {generated:.1f} s, wrote {path} in "
          f"{time.perf_counter() - start - generated:.1f} s",
          file=sys.stderr)
    return path


def run_child(which: str, path: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", CHILD, which, str(path)], env=env,
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=25_000_095)
    parser.add_argument("--repeat", type=int, default=3,
                        help="Runs of each reader, alternating; the best run is reported.")
    parser.add_argument("--fallback", action="store_true",
                        help="Also time read_ratings with the compiled kernel off.")
    parser.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate_only:
        print(ensure_csv(args.rows))
        return
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    made = subprocess.run([sys.executable, __file__, "--rows", str(args.rows), "--generate-only"],
                          env=env, check=True, stdout=subprocess.PIPE, text=True)
    path = Path(made.stdout.strip().splitlines()[-1])
    size = path.stat().st_size
    runs = {"ours": [], "pandas": []}
    if args.fallback:
        runs["ours-fallback"] = []
    for _ in range(args.repeat):  # alternate, so both see the same machine load
        for which in runs:
            runs[which].append(run_child(which, path))
    results = {which: min(rs, key=lambda r: r["seconds"]) for which, rs in runs.items()}
    for which, rs in runs.items():
        print(f"{which} seconds per run: " + ", ".join(f"{r['seconds']:.2f}" for r in rs))
    target = args.rows * 20  # int32 user, int32 item, float32 rating, int64 timestamp
    mib = 2**20
    print(f"file: {path.name}, {size / mib:,.0f} MiB, {args.rows:,} rows; final arrays "
          f"{target / mib:,.0f} MiB (20 bytes a rating)")
    print(f"best of {args.repeat} runs each")
    print(f"{'reader':<28}{'seconds':>9}{'peak MiB':>10}{'imports MiB':>13}"
          f"{'peak-imports':>14}{'held MiB':>10}")
    labels = {"ours": "recsys.read_ratings", "ours-fallback": "read_ratings, pandas pass",
              "pandas": "pandas.read_csv (defaults)"}
    for which, label in labels.items():
        if which not in results:
            continue
        r = results[which]
        peak, base = r["peak_kib"] / 1024, r["base_kib"] / 1024
        print(f"{label:<28}{r['seconds']:9.2f}{peak:10,.0f}{base:13,.0f}{peak - base:14,.0f}"
              f"{r['held_bytes'] / mib:10,.0f}")
        assert r["rows"] == args.rows, r
        assert abs(r["hwm_kib"] - r["peak_kib"]) < 0.05 * r["peak_kib"], r  # same peak
    ours, pandas = results["ours"], results["pandas"]
    print(f"time ours/pandas: {ours['seconds'] / pandas['seconds']:.2f}x; peak memory "
          f"ours/pandas: {ours['peak_kib'] / pandas['peak_kib']:.2f}x; ours above imports / "
          f"final arrays: {(ours['peak_kib'] - ours['base_kib']) * 1024 / target:.2f}x")
    if "ours-fallback" in results:
        fb = results["ours-fallback"]
        print(f"pandas pass: time / pandas: {fb['seconds'] / pandas['seconds']:.2f}x; above "
              f"imports / final arrays: {(fb['peak_kib'] - fb['base_kib']) * 1024 / target:.2f}x")


if __name__ == "__main__":
    main()
