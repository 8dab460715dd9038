"""Hostile-input benchmark: peak memory and seconds to the error for decompression bombs
and huge fields.

Each case is a small file that would hold gigabytes if a reader took it whole: gzip that
expands to one endless line or to hundreds of millions of identical lines (with duplicates
an error, as by default, and allowed), a plain file with a huge field, and an endless line
piped to standard input. Every case is read by ``read_ratings`` in a fresh subprocess that
reports the seconds to the DataError, its peak resident memory (``getrusage``) and the
memory it held after its imports; the message is printed shortened.

    python scripts/bench_hostile_inputs.py            # bombs of 4 GiB
    python scripts/bench_hostile_inputs.py --gib 16   # bigger ones (the same few MiB more)
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIB = 1 << 20

CHILD = r"""
import json, resource, sys, time
from recsys.data.readers import read_ratings
from recsys.errors import DataError

def rss_kib():
    with open("/proc/self/status") as fh:
        return next(int(ln.split()[1]) for ln in fh if ln.startswith("VmRSS:"))

path, options = sys.argv[1], json.loads(sys.argv[2])
base = rss_kib()
start = time.perf_counter()
try:
    read_ratings(path, **options)
    error = None
except DataError as exc:
    error = str(exc)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_kib": peak, "base_kib": base, "error": error}))
"""


def bomb(path: Path, first: bytes, unit: bytes, gib: int) -> Path:
    """gzip of ``first`` then ``unit`` repeated to ``gib`` GiB (one 64 MiB member, written
    again and again: members may follow each other)."""
    member = gzip.compress(unit * ((64 * MIB) // len(unit)), 6)
    with open(path, "wb") as fh:
        fh.write(gzip.compress(first))
        for _ in range(gib * 16):
            fh.write(member)
    return path


def run(path: Path, options: dict, stdin: Path | None = None) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    target = "-" if stdin is not None else str(path)
    with open(stdin or os.devnull, "rb") as fh:
        out = subprocess.run([sys.executable, "-c", CHILD, target, json.dumps(options)],
                             stdin=fh, env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=int, default=4, help="What each bomb expands to.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="recsys-bench-hostile-") as folder:
        folder = Path(folder)
        endless = bomb(folder / "endless.csv.gz", b"1,1,5\n1,", b"a", args.gib)
        same = bomb(folder / "same.csv.gz", b"user,item,rating\n", b"1,1,5\n", args.gib)
        field = folder / "field.csv"
        with open(field, "wb") as fh:
            fh.write(b"1,1,5\n2,1,")
            for _ in range(256):  # a 256 MiB field
                fh.write(b"7" * MIB)
            fh.write(b"\n")
        cases = [
            (f"endless line, gzip ({args.gib} GiB)", endless, {}, None),
            (f"identical lines, gzip ({args.gib} GiB)", same, {}, None),
            (f"same, --duplicates last ({args.gib} GiB)", same, {"duplicates": "last"}, None),
            ("256 MiB field, plain", field, {}, None),
            (f"endless line, gzip on stdin ({args.gib} GiB)", endless, {}, endless),
        ]
        print(f"{'case':<40}{'file MiB':>9}{'seconds':>9}{'peak MiB':>10}{'imports MiB':>13}")
        for label, path, options, stdin in cases:
            r = run(path, options, stdin)
            assert r["error"] is not None, label
            print(f"{label:<40}{path.stat().st_size / MIB:9.1f}{r['seconds']:9.2f}"
                  f"{r['peak_kib'] / 1024:10.0f}{r['base_kib'] / 1024:13.0f}")
            print(f"    {r['error'][:150]}")


if __name__ == "__main__":
    main()
