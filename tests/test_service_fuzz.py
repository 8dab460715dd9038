"""A seeded fuzz campaign of the service (bodies, headers, paths, raw bytes), in process
and against a real server: no 5xx, always a JSON body, and the server keeps answering.
Longer campaigns: scripts/fuzz_service.py."""

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402
from test_service_process import DEADLINE, Server  # noqa: E402

from recsys import FunkSVD  # noqa: E402
from recsys.models.registry import save  # noqa: E402
from recsys.serving.app import create_app  # noqa: E402
from recsys.serving.settings import Settings  # noqa: E402
from recsys.testing.http_fuzz import exchange, random_request, violation  # noqa: E402


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, small_ratings):
    path = tmp_path_factory.mktemp("fuzz") / "model.npz"
    save(FunkSVD(n_factors=4, n_epochs=5, seed=0).fit(small_ratings), path)
    return path


@pytest.mark.parametrize("seed", [0, 1])
def test_in_process_fuzz_keeps_the_contract(model_file, seed):
    rng = np.random.default_rng(seed)
    app = create_app(model_file, Settings(admin_token="t0ken", inline_body_bytes=2048))
    statuses, findings = set(), []
    with TestClient(app, raise_server_exceptions=False) as client:
        for _ in range(400):
            request = random_request(rng)
            if request.raw_bytes is not None:
                continue  # raw bytes need a socket: the real-server test sends them
            try:
                r = client.request(request.method, request.target, headers=request.headers,
                                   content=request.body)
            except (httpx.InvalidURL, UnicodeEncodeError, ValueError):
                continue  # a request the client library cannot send
            statuses.add(r.status_code)
            found = violation(request, r.status_code, r.headers.get("content-type"),
                              r.content)
            if found:
                findings.append((found, request))
        assert client.get("/health").status_code == 200
    assert findings == []
    assert {200, 404, 415, 422} <= statuses  # the campaign reached the model and the checks


def test_raw_fuzz_of_a_real_server_keeps_the_contract(model_file):
    rng = np.random.default_rng(7)
    server = Server(model_file)
    findings, statuses = [], set()
    try:
        for _ in range(300):
            request = random_request(rng)
            try:
                status, content_type, body = exchange(server.port, request)
            except Exception as exc:  # noqa: BLE001 - no answer is a finding too
                findings.append((f"{type(exc).__name__}: {exc}", request.raw()[:200]))
                continue
            statuses.add(status)
            found = violation(request, status, content_type, body)
            if found:
                findings.append((found, request.raw()[:200]))
        assert httpx.get(server.url + "/health").json()["status"] == "ok"
        assert server.proc.poll() is None
    finally:
        server.stop()
    log = []
    while (line := server.lines.get(timeout=DEADLINE)) is not None:
        log.append(line)
    assert findings == []
    assert not [line for line in log if "Traceback" in line], "".join(log[-40:])
    assert {200, 400, 404, 422} <= statuses
