"""Load test of `recsys serve`: requests/s and p50/p99 latency over loopback, zero errors.

Starts the server as a subprocess on 127.0.0.1 (ephemeral port), then drives a bounded
load (a fixed number of requests AND a time limit) from concurrent keep-alive clients
(asyncio, raw HTTP/1.1, one connection each), and stops the server at the end. Phases:

  health     GET /health (through FastAPI): the HTTP + framework floor
  recommend  GET /users/{u}/recommendations?n=10 for random known users
  mix        70% recommend, 15% similar items, 15% /predict of 10 pairs
  writes     90% recommend, 10% POST /ratings of one rating (a known user, or one in
             five a new one), fsynced to the ratings log before each answer; with
             --writes, on a third server started with --ratings-log, after its
             recommend phase (the same service with the log, and no writes)

The baseline, run first with the same requests, is the service without its hot-path
work (`--no-fast-path --cache-top 0`: every request through FastAPI, every answer
computed); the default service follows, with its ratios to the baseline.

Without --model it trains a model on a generated MovieLens-1M-shaped set (6,040 users x
3,706 items, 1M ratings) with k=128 and few epochs (accuracy does not matter here).
The load generator runs on the same machine and competes with the server for its cores.

    python scripts/bench_serve.py [--model M.npz] [--workers 1] [--requests 10000]
                                  [--seconds 20] [--concurrency 16] [--no-baseline]
                                  [--writes]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import queue
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

START_TIMEOUT = 120.0
TOKEN = "bench-token"


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def make_model(path: Path, factors: int, epochs: int) -> None:
    from recsys import FunkSVD
    from recsys.data.synth import SynthSpec, generate
    from recsys.models.params import REG_REFERENCE
    from recsys.models.registry import save

    start = time.perf_counter()
    ratings, _ = generate(SynthSpec(seed=0))
    # a fixed reg: the served model only needs to be realistic, not searched for
    model = FunkSVD(n_factors=factors, n_epochs=epochs, reg=REG_REFERENCE,
                    seed=0).fit(ratings)
    save(model, path)
    print(f"model: {len(ratings):,} generated ratings, {ratings.n_users:,} users x "
          f"{ratings.n_items:,} items, k={factors}, {epochs} epochs "
          f"({time.perf_counter() - start:.1f} s)")


class Server:
    def __init__(self, model: Path, workers: int, options=()):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "recsys.cli", "serve", str(model), "--port", "0",
             "--workers", str(workers), *options],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "RECSYS_RATINGS_TOKEN": TOKEN})
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.port, started = None, 0
        while self.port is None or started < workers:  # the two come in either order
            found = self._wait(r"Uvicorn running on http://127\.0\.0\.1:(\d+)|"
                               r"Application startup complete")
            if found.group(1):
                self.port = int(found.group(1))
            else:
                started += 1

    def _read(self):
        for line in self.proc.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def _wait(self, pattern):
        end = time.monotonic() + START_TIMEOUT
        while time.monotonic() < end:
            try:
                line = self.lines.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                sys.exit(f"server exited with code {self.proc.wait()} before starting")
            found = re.search(pattern, line)
            if found:
                return found
        self.stop()
        sys.exit(f"server did not start within {START_TIMEOUT:.0f} s")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server process and its workers have used so far."""
        total = 0.0
        for pid in [self.proc.pid, *_children(self.proc.pid)]:
            try:
                with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            except (OSError, IndexError, ValueError):
                pass
        return total

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as fh:
            return [int(x) for x in fh.read().split()]
    except OSError:
        return []


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def requests_for(phase: str, n: int, user_ids, item_ids, rng: random.Random) -> list:
    """(kind, raw HTTP request bytes) for a phase, drawn in advance."""
    def get(path):
        return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()

    def post(path, body: bytes):
        return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
                f"\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body

    out = []
    for _ in range(n):
        draw = rng.random() if phase in ("mix", "writes") else 0.0
        if phase == "health":
            out.append(("health", get("/health")))
        elif phase == "writes" and draw >= 0.9:
            user = rng.choice(user_ids) if rng.random() < 0.8 else str(10**9 + rng.randrange(10**6))
            body = (f'{{"ratings":[{{"user":{user},"item":{rng.choice(item_ids)},'
                    f'"rating":{rng.randint(1, 5)}}}]}}').encode()
            out.append(("rating", post("/ratings", body)[:-len(body)].replace(
                b"\r\n\r\n", f"\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode()) + body))
        elif phase == "writes":
            out.append(("recommend", get(f"/users/{rng.choice(user_ids)}/recommendations?n=10")))
        elif draw < 0.70:
            out.append(("recommend", get(f"/users/{rng.choice(user_ids)}/recommendations?n=10")))
        elif draw < 0.85:
            out.append(("similar", get(f"/items/{rng.choice(item_ids)}/similar?n=10")))
        else:
            pairs = ",".join(f'{{"user":{rng.choice(user_ids)},"item":{rng.choice(item_ids)}}}'
                             for _ in range(10))
            out.append(("predict", post("/predict", f'{{"pairs":[{pairs}]}}'.encode())))
    return out


async def drive(port: int, reqs: list, concurrency: int, seconds: float):
    """Send reqs over `concurrency` keep-alive connections; stop at the end or the deadline."""
    latencies = {kind: [] for kind, _ in reqs}
    errors: list[str] = []
    position = 0
    deadline = time.perf_counter() + seconds

    async def client():
        nonlocal position
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while position < len(reqs) and time.perf_counter() < deadline:
                kind, raw = reqs[position]
                position += 1
                start = time.perf_counter()
                writer.write(raw)
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
                await reader.readexactly(length)
                latencies[kind].append(time.perf_counter() - start)
                status = int(head[9:12])
                if status != 200:
                    errors.append(f"{kind}: HTTP {status}")
        except (OSError, asyncio.IncompleteReadError, AttributeError) as exc:
            errors.append(f"connection: {type(exc).__name__}: {exc}")
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies, errors, time.perf_counter() - start


def report(phase, latencies, errors, elapsed, cpu, baseline_rps=None):
    total = sum(len(v) for v in latencies.values())
    rps = total / elapsed
    everything = np.concatenate([np.asarray(v) for v in latencies.values() if v]) * 1e3
    ratio = f"  ({rps / baseline_rps:.2f} x baseline)" if baseline_rps else ""
    print(f"  {phase:10s} {total:7,d} requests in {elapsed:5.1f} s: {rps:7,.0f} req/s, "
          f"p50 {np.percentile(everything, 50):5.2f} ms, p99 {np.percentile(everything, 99):6.2f}"
          f" ms, errors {len(errors)}{ratio}")
    print(f"  {'':10s} CPU per request: server {cpu[0] / total * 1e6:4.0f} us, "
          f"load generator {cpu[1] / total * 1e6:4.0f} us")
    if len(latencies) > 1:
        for kind, values in sorted(latencies.items()):
            ms = np.asarray(values) * 1e3
            print(f"    {kind:9s} {len(ms):7,d} ({len(ms) / elapsed:6,.0f}/s)  "
                  f"p50 {np.percentile(ms, 50):5.2f} ms  p99 {np.percentile(ms, 99):6.2f} ms")
    for line in errors[:5]:
        print(f"    error: {line}")
    return rps


def run_server(label, model_path, workers, options, args, user_ids, item_ids, baseline):
    """Start a server, run every phase against it, stop it; {phase: req/s}, any errors."""
    print(f"{label}:")
    server = Server(model_path, workers, options)
    rng = random.Random(0)  # the same requests for every server
    rates, failed = {}, False
    try:
        for phase in args.phases.split(","):
            warm = requests_for(phase, 300, user_ids, item_ids, rng)
            asyncio.run(drive(server.port, warm, args.concurrency, args.seconds))
            reqs = requests_for(phase, args.requests, user_ids, item_ids, rng)
            cpu = (server.cpu_seconds(), _own_cpu())
            latencies, errors, elapsed = asyncio.run(
                drive(server.port, reqs, args.concurrency, args.seconds))
            cpu = (server.cpu_seconds() - cpu[0], _own_cpu() - cpu[1])
            rates[phase] = report(phase, latencies, errors, elapsed, cpu, baseline.get(phase))
            failed |= bool(errors)
    finally:
        server.stop()
    return rates, failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model file (default: train one)")
    parser.add_argument("--factors", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--requests", type=int, default=10_000, help="per phase")
    parser.add_argument("--seconds", type=float, default=20.0, help="time limit per phase")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--phases", default="health,recommend,mix")
    parser.add_argument("--no-baseline", action="store_true", help="skip the baseline server")
    parser.add_argument("--writes", action="store_true",
                        help="also serve with --ratings-log: recommend, then 10%% writes")
    args = parser.parse_args()
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass

    with tempfile.TemporaryDirectory() as tmp:
        model_path = args.model
        if model_path is None:
            model_path = Path(tmp) / "bench-model.npz"
            make_model(model_path, args.factors, args.epochs)
        from recsys.models.registry import load

        model = load(model_path)
        user_ids = [str(x) for x in model.user_map_.ids.tolist()]
        item_ids = [str(x) for x in model.item_map_.ids.tolist()]
        load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {os.cpu_count()} cores "
              f"({cpu_name()}), load average {load1:.1f} before the run; "
              f"model {len(user_ids):,} users x {len(item_ids):,} items, "
              f"k={model.n_factors}; {args.workers} worker(s), {args.concurrency} "
              f"connections; load generator on the same machine")
        del model
        failed = False
        baseline = {}
        if not args.no_baseline:
            baseline, failed = run_server(
                "baseline (--no-fast-path --cache-top 0)", model_path, args.workers,
                ["--no-fast-path", "--cache-top", "0"], args, user_ids, item_ids, {})
        rates, bad = run_server("recsys serve (defaults)", model_path, args.workers, [], args,
                                user_ids, item_ids, baseline)
        failed |= bad
        if args.writes:
            log = Path(tmp) / "ratings.log"
            args.phases = "recommend,writes"
            _, bad = run_server("recsys serve --ratings-log (live ratings)", model_path,
                                args.workers, ["--ratings-log", str(log)], args, user_ids,
                                item_ids, rates)
            failed |= bad
            lines = log.read_bytes().count(b"\n") if log.exists() else 0
            print(f"  ratings log: {lines:,} ratings acknowledged and logged")
    print("errors: none" if not failed else "errors: SOME REQUESTS FAILED")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
