"""Peak memory and epoch time of one large fit: 25M MovieLens-shaped or 100M Netflix-shaped.

Generates the ratings, frees the generator's temporaries, resets the kernel's peak-RSS
mark (/proc/self/clear_refs), fits on all cores and reads the peak (VmHWM). The table
gives the resident size before the fit (interpreter, libraries, the ratings), the peak
during it, and what the fit is expected to add: its ``memory_estimate`` (what ``fit``
checks before it starts; scripts/bench_memory_guard.py compares it with measured peaks).

    python scripts/bench_memory.py --size 25m --epochs 3
    python scripts/bench_memory.py --size 100m --epochs 20
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sgd import SIZES, machine, rss_peak, rss_reset  # noqa: E402
from benchdoc import DOC, write_section  # noqa: E402

from recsys import FunkSVD  # noqa: E402
from recsys.data.ratings import Ratings  # noqa: E402
from recsys.data.synth import SHAPES, SynthSpec, generate  # noqa: E402


def rss_now() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="25m", choices=["10m", "25m", "100m"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--k", type=int, default=128)
    parser.add_argument("--output", default=str(DOC), help="'-': print only")
    args = parser.parse_args(argv)

    n_users, n_items, n = SHAPES[SIZES[args.size]]
    start = time.perf_counter()
    made_ratings, truth = generate(SynthSpec(n_users=n_users, n_items=n_items, n_ratings=n,
                                             seed=1))
    # keep what a user's file would give: ids and ratings (no timestamps, no ground truth)
    ratings = Ratings(made_ratings.users, made_ratings.items, made_ratings.values,
                      made_ratings.user_map, made_ratings.item_map)
    del made_ratings, truth
    made = time.perf_counter() - start
    gc.collect()
    before = rss_now()
    rss_reset()
    model = FunkSVD(n_factors=args.k, n_epochs=args.epochs, lr=0.005, reg=0.02)
    start = time.perf_counter()
    model.fit(ratings)
    total = time.perf_counter() - start
    peak = rss_peak() or 0
    epochs = sum(h["seconds"] for h in model.history_)
    expected = model.memory_estimate(ratings)
    gib = 2.0**30
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    row = (f"| {args.size.upper()} ({n_users:,} × {n_items:,}) | {args.k} | {args.epochs} | "
           f"{epochs:.1f} s ({epochs / args.epochs / len(ratings) * 1e9:.1f} ns/rating) | "
           f"{total - epochs:.1f} s | {before / gib:.2f} GiB | {peak / gib:.2f} GiB | "
           f"{(peak - before) / gib:.2f} GiB | {expected / gib:.2f} GiB |")
    text = "\n".join([
        f"## Memory of a large fit: {args.size.upper()}",
        "",
        f"Measured {now} on {machine()} by `python scripts/bench_memory.py --size "
        f"{args.size} --epochs {args.epochs}` (float32, all cores; generating the data took "
        f"{made:.0f} s and is not counted).",
        "",
        "| ratings | k | epochs | time in epochs | set-up in fit | RSS before fit | "
        "peak RSS in fit | fit's own | expected |",
        "|---|---|---|---|---|---|---|---|---|",
        row,
    ])
    print(text)
    if args.output != "-":
        print(f"wrote {write_section('bench_memory_' + args.size, text, args.output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
