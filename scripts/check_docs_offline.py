"""Check that the service's /docs page renders with no network: headless Chromium, every
request outside loopback sent to a dead proxy.

Starts `recsys serve` on a free loopback port (--port 0) with a small model (trained here
on generated ratings unless --model is given), then runs Chromium twice:

  (a) --dump-dom after a virtual time budget: the rendered page must hold one Swagger UI
      operation block for every (method, path) of the service's /openapi.json;
  (b) --screenshot to a PNG (with --screenshot PATH).

Chromium gets --proxy-server=127.0.0.1:9 (a port nothing listens on) and host-resolver
rules that resolve no name but 127.0.0.1: whatever the page tried to load from a CDN
would fail, and the operation blocks would be missing. Exit 0 when the check holds,
1 (with the reason) when not, 2 without chromium.

    python scripts/check_docs_offline.py [--model M.npz] [--screenshot docs.png]
                                         [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

DEADLINE = 90.0  # seconds any one step may take
OFFLINE = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update",
           "--disable-extensions", "--disable-sync", "--metrics-recording-only",
           "--proxy-server=127.0.0.1:9",
           "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]


def small_model(folder: Path) -> Path:
    from recsys import FunkSVD
    from recsys.data.synth import SynthSpec, generate
    from recsys.models.registry import save

    ratings, _ = generate(SynthSpec(n_users=60, n_items=40, n_ratings=800, seed=5))
    path = folder / "model.npz"
    save(FunkSVD(n_factors=4, n_epochs=5, seed=1).fit(ratings), path)
    return path


class Server:
    """`recsys serve MODEL --port 0` on loopback; its stderr read by a thread."""

    def __init__(self, model: Path):
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "recsys", "serve", str(model), "--host", "127.0.0.1",
             "--port", "0"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
            env=env)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        end = time.monotonic() + DEADLINE
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                raise SystemExit(f"recsys serve did not start within {DEADLINE:g} s") from None
            if line is None:
                raise SystemExit(f"recsys serve exited with code {self.proc.wait()}")
            found = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", line)
            if found:
                self.url = f"http://127.0.0.1:{found.group(1)}"
                return

    def _read(self):
        for line in self.proc.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def operations(url: str) -> list[tuple[str, str]]:
    """(method, path) of every operation the service documents."""
    with urllib.request.urlopen(url + "/openapi.json", timeout=DEADLINE) as answer:
        spec = json.load(answer)
    return [(method, path) for path, ops in spec["paths"].items() for method in ops]


def chromium(binary: str, *args: str, profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run([binary, *OFFLINE, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=DEADLINE)


def missing_blocks(dom: str, ops: list[tuple[str, str]]) -> list[str]:
    """The operations without their Swagger UI block (an opblock of the method, holding a
    summary whose data-path is the path) in the rendered DOM."""
    missing = []
    for method, path in ops:
        block = re.search(r'<div class="opblock opblock-' + method + r'[^"]*"[^>]*>.{0,4000}?'
                          r'data-path="' + re.escape(path) + '"', dom, re.S)
        if block is None:
            missing.append(f"{method.upper()} {path}")
    return missing


def check(model: Path | None, screenshot: Path | None, binary: str) -> list[str]:
    """Problems found (none: the page renders offline)."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        server = Server(model or small_model(tmp))
        try:
            ops = operations(server.url)
            run = chromium(binary, "--virtual-time-budget=15000", "--dump-dom",
                           server.url + "/docs", profile=tmp / "profile")
            dom = run.stdout
            problems = [] if "swagger-ui" in dom else [
                f"chromium rendered no Swagger UI (exit {run.returncode}): "
                f"{run.stderr.strip()[-500:]}"]
            problems += [f"no operation block for {op}" for op in missing_blocks(dom, ops)]
            print(f"{len(ops) - len(missing_blocks(dom, ops))} of {len(ops)} operations "
                  f"rendered at {server.url}/docs with no network")
            if screenshot is not None:
                shot = chromium(binary, "--virtual-time-budget=15000", "--hide-scrollbars",
                                "--window-size=1280,1800", f"--screenshot={screenshot}",
                                server.url + "/docs", profile=tmp / "profile")
                if not screenshot.exists():
                    problems.append(f"no screenshot written (exit {shot.returncode})")
                else:
                    print(f"screenshot: {screenshot}")
        finally:
            server.stop()
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="model file to serve (default: a small "
                                                   "one trained here)")
    parser.add_argument("--screenshot", type=Path, help="write a PNG of the page here")
    parser.add_argument("--chromium", default=shutil.which("chromium")
                        or shutil.which("chromium-browser"), help="the browser binary")
    args = parser.parse_args()
    if not args.chromium:
        print("chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 2
    problems = check(args.model, args.screenshot and args.screenshot.resolve(), args.chromium)
    for problem in problems:
        print("FAIL:", problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
