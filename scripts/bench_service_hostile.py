"""Latency of small requests while another client sends large bad bodies: p50/p99.

    python scripts/bench_service_hostile.py [--baseline REV] [--requests 1000] [--seconds 30]

Starts `recsys serve` (one worker) on an ephemeral loopback port. One client sends small
requests (GET /users/{u}/recommendations?n=10, one keep-alive connection, one at a time)
and measures each; meanwhile another client sends POST /predict bodies back to back on
its own connection. Phases:

  quiet      the small requests alone
  1mb-bad    the other client sends 1 MB bodies of wrong-typed pairs (36,000 pairs)
  batch-bad  ... bodies of 10,000 wrong-typed pairs (the batch limit, 270 KB)
  batch-ok   ... bodies of 10,000 valid pairs

Each phase stops after --requests small requests or --seconds. With --baseline REV the
same phases run first against the server code of git revision REV (its recsys/ exported
to a temporary folder), for a before/after comparison. The model is trained on a
generated MovieLens-100k-shaped set (943 users x 1,682 items, k=32) unless --model.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_serve import Server, cpu_name  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def make_model(path: Path) -> None:
    from recsys import FunkSVD
    from recsys.data.synth import SynthSpec, generate
    from recsys.models.params import REG_REFERENCE
    from recsys.models.registry import save

    ratings, _ = generate(SynthSpec(n_users=943, n_items=1682, n_ratings=100_000, seed=0))
    save(FunkSVD(n_factors=32, n_epochs=5, reg=REG_REFERENCE, seed=0).fit(ratings), path)


def post(body: bytes) -> bytes:
    return (b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)) + body


def bodies(user_ids, item_ids) -> dict:
    bad = b'{"user": 1.5, "item": true}'
    good = [b'{"user": %s, "item": %s}' % (user_ids[k % len(user_ids)].encode(),
                                           item_ids[k * 7 % len(item_ids)].encode())
            for k in range(10_000)]
    return {
        "1mb-bad": b'{"pairs": [' + b",".join([bad] * 36_000) + b"]}",
        "batch-bad": b'{"pairs": [' + b",".join([bad] * 10_000) + b"]}",
        "batch-ok": b'{"pairs": [' + b",".join(good) + b"]}",
    }


async def read_answer(reader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    await reader.readexactly(length)
    return int(head[9:12])


async def phase(port: int, user_ids, hostile: bytes | None, n: int, seconds: float):
    stop = asyncio.Event()
    hostile_times, hostile_status = [], {}

    async def attacker():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            request = post(hostile)
            while not stop.is_set():
                start = time.perf_counter()
                writer.write(request)
                status = await read_answer(reader)
                hostile_times.append(time.perf_counter() - start)
                hostile_status[status] = hostile_status.get(status, 0) + 1
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def victim():
        rng = random.Random(0)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        latencies, errors = [], 0
        deadline = time.perf_counter() + seconds
        try:
            while len(latencies) < n and time.perf_counter() < deadline:
                user = rng.choice(user_ids)
                start = time.perf_counter()
                writer.write(f"GET /users/{user}/recommendations?n=10 HTTP/1.1\r\n"
                             "Host: 127.0.0.1\r\n\r\n".encode())
                errors += await read_answer(reader) != 200
                latencies.append(time.perf_counter() - start)
        finally:
            writer.close()
            stop.set()
        return latencies, errors

    tasks = [asyncio.create_task(attacker())] if hostile is not None else []
    if tasks:
        await asyncio.sleep(0.2)  # let the other client start
    latencies, errors = await victim()
    for task in tasks:
        try:
            await asyncio.wait_for(task, timeout=60)
        except asyncio.TimeoutError:
            task.cancel()
    return np.asarray(latencies) * 1e3, errors, hostile_times, hostile_status


def run(label: str, model: Path, env_path: str, args, user_ids, kinds) -> None:
    print(f"{label}:")
    os.environ["PYTHONPATH"] = env_path
    here = os.getcwd()
    os.chdir(env_path)  # python -m puts the working folder first on the path
    try:
        server = Server(model.resolve(), 1)
    finally:
        os.chdir(here)
    try:
        asyncio.run(phase(server.port, user_ids, None, 200, args.seconds))  # warm up
        for name in ["quiet", *kinds]:
            ms, errors, times, statuses = asyncio.run(
                phase(server.port, user_ids, kinds.get(name), args.requests, args.seconds))
            other = ""
            if times:
                other = (f"; other client: {len(times)} bodies answered "
                         f"({', '.join(f'{s}: {c}' for s, c in sorted(statuses.items()))}), "
                         f"mean {np.mean(times) * 1e3:,.0f} ms each")
            print(f"  {name:9s} {len(ms):5d} small requests: p50 {np.percentile(ms, 50):7.2f} ms"
                  f", p99 {np.percentile(ms, 99):8.2f} ms, max {ms.max():8.1f} ms, "
                  f"errors {errors}{other}", flush=True)
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--baseline", help="git revision to compare with (before)")
    parser.add_argument("--requests", type=int, default=1000, help="small requests per phase")
    parser.add_argument("--seconds", type=float, default=30.0, help="time limit per phase")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            model = Path(tmp) / "model.npz"
            make_model(model)
        from recsys.models.registry import load

        m = load(model)
        user_ids = [str(x) for x in m.user_map_.ids.tolist()]
        item_ids = [str(x) for x in m.item_map_.ids.tolist()]
        del m
        kinds = bodies(user_ids, item_ids)
        load1 = os.getloadavg()[0]
        print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {os.cpu_count()} cores "
              f"({cpu_name()}), load average {load1:.1f} before the run; one worker; "
              f"clients on the same machine; {len(kinds['1mb-bad']):,}-byte bad body")
        if args.baseline:
            old = Path(tmp) / "baseline"
            old.mkdir()
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline,
                                      "recsys"], check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
            run(f"before: recsys at {args.baseline}", model, str(old), args, user_ids, kinds)
        run("after: this tree", model, str(ROOT), args, user_ids, kinds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
