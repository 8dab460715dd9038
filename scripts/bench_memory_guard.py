"""The memory guard against measured peaks: each fit's estimate (``memory_estimate``, what
``fit`` checks before it starts) beside the peak RSS it really adds.

Each case runs in a subprocess of its own (``recsys.testing.memprobe``, which says how
the increment is measured: the peak RSS of the fit above the resident size before it,
by the kernel's counter). The estimate must be at least the increment, and not far above
it. The table also gives the check before this calibration (train's estimate then:
factors, two copies of the ratings, the seen-items index; nothing for reg='auto', SVD++
or the ranking objective beyond it).

    python scripts/bench_memory_guard.py                      # every case (~3 min, 2 cores)
    python scripts/bench_memory_guard.py --sizes 100k --k 32  # a quick subset
    python scripts/bench_memory_guard.py --output -           # print only
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

#: Data shapes (users, items, ratings): MovieLens 100k and 1M, a 3M one of ml-1m's
#: density, a sparse one where the factors outweigh the ratings, and ml-10m's, where
#: every array is large enough to be given back to the system when freed.
SHAPES = {
    "100k": (943, 1_682, 100_000),
    "1m": (6_040, 3_706, 1_000_000),
    "3m": (18_000, 8_000, 3_000_000),
    "1m-sparse": (150_000, 40_000, 1_000_000),
    "10m": (69_878, 10_677, 10_000_000),
}
#: Cases: name -> (estimator, parameters). Two epochs each: the peak does not grow with
#: epochs.
CASES = {
    "sgd": ("FunkSVD", {"reg": 0.05}),
    "sgd auto": ("FunkSVD", {"reg": "auto"}),
    "sgd early-stop": ("FunkSVD", {"reg": 0.05, "early_stopping": 2}),
    "gd": ("FunkSVD", {"reg": 0.05, "method": "gd"}),
    "funk": ("FunkSVD", {"reg": 0.05, "method": "funk", "n_epochs": 1}),
    "svdpp": ("SVDpp", {"reg": 0.05}),
    "svdpp auto": ("SVDpp", {"reg": "auto"}),
    "ranking": ("RankingMF", {}),
    "hybrid": ("HybridMF", {"reg": 0.05}),
}
#: The cases run at the larger sizes (every case runs at 100k and 1M).
LARGE_CASES = ("sgd", "sgd auto", "svdpp", "ranking")


def _params(case: str, k: int, dtype: str) -> tuple[str, dict]:
    name, params = CASES[case]
    params = {"n_epochs": 2, "seed": 1, "dtype": dtype, "n_factors": k, **params}
    if name == "HybridMF":
        params.pop("n_epochs")
        params["ranking_factors"] = k
    return name, params


def old_check(row: dict) -> int:
    """What train checked before this calibration (factors, two copies of the ratings
    it trains on, the seen-items index), and nothing else in the fit."""
    n, u, i = row.get("trained", row["ratings"]), row["users"], row["items"]
    return (u + i) * (row["k"] + 1) * 4 + 28 * n + 8 * (u + 1)


def run_case(case: str, size: str, k: int, dtype: str) -> dict:
    name, params = _params(case, k, dtype)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-m", "recsys.testing.memprobe", name,
                          json.dumps(params), *map(str, SHAPES[size])],
                         capture_output=True, text=True, check=True, env=env)
    row = json.loads(out.stdout.strip().splitlines()[-1])
    return {**row, "case": case, "size": size, "k": k, "dtype": dtype}


def table(rows: list[dict]) -> str:
    mib = 2.0**20
    lines = ["| case | ratings (users × items) | k | old check | estimate | measured | "
             "estimate / measured |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = r["estimate"] / max(r["measured"], 1)
        lines.append(f"| {r['case']} | {r['ratings']:,} ({r['users']:,} × {r['items']:,}) | "
                     f"{r['k']} | {old_check(r) / mib:,.1f} MiB | "
                     f"{r['estimate'] / mib:,.1f} MiB | {r['measured'] / mib:,.1f} MiB | "
                     f"{ratio:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(SHAPES))
    parser.add_argument("--k", default="32,128")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--save", default=None, help="also write the rows as JSON here")
    parser.add_argument("--output", default=None, help="'-': print only (default: "
                        "docs/benchmarks.md)")
    args = parser.parse_args(argv)

    from bench_sgd import machine

    rows = []
    start = time.perf_counter()
    for size in args.sizes.split(","):
        for k in map(int, args.k.split(",")):
            for case in args.cases.split(","):
                if size not in ("100k", "1m") and case not in LARGE_CASES:
                    continue
                row = run_case(case, size, k, args.dtype)
                rows.append(row)
                print(f"{case:15s} {size:9s} k={k:3d}: old {old_check(row) / 2**20:7.1f}, "
                      f"estimate {row['estimate'] / 2**20:7.1f} MiB, measured "
                      f"{row['measured'] / 2**20:7.1f} MiB "
                      f"({row['estimate'] / max(row['measured'], 1):.2f}x, fit "
                      f"{row['seconds']:.1f} s)", flush=True)
    if args.save:
        Path(args.save).write_text(json.dumps(rows, indent=1))
    low = [r for r in rows if r["estimate"] < r["measured"]]
    ratios = [r["estimate"] / max(r["measured"], 1) for r in rows]
    olds = [old_check(r) / max(r["measured"], 1) for r in rows]
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    text = "\n".join([
        "## Memory guard: estimate against measured peak",
        "",
        f"Measured {now} on {machine()} by `python scripts/bench_memory_guard.py` "
        f"({args.dtype}, two epochs, 2 threads, {time.perf_counter() - start:.0f} s in all). "
        "Estimate: "
        "the model's `memory_estimate(ratings)`, which `fit` checks against the available "
        "memory before it starts; measured: the peak RSS of the fit above the resident "
        "size before it (the ratings, the interpreter and the compiled kernels), by the "
        "kernel's counter (VmHWM after /proc/self/clear_refs, the heap trimmed first); "
        "old check: what `train` checked before this calibration.",
        "",
        table(rows),
        "",
        f"Estimate / measured: {min(ratios):.2f} to {max(ratios):.2f}; "
        + (f"{len(low)} cases underestimated" if low else "no case underestimated")
        + f"; the old check / measured: {min(olds):.2f} to {max(olds):.2f}.",
    ])
    print(text)
    if args.output != "-":
        from benchdoc import DOC, write_section

        print(f"wrote {write_section('bench_memory_guard', text, args.output or DOC)}")
    return 1 if low else 0


if __name__ == "__main__":
    sys.exit(main())
