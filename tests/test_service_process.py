"""`recsys serve` as a real uvicorn process on an ephemeral loopback port: it answers, reloads
on SIGHUP, refuses a broken model file while the old model keeps serving, and stops; with
--workers 2 every worker answers from the new model after a reload; requests that uvicorn
itself refuses (heads over the limits, malformed HTTP) get JSON errors; ratings it
acknowledged survive SIGKILL and are replayed by the next server."""

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import orjson
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from recsys import FunkSVD  # noqa: E402
from recsys.models.registry import save  # noqa: E402

DEADLINE = 60.0  # seconds any one step may take before the test gives up


class Server:
    """A `recsys serve` subprocess whose stderr lines are collected by a thread."""

    def __init__(self, model_path, *options, token=None):
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("RECSYS_ADMIN_TOKEN", None)
        env.pop("RECSYS_RATINGS_TOKEN", None)  # the admin token serves for POST /ratings
        if token:
            env["RECSYS_ADMIN_TOKEN"] = token
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "recsys.cli", "serve", str(model_path), "--port", "0",
             *options], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
        self.lines, self.errors = queue.Queue(), []
        threading.Thread(target=self._read, daemon=True).start()
        line = self.wait_for(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")
        self.port = int(re.search(r":(\d+)", line.split("http://")[1]).group(1))
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, workers: int) -> None:
        """Until every worker has started and the socket takes connections."""
        for _ in range(workers):
            self.wait_for(r"Application startup complete")
        end = time.monotonic() + DEADLINE
        while True:  # a worker logs its startup just before it listens
            try:
                httpx.get(self.url + "/health", timeout=DEADLINE)
                return
            except httpx.ConnectError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.05)

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
            if "Traceback" in line:
                self.errors.append(line)
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
            check_refusals_are_json(server.port)
            assert http.get("/health").status_code == 200  # still answering

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
    log = []
    while (line := server.lines.get(timeout=DEADLINE)) is not None:
        log.append(line)
    assert server.errors == [] and not any("Traceback" in line for line in log)


def exchange(port: int, request: bytes) -> tuple[int, dict, bytes]:
    """Send raw bytes, read one response: (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as sock:
        try:
            sock.sendall(request)
        except OSError:  # the server answered and stopped reading: read its answer
            pass
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed without an answer: {data!r}"
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:])
        while len(body) < int(headers["content-length"]):
            chunk = sock.recv(65536)
            assert chunk, "connection closed in the middle of the body"
            body += chunk
    return int(lines[0].split()[1]), headers, body


def check_refusals_are_json(port: int) -> None:
    cases = [
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
        (b"GET /users/1/recommendations?n=" + b"1" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
         414, "uri_too_long"),
        (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n", 431,
         "headers_too_large"),
        (b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(
            b"X-%d: a\r\n" % i for i in range(200)) + b"\r\n", 431, "headers_too_large"),
        (b"GET /health HTTP/1.1\r\n" + b"X-Many: " + b"b" * 5000 + b"\r\n" * 0 + b"".join(
            b"\r\nX-%d: " % i + b"c" * 4000 for i in range(20)) + b"\r\n\r\n", 431,
         "headers_too_large"),
        (b"\x00\x01\x02 nonsense\r\n\r\n", 400, "bad_request"),
        (b"GET /health HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400,
         "bad_request"),
        (b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n", 400, "bad_request"),
        # an error in the body of a request the app has begun to read
        (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         b"Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400,
         "bad_request"),
    ]
    for request, status, error in cases:
        got, headers, body = exchange(port, request)
        assert (got, headers["content-type"]) == (status, "application/json"), request[:80]
        doc = orjson.loads(body)
        assert doc["error"] == error and doc["detail"]
    got, _, body = exchange(port, b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 8000
                            + b"\r\nConnection: close\r\n\r\n")
    assert got == 200 and orjson.loads(body)["status"] == "ok"  # under the limits


def sweep(url: str, n: int = 240, threads: int = 4) -> list[tuple[str, dict]]:
    """n requests over fresh connections (so that every worker takes some), from threads."""
    paths = ["/health", "/model", "/users/1/recommendations?n=5"]
    answers, errors = [], []

    def run(k):
        try:
            limits = httpx.Limits(max_keepalive_connections=0)
            with httpx.Client(base_url=url, timeout=DEADLINE, limits=limits) as http:
                for i in range(k, n, threads):
                    path = paths[i % len(paths)]
                    r = http.get(path)
                    assert r.status_code == 200, (path, r.status_code, r.text)
                    answers.append((path, r.json()))
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(DEADLINE)
    assert not errors, errors[0]
    return answers


def one_model(answers) -> tuple[int, int, set]:
    """(generation, n_factors, worker ids) after checking every answer agrees on them."""
    generations = {a["generation"] for p, a in answers if p != "/users/1/recommendations?n=5"}
    factors = {a["n_factors"] for p, a in answers if p == "/model"}
    recommendations = {orjson.dumps(a) for p, a in answers if p.startswith("/users")}
    assert len(generations) == len(factors) == len(recommendations) == 1, \
        (generations, factors, len(recommendations))
    workers = {a["worker"] for p, a in answers if p == "/health"}
    return generations.pop(), factors.pop(), workers


def test_every_worker_answers_from_the_new_model_after_a_reload(models):
    live, second = models
    first = live.read_bytes()
    auth = {"Authorization": "Bearer s3cret"}
    server = Server(live, "--workers", "2", token="s3cret")
    try:
        server.wait_ready(2)
        with httpx.Client(base_url=server.url, timeout=DEADLINE) as http:
            generation, factors, workers = one_model(sweep(server.url))
            assert (generation, factors) == (1, 6) and len(workers) == 2

            live.write_bytes(second.read_bytes())
            r = http.post("/admin/reload", headers=auth)
            assert r.status_code == 200 and r.json()["generation"] == 2
            generation, factors, workers = one_model(sweep(server.url))
            assert (generation, factors) == (2, 3) and len(workers) == 2

            live.write_bytes(b"PK\x03\x04 broken")
            r = http.post("/admin/reload", headers=auth)
            assert r.status_code == 409 and "keeps serving" in r.json()["detail"]
            assert one_model(sweep(server.url))[:2] == (2, 3)

            live.write_bytes(first)
            server.proc.send_signal(signal.SIGHUP)  # to the parent: all workers follow
            server.wait_for(r"model reloaded .* \(generation 3\)")
            generation, factors, workers = one_model(sweep(server.url))
            assert (generation, factors) == (3, 6) and len(workers) == 2

            live.write_bytes(b"not a model")
            server.proc.send_signal(signal.SIGHUP)
            server.wait_for(r"reload refused")
            assert one_model(sweep(server.url, n=60))[:2] == (3, 6)
    finally:
        code = server.stop()
    assert code in (0, -signal.SIGTERM)


def test_acknowledged_ratings_survive_sigkill_and_are_replayed(models, tmp_path, small_ratings):
    """1,000 ratings of known and new users POSTed while two clients ask for
    recommendations; SIGKILL; a new server over the same log answers as the old one did."""
    model_file, _ = models
    log = tmp_path / "ratings.log"
    options = ("--ratings-log", str(log))
    users = [int(u) for u in small_ratings.user_map.ids[:20]] + [900_000 + k for k in range(20)]
    items = [int(i) for i in small_ratings.item_map.ids]
    rng = np.random.default_rng(5)
    batches = [[{"user": users[int(rng.integers(len(users)))],
                 "item": items[int(rng.integers(len(items)))],
                 "rating": float(rng.integers(1, 6))} for _ in range(5)] for _ in range(200)]
    server = Server(model_file, *options, token="sesame")
    acknowledged, statuses, stop = [], [], threading.Event()

    def read_load():
        with httpx.Client(base_url=server.url, timeout=DEADLINE) as http:
            k = 0
            while not stop.is_set():
                statuses.append(http.get(f"/users/{users[k % 20]}/recommendations").status_code)
                k += 1

    readers = [threading.Thread(target=read_load) for _ in range(2)]
    try:
        for t in readers:
            t.start()
        with httpx.Client(base_url=server.url, timeout=DEADLINE) as http:
            for batch in batches:
                r = http.post("/ratings", json={"ratings": batch},
                              headers={"Authorization": "Bearer sesame"})
                assert r.status_code == 200, r.text
                acknowledged.extend(batch)
            pairs = {"pairs": [{"user": u, "item": i} for u in users for i in items[:10]]}
            before = http.post("/predict", json=pairs).json()
            lists = [http.get(f"/users/{u}/recommendations").json() for u in users]
        stop.set()
        for t in readers:
            t.join(DEADLINE)
    finally:
        stop.set()
        server.proc.kill()  # SIGKILL: no shutdown, no flush
        server.proc.wait()
    assert len(statuses) > 0 and set(statuses) == {200}
    logged = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    assert [x["seq"] for x in logged] == list(range(1, 1001))
    assert [(x["user"], x["item"], x["rating"]) for x in logged] == \
        [(r["user"], r["item"], r["rating"]) for r in acknowledged]
    again = Server(model_file, *options, token="sesame")
    try:
        with httpx.Client(base_url=again.url, timeout=DEADLINE) as http:
            assert http.post("/predict", json=pairs).json() == before
            assert [http.get(f"/users/{u}/recommendations").json() for u in users] == lists
            assert http.get("/model").json()["live"]["through"] == 1000
    finally:
        again.stop()
    assert server.errors == [] and again.errors == []
