"""Start-up: seconds from typing a command to its first useful output.

Measured in fresh processes, against ``python -c pass`` in the same run:
``recsys --help``; ``import recsys``; and ``recsys train data/sample.csv`` up to the
first epoch line, once with an empty numba cache (everything compiles) and then with the
cache that run filled (``cache=True`` kernels load from disk).

    python scripts/bench_startup.py
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sgd import machine  # noqa: E402
from benchdoc import DOC, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RECSYS = [sys.executable, "-m", "recsys.cli"]


def seconds_to_exit(cmd, env) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True)
    return time.perf_counter() - start


def seconds_to_first_epoch(cmd, env) -> float:
    """Seconds until the command prints its first epoch line (a line starting with '1 ')."""
    start = time.perf_counter()
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True) as proc:
        for line in proc.stdout:
            if line.split()[:1] == ["1"]:
                elapsed = time.perf_counter() - start
                proc.kill()
                return elapsed
        proc.wait()
    raise RuntimeError(f"no epoch line from {' '.join(cmd)} (exit {proc.returncode})")


def best(fn, repeats):
    return min(fn() for _ in range(repeats))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=str(DOC), help="'-': print only")
    args = parser.parse_args(argv)

    cache = Path(tempfile.mkdtemp(prefix="recsys-numba-cache-"))
    out = cache / "model.npz"
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    train = [*RECSYS, "train", str(ROOT / "data" / "sample.csv"), "-o", str(out)]
    try:
        python = best(lambda: seconds_to_exit([sys.executable, "-c", "pass"], env),
                      args.repeats)
        helps = best(lambda: seconds_to_exit([*RECSYS, "--help"], env), args.repeats)
        imports = best(lambda: seconds_to_exit([sys.executable, "-c", "import recsys"], env),
                       args.repeats)
        cold = seconds_to_first_epoch(train, env)  # empty cache: compiles every kernel
        warm = best(lambda: seconds_to_first_epoch(train, env), args.repeats)
    finally:
        shutil.rmtree(cache, ignore_errors=True)

    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rows = [("`python -c pass` (baseline)", python),
            ("`recsys --help`", helps),
            ("`import recsys`", imports),
            ("`recsys train data/sample.csv` to epoch 1, empty numba cache", cold),
            ("`recsys train data/sample.csv` to epoch 1, cache filled", warm)]
    text = "\n".join([
        "## Start-up",
        "",
        f"Measured {now} on {machine()} by `python scripts/bench_startup.py` (best of "
        f"{args.repeats}, except the empty-cache run).",
        "",
        "| command | seconds | vs `python -c pass` |",
        "|---|---|---|",
        *[f"| {name} | {s:.2f} | {s / python:.1f}x |" for name, s in rows],
    ])
    print(text)
    if args.output != "-":
        print(f"wrote {write_section('bench_startup', text, args.output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
