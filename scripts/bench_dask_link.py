"""Two Dask workers joined by a bandwidth-capped virtual link, against the same link
uncapped, in one run.

Two network namespaces joined by a veth pair: the scheduler, the client and worker A in
the first, worker B in the second, so every item block between the workers crosses the
link. Fits alternate between the link capped (``tc`` token bucket, ``--rate``, 1 Gbit/s
by default, on both ends) and uncapped; each prints its seconds per epoch (the first
epoch, which holds the start-up and the data's trip to the workers, left out), the bytes
of item blocks moved per epoch and the model's equality with the in-process fit. Needs
root, ``ip`` and ``tc`` (Linux); it removes what it set up, also on failure.

    sudo python scripts/bench_dask_link.py [--rate 1gbit] [--runs 3] [--factors 128]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys

NS = ("recsys-link-a", "recsys-link-b")
ADDRESS = ("10.231.0.1", "10.231.0.2")
PORT = 8786


def sh(*args, check=True):
    return subprocess.run(list(args), check=check, capture_output=True, text=True)


def set_up() -> None:
    for ns in NS:
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "link", "add", "rl-a", "type", "veth", "peer", "name", "rl-b")
    for ns, dev, addr in zip(NS, ("rl-a", "rl-b"), ADDRESS, strict=True):
        sh("ip", "link", "set", dev, "netns", ns)
        sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
        sh("ip", "-n", ns, "link", "set", dev, "up")


def cap(rate: str | None) -> None:
    """The token bucket on both ends of the link (None: no cap)."""
    for ns, dev in zip(NS, ("rl-a", "rl-b"), strict=True):
        sh("tc", "-n", ns, "qdisc", "del", "dev", dev, "root", check=False)
        if rate:
            sh("tc", "-n", ns, "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate,
               "burst", "1mb", "latency", "100ms")


def tear_down() -> None:
    for ns in NS:
        sh("ip", "netns", "del", ns, check=False)


def in_ns(ns, *args):
    return ["ip", "netns", "exec", ns, *args]


def start_cluster() -> list[subprocess.Popen]:
    python = [sys.executable, "-m"]
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = [subprocess.Popen(in_ns(NS[0], *python, "distributed.cli.dask_scheduler",
                                    "--host", ADDRESS[0], "--port", str(PORT),
                                    "--dashboard-address", ":0"), **quiet)]
    for ns, addr in zip(NS, ADDRESS, strict=True):
        procs.append(subprocess.Popen(in_ns(ns, *python, "distributed.cli.dask_worker",
                                            f"tcp://{ADDRESS[0]}:{PORT}", "--host", addr,
                                            "--nthreads", "1", "--nworkers", "1",
                                            "--dashboard-address", ":0"), **quiet))
    return procs


CLIENT = r"""
import json, statistics, sys
import numpy as np
from distributed import Client
from recsys import FunkSVD
from recsys.data.synth import SynthSpec, generate
from recsys.distributed.backend import DaskBackend
k, runs, rates, addr = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split(","), sys.argv[4]
ratings, _ = generate(SynthSpec(n_users=6_040, n_items=3_706, n_ratings=1_000_000, seed=1))
# a fit on a cluster has no warm-up: the same settings in both processes
params = dict(n_factors=k, n_epochs=5, reg=0.05, seed=2, n_jobs=1, warmup_epochs=0)
local = FunkSVD(**params).fit(ratings)
with Client(addr, timeout=60) as client:
    client.wait_for_workers(2, timeout=60)
    for _ in range(runs):
        for rate in rates:
            print(json.dumps({"cap": rate}), flush=True)
            input()  # the parent set the cap
            fit = DaskBackend(client, timeout=600)
            model = FunkSVD(**params).fit(ratings, client=fit)
            same = all(np.array_equal(a, b) for a, b in zip(
                local.state_.factors.arrays(), model.state_.factors.arrays()))
            print(json.dumps({"rate": rate, "epoch": statistics.median(
                h["seconds"] for h in model.history_[1:]), "mib": statistics.median(
                fit.bytes_sent) / 2**20, "same": same}), flush=True)
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", default="1gbit")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--factors", type=int, default=128)
    args = parser.parse_args(argv)
    if os.geteuid() != 0 or not (shutil.which("ip") and shutil.which("tc")):
        print("needs root, ip and tc (Linux network namespaces)", file=sys.stderr)
        return 2
    tear_down()
    procs = []
    try:
        set_up()
        procs = start_cluster()
        rates = [args.rate, "none"]
        client = subprocess.Popen(in_ns(NS[0], sys.executable, "-c", CLIENT,
                                        str(args.factors), str(args.runs), ",".join(rates),
                                        f"tcp://{ADDRESS[0]}:{PORT}"),
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        seen = {rate: [] for rate in rates}
        same = True
        for line in client.stdout:
            msg = json.loads(line)
            if "cap" in msg:
                cap(None if msg["cap"] == "none" else msg["cap"])
                client.stdin.write("\n")
                client.stdin.flush()
                continue
            seen[msg["rate"]].append(msg)
            same &= msg["same"]
            print(f"link {msg['rate']}: {msg['epoch']:.3f} s/epoch, "
                  f"{msg['mib']:.1f} MiB of item blocks an epoch", flush=True)
        if client.wait(timeout=600) != 0:
            print("the client failed", file=sys.stderr)
            return 1
        for rate, rows in seen.items():
            secs = [r["epoch"] for r in rows]
            print(f"link {rate}: median {statistics.median(secs):.3f} s/epoch "
                  f"({min(secs):.3f}-{max(secs):.3f}, {len(secs)} runs alternated)")
        capped = statistics.median(r["epoch"] for r in seen[args.rate])
        free = statistics.median(r["epoch"] for r in seen["none"])
        mib = statistics.median(r["mib"] for r in seen[args.rate])
        print(f"capped / uncapped: {capped / free:.2f}x; {mib:.1f} MiB an epoch over the "
              f"link; models equal to the in-process fit: {same}")
        return 0
    finally:
        for p in procs:
            with contextlib.suppress(Exception):
                p.kill()
                p.wait(timeout=10)
        tear_down()


if __name__ == "__main__":
    sys.exit(main())
