"""A long fuzz campaign of `recsys serve` over real sockets (run outside CI).

    python scripts/fuzz_service.py --requests 20000 [--seed 0] [--workers 1] [--model M.npz]

Starts the server on an ephemeral loopback port and sends random requests
(recsys.testing.http_fuzz: the service's paths and parameters with odd values, JSON bodies
with wrong parts, mutated bytes, odd headers, chunked bodies, oversized targets and
heads, garbage), each on a new connection. The contract: no 5xx, a JSON body for every
answer ({"error", "detail"} for every 4xx; the HTML of /docs excepted), an answer to every
request, and the server keeps answering (/health is checked every 500 requests). Prints
the answers by status and every finding with its request (also saved under --findings);
exits 1 if there is any.
"""

import argparse
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

from recsys.testing.http_fuzz import NoAnswer, Request, exchange, random_request, violation


class Server:
    def __init__(self, model: Path, workers: int):
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "RECSYS_ADMIN_TOKEN": "fuzz-token"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "recsys.cli", "serve", str(model), "--port", "0",
             "--workers", str(workers)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, env=env)
        self.lines: queue.Queue = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.port, started = None, 0
        end = time.monotonic() + 120
        while (self.port is None or started < workers) and time.monotonic() < end:
            try:
                line = self.lines.get(timeout=max(0.1, end - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                sys.exit(f"server exited with code {self.proc.wait()} before starting")
            found = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", line)
            if found:
                self.port = int(found.group(1))
            started += "Application startup complete" in line
        if self.port is None:
            sys.exit("server did not start")

    def _read(self):
        for line in self.proc.stderr:
            self.lines.put(line)
            self.log.append(line)
        self.lines.put(None)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def make_model(path: Path) -> None:
    from recsys import FunkSVD
    from recsys.data.synth import SynthSpec, generate
    from recsys.models.registry import save

    ratings, _ = generate(SynthSpec(n_users=120, n_items=100, n_ratings=3000, rank=4, seed=1))
    save(FunkSVD(n_factors=8, n_epochs=10, seed=0).fit(ratings), path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--model", type=Path, help="model file (default: train a small one)")
    parser.add_argument("--findings", type=Path, default=Path("fuzz-service-findings"))
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per answer")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            model = Path(tmp) / "model.npz"
            make_model(model)
        server = Server(model, args.workers)
        statuses, findings = Counter(), []
        start = time.perf_counter()
        try:
            for n in range(1, args.requests + 1):
                request = random_request(rng)
                try:
                    status, content_type, body = exchange(server.port, request, args.timeout)
                    statuses[status] += 1
                    found = violation(request, status, content_type, body)
                except (NoAnswer, OSError) as exc:
                    found = f"no answer: {type(exc).__name__}: {exc}"
                if found:
                    findings.append((found, request))
                if n % 500 == 0 or n == args.requests:
                    health = Request("GET", "/health")
                    try:
                        if exchange(server.port, health, args.timeout)[0] != 200:
                            findings.append(("/health does not answer 200", health))
                    except (NoAnswer, OSError) as exc:
                        findings.append((f"/health: {exc}", health))
                    if server.proc.poll() is not None:
                        findings.append((f"server exited ({server.proc.returncode})", request))
                        break
                    print(f"  {n:7,d} requests, {len(findings)} findings, "
                          f"{n / (time.perf_counter() - start):5.0f} req/s", flush=True)
        finally:
            server.stop()
    elapsed = time.perf_counter() - start
    print(f"{sum(statuses.values()):,} answers in {elapsed:.0f} s (seed {args.seed}, "
          f"{args.workers} worker(s)); by status: "
          + ", ".join(f"{s}: {c:,}" for s, c in sorted(statuses.items())))
    tracebacks = [k for k, line in enumerate(server.log) if "Traceback" in line]
    print(f"server log: {len(tracebacks)} tracebacks")
    if tracebacks:  # the first, up to the next log line
        first = tracebacks[0]
        end = next((k for k in range(first + 1, len(server.log))
                    if re.match(r"(INFO|WARNING|ERROR):", server.log[k])), len(server.log))
        print("".join(server.log[max(0, first - 1):end]))
    if findings:
        args.findings.mkdir(parents=True, exist_ok=True)
        for k, (what, request) in enumerate(findings):
            (args.findings / f"finding-{k:04d}.http").write_bytes(request.raw())
            if k < 20:
                print(f"FINDING {k}: {what}\n    {request.raw()[:300]!r}")
        print(f"{len(findings)} findings, requests saved under {args.findings}/")
        return 1
    print("findings: none")
    return 1 if tracebacks else 0


if __name__ == "__main__":
    sys.exit(main())
