"""`recsys serve` as a real uvicorn process on an ephemeral loopback port: it answers, reloads
on SIGHUP, refuses a broken model file while the old model keeps serving, and stops."""

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from recsys import FunkSVD  # noqa: E402
from recsys.models.registry import save  # noqa: E402

DEADLINE = 60.0  # seconds any one step may take before the test gives up


class Server:
    """A `recsys serve` subprocess whose stderr lines are collected by a thread."""

    def __init__(self, model_path):
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("RECSYS_ADMIN_TOKEN", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "recsys.cli", "serve", str(model_path), "--port", "0"],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        line = self.wait_for(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")
        port = int(re.search(r":(\d+)", line.split("http://")[1]).group(1))
        self.url = f"http://127.0.0.1:{port}"

    def _read(self):
        for line in self.proc.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, pattern):
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            try:
                line = self.lines.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"server exited (code {self.proc.wait()}) before "
                                     f"printing {pattern!r}")
            if re.search(pattern, line):
                return line
        raise AssertionError(f"server did not print {pattern!r} within {DEADLINE} s")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture()
def models(tmp_path, small_ratings):
    first, second = tmp_path / "first.npz", tmp_path / "second.npz"
    save(FunkSVD(n_factors=6, n_epochs=10, seed=1).fit(small_ratings), first)
    save(FunkSVD(n_factors=3, n_epochs=10, seed=2).fit(small_ratings), second)
    live = tmp_path / "live.npz"
    live.write_bytes(first.read_bytes())
    return live, second


def test_real_server_answers_reloads_on_sighup_and_stops(models):
    live, second = models
    server = Server(live)
    try:
        with httpx.Client(base_url=server.url, timeout=DEADLINE) as http:
            assert http.get("/health").json()["generation"] == 1
            r = http.get("/users/1/recommendations", params={"n": 5})
            assert r.status_code == 200 and len(r.json()["items"]) == 5
            bad = http.post("/predict", content=b"{", headers={"content-type": "application/json"})
            assert bad.status_code == 400 and bad.json()["error"] == "malformed_json"
            assert http.post("/predict", content=b"{}").status_code == 415
            assert http.get("/model").json()["n_factors"] == 6

            live.write_bytes(second.read_bytes())
            server.proc.send_signal(signal.SIGHUP)
            server.wait_for(r"model reloaded .* \(generation 2\)")
            assert http.get("/model").json()["n_factors"] == 3

            live.write_bytes(b"PK\x03\x04 broken")
            server.proc.send_signal(signal.SIGHUP)
            server.wait_for(r"reload refused")
            assert http.get("/health").json()["generation"] == 2
            r = http.get("/users/1/recommendations", params={"n": 5})
            assert r.status_code == 200 and len(r.json()["items"]) == 5
    finally:
        code = server.stop()
    # uvicorn shuts down gracefully, then re-raises SIGTERM so supervisors see it
    assert code in (0, -signal.SIGTERM)
    server.wait_for(r"Finished server process")
