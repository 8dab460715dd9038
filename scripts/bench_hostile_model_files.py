"""Model-file bombs: seconds to the error and peak memory of loading each one.

Builds the hostile files of ``recsys.testing.hostile`` from a small fitted model (an npy
header declaring 10^12 x 1000 floats, deflate bombs inflating to 2 GiB per member, a
17 MiB manifest of blanks deflated, duplicate members, a truncated member, float ids, an
object array, a manifest with a 10^400 shape) and loads each in a fresh process:
``recsys.load`` with the time to its error, the peak RSS of the process (VmHWM) and the
increment over the resident size before the load (the peak mark reset first).

    python scripts/bench_hostile_model_files.py               # this checkout
    python scripts/bench_hostile_model_files.py --recsys DIR  # the loader of another one
    python scripts/bench_hostile_model_files.py --output -    # print only
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

CHILD = """
import json, sys, time
from recsys.models.registry import load
def status(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
rss_now, rss_peak = (lambda: status("VmRSS")), (lambda: status("VmHWM"))
before = rss_now()
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")
start = time.perf_counter()
try:
    load(sys.argv[1])
    outcome = "loaded"
except Exception as exc:
    outcome = type(exc).__name__ + ": " + str(exc).split(": ", 1)[-1]
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peak": rss_peak(), "increment": rss_peak() - before,
                  "outcome": outcome}))
"""


def bombs(model_bytes: bytes) -> dict:
    from recsys.testing import hostile as H

    def array(name):
        return np.load(io.BytesIO(H.read_members(model_bytes)[1][f"{name}.npy"]))

    manifest, members = H.read_members(model_bytes)
    blank = json.dumps(manifest).encode() + b" " * (17 << 20)
    return {
        "valid model (for reference)": model_bytes,
        "npy header 10^12 x 1000, manifest unchanged":
            H.shape_bomb(model_bytes, (10**12, 1000), "unchanged"),
        "npy header 10^12 x 1000, manifest agrees":
            H.shape_bomb(model_bytes, (10**12, 1000), "same"),
        "npy headers 100 x 10^9, shapes consistent":
            H.shape_bomb(model_bytes, (1, 10**9), "consistent"),
        "deflate bomb, 2 x 2 GiB of zeros, true CRC":
            H.deflate_bomb(model_bytes, 2 << 30, exact_crc=True),
        "manifest of 17 MiB of blanks, deflated":
            H.zip_bytes(blank, members, {H.MANIFEST: 8}),
        "two members named user_factors.npy": H.duplicate_member(model_bytes),
        "member item_factors.npy cut in half": H.truncated_member(model_bytes),
        "float ids, manifest and checksum agree":
            H.with_arrays(model_bytes, {"user_ids": array("user_ids").astype(np.float64)}),
        "object array (pickle), manifest agrees":
            H.with_arrays(model_bytes, {"item_ids": array("item_ids").astype(object)}),
        "manifest shape [10^400, 3]": H.with_manifest(
            model_bytes, lambda m: H.set_path(m, ("arrays", "user_factors", "shape"),
                                              [10**400, 3])),
    }


def load_in_child(path: Path, recsys_dir: Path, timeout: float) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(recsys_dir), os.environ.get("PYTHONPATH")]))}
    try:
        out = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True,
                             text=True, env=env, timeout=timeout, cwd=tempfile.gettempdir())
    except subprocess.TimeoutExpired:
        return {"seconds": timeout, "peak": None, "increment": None,
                "outcome": f"still running after {timeout:.0f} s"}
    if out.returncode:
        return {"seconds": None, "peak": None, "increment": None,
                "outcome": f"process died ({out.returncode}): {out.stderr.strip()[-200:]}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recsys", default=str(HERE.parent),
                        help="folder holding the recsys package whose loader is measured")
    parser.add_argument("--compare", default=None, metavar="DIR",
                        help="also load each file with the recsys package in DIR (an "
                        "earlier version, say), side by side")
    parser.add_argument("--compare-label", default=None,
                        help="what to call --compare in the text (default: DIR)")
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--output", default=None, help="'-': print only (default: "
                        "docs/benchmarks.md)")
    args = parser.parse_args(argv)

    from bench_sgd import machine

    from recsys.data.synth import SynthSpec, generate
    from recsys.models.ranking import RankingMF

    ratings, _ = generate(SynthSpec(n_users=100, n_items=80, n_ratings=2_000, seed=7))
    work = Path(tempfile.mkdtemp(prefix="recsys-bombs-"))
    model_path = work / "model.npz"
    RankingMF(n_factors=3, n_epochs=2).fit(ratings).save(model_path)
    rows = []
    for name, data in bombs(model_path.read_bytes()).items():
        path = work / "hostile.npz"
        path.write_bytes(data)
        row = {"bomb": name, "bytes": len(data),
               **load_in_child(path, Path(args.recsys), args.timeout)}
        if args.compare:
            row["other"] = load_in_child(path, Path(args.compare), args.timeout)
        rows.append(row)
        print(json.dumps(row), flush=True)
    mib = 2.0**20

    def fmt(value, unit):
        if value is None:
            return "-"
        return f"{value * 1000:.1f} ms" if unit == "s" else f"{value / mib:,.0f} MiB"

    def short(outcome: str) -> str:
        outcome = outcome.replace("|", "/").replace("damaged model file: ", "")
        return outcome if len(outcome) <= 90 else outcome[:87] + "..."

    head = "| file | size | seconds to the error | peak RSS | above the baseline | outcome |"
    rule = "|---|---|---|---|---|---|"
    if args.compare:
        head += " before: seconds | before: peak RSS | before: outcome |"
        rule += "---|---|---|"
    lines = [head, rule]
    for r in rows:
        line = (f"| {r['bomb']} | {r['bytes'] / 1024:,.0f} KiB | {fmt(r['seconds'], 's')} | "
                f"{fmt(r['peak'], 'b')} | {fmt(r['increment'], 'b')} | {short(r['outcome'])} |")
        if args.compare:
            o = r["other"]
            line += (f" {fmt(o['seconds'], 's')} | {fmt(o['peak'], 'b')} | "
                     f"{short(o['outcome'])} |")
        lines.append(line)
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    which = "this checkout" if Path(args.recsys).resolve() == HERE.parent else args.recsys
    text = "\n".join([
        "## Hostile model files",
        "",
        f"Measured {now} on {machine()} by `python scripts/bench_hostile_model_files.py` "
        f"(the loader of {which}). Each file is loaded by `recsys.load` in a fresh process; "
        "peak RSS is the process's (the interpreter and libraries are about 80 MiB), "
        "'above the baseline' what the load added to the resident size before it"
        + (f"; 'before': the loader of {args.compare_label or args.compare}."
           if args.compare else "."),
        "",
        *lines,
    ])
    print(text)
    if args.output != "-":
        from benchdoc import DOC, write_section

        print(f"wrote {write_section('bench_hostile_model_files', text, args.output or DOC)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
