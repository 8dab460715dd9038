"""Reloads of `recsys serve --workers N` under load: does any answer come from an old model?

    python scripts/bench_reload_workers.py [--workers 2] [--reloads 20] [--checks 200]

Starts the server with N workers on an ephemeral loopback port and two models that differ
in n_factors (and so in every answer). It then reloads --reloads times, alternating the
model file between them (POST /admin/reload; every fifth time with a damaged file, which
must be refused with 409 and change nothing; every third time by SIGHUP to the parent,
waiting for its log line). After each reload it sends --checks requests over new
connections from 4 threads (/health, /model), and counts the answers from any other
generation or model than the one just published; meanwhile a background client keeps
requesting recommendations and counts failures. Prints the reload times, the answers
checked per worker, and the stale answers and failures (both should be 0).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_serve import Server, cpu_name  # noqa: E402


def make_models(folder: Path) -> tuple[Path, Path]:
    from recsys import FunkSVD
    from recsys.data.synth import SynthSpec, generate
    from recsys.models.registry import save

    ratings, _ = generate(SynthSpec(n_users=943, n_items=1682, n_ratings=100_000, seed=0))
    a, b = folder / "a.npz", folder / "b.npz"
    save(FunkSVD(n_factors=32, n_epochs=3, seed=0).fit(ratings), a)
    save(FunkSVD(n_factors=16, n_epochs=3, seed=1).fit(ratings), b)
    return a, b


def check(url: str, n: int, generation: int, factors: int) -> tuple[Counter, int]:
    """n answers over new connections: (answers per worker, answers not from the model)."""
    per_worker, stale, lock = Counter(), [0], threading.Lock()

    def run(k):
        with httpx.Client(base_url=url, timeout=60,
                          limits=httpx.Limits(max_keepalive_connections=0)) as http:
            for i in range(k, n, 4):
                if i % 2:
                    body = http.get("/health").json()
                    ok = body["generation"] == generation
                    with lock:
                        per_worker[body["worker"]] += 1
                else:
                    body = http.get("/model").json()
                    ok = body["generation"] == generation and body["n_factors"] == factors
                with lock:
                    stale[0] += not ok

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return per_worker, stale[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reloads", type=int, default=20)
    parser.add_argument("--checks", type=int, default=200, help="answers checked per reload")
    args = parser.parse_args()
    os.environ["RECSYS_ADMIN_TOKEN"] = token = "bench-token"
    auth = {"Authorization": f"Bearer {token}"}
    with tempfile.TemporaryDirectory() as tmp:
        a, b = make_models(Path(tmp))
        factors = {a: 32, b: 16}
        live = Path(tmp) / "live.npz"
        shutil.copyfile(a, live)
        print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {os.cpu_count()} cores "
              f"({cpu_name()}), load average {os.getloadavg()[0]:.1f} before the run; "
              f"{args.workers} workers; models of 943 users x 1,682 items, k=32 and k=16")
        server = Server(live, args.workers)
        url = f"http://127.0.0.1:{server.port}"
        lines = []
        threading.Thread(target=lambda: [lines.append(x) for x in iter(
            server.lines.get, None)], daemon=True).start()
        stop, background = threading.Event(), Counter()

        def keep_asking():
            with httpx.Client(base_url=url, timeout=60) as http:
                while not stop.is_set():
                    r = http.get("/users/1/recommendations?n=10")
                    background[r.status_code] += 1

        worker = threading.Thread(target=keep_asking)
        times, refused, stale_total, per_worker = [], 0, 0, Counter()
        generation, current = 1, a
        try:
            worker.start()
            for k in range(1, args.reloads + 1):
                if k % 5 == 0:  # a damaged file: refused, nothing changes
                    live.write_bytes(b"PK\x03\x04 damaged")
                    r = httpx.post(url + "/admin/reload", headers=auth, timeout=60)
                    refused += r.status_code == 409
                    assert r.status_code == 409, r.text
                else:
                    current = b if current == a else a
                    shutil.copyfile(current, live)
                    generation += 1
                    start = time.perf_counter()
                    if k % 3 == 0:
                        seen = len(lines)
                        server.proc.send_signal(signal.SIGHUP)
                        pattern = re.compile(rf"\(generation {generation}\)")
                        while not any(pattern.search(x) for x in lines[seen:]):
                            time.sleep(0.005)  # waiting for the parent's log line
                    else:
                        r = httpx.post(url + "/admin/reload", headers=auth, timeout=60)
                        assert r.status_code == 200 and r.json()["generation"] == generation
                    times.append(time.perf_counter() - start)
                workers, stale = check(url, args.checks, generation, factors[current])
                per_worker.update(workers)
                stale_total += stale
        finally:
            stop.set()
            worker.join()
            server.stop()
    ms = np.asarray(times) * 1e3
    by_hup = sum(1 for k in range(1, args.reloads + 1) if k % 5 and k % 3 == 0)
    print(f"{len(times)} reloads ({by_hup} by SIGHUP) and {refused} refused damaged files: "
          f"reload answered in p50 "
          f"{np.percentile(ms, 50):.0f} ms, max {ms.max():.0f} ms")
    total = args.checks * args.reloads
    print(f"{total:,} answers checked after the reloads, from {len(per_worker)} workers "
          f"(/health answers per worker: {sorted(per_worker.values())}); "
          f"from an older model: {stale_total}")
    print("background recommendations during the reloads: "
          + ", ".join(f"{s}: {c:,}" for s, c in sorted(background.items())))
    bad = stale_total or any(s != 200 for s in background) or len(per_worker) < args.workers
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
