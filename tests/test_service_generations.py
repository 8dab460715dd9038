"""One model generation for every worker (``recsys.serving.generations``), in one process:
holders sharing a store stand for the workers of ``recsys serve --workers N``."""

import hashlib

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from recsys import FunkSVD  # noqa: E402
from recsys.errors import ModelError  # noqa: E402
from recsys.models.registry import load, save  # noqa: E402
from recsys.serving.app import create_app  # noqa: E402
from recsys.serving.engine import load_served  # noqa: E402
from recsys.serving.generations import GenerationStore, SharedHolder  # noqa: E402
from recsys.serving.settings import Settings  # noqa: E402


@pytest.fixture()
def files(tmp_path, small_ratings):
    first, second = tmp_path / "first.npz", tmp_path / "second.npz"
    save(FunkSVD(n_factors=6, n_epochs=5, seed=1).fit(small_ratings), first)
    save(FunkSVD(n_factors=3, n_epochs=5, seed=2).fit(small_ratings), second)
    live = tmp_path / "live.npz"
    live.write_bytes(first.read_bytes())
    return live, first, second


@pytest.fixture()
def store(files):
    live, _, _ = files
    store = GenerationStore.create()
    store.publish(live, lambda p: load_served(load, p, live))
    yield store
    store.remove()


def _workers(store, live, n=2):
    return [SharedHolder(store, live, cache_top=10) for _ in range(n)]


def test_a_reload_in_one_worker_reaches_every_worker(files, store):
    live, _, second = files
    a, b = _workers(store, live)
    assert a.generation == b.generation == 1 and not a.stale() and not b.stale()
    live.write_bytes(second.read_bytes())
    a.reload()
    assert a.generation == 2 and a.current.n_factors == 3 and not a.stale()
    assert b.stale()  # the check b makes before answering any request
    assert b.current.n_factors == 6
    b.catch_up()
    assert b.generation == 2 and b.current.n_factors == 3 and not b.stale()
    assert b.current.path == str(live)  # reported as the model file, not the snapshot


def test_every_worker_loads_the_published_bytes_whatever_the_file_becomes(files, store):
    live, first, second = files
    a, b = _workers(store, live)
    live.write_bytes(second.read_bytes())
    a.reload()
    live.write_bytes(first.read_bytes())  # changed again before b catches up
    b.catch_up()
    assert b.current.n_factors == 3
    record, _ = store.latest()
    assert record["sha256"] == hashlib.sha256(second.read_bytes()).hexdigest()


def test_a_file_that_does_not_load_publishes_nothing(files, store):
    live, _, _ = files
    a, b = _workers(store, live)
    live.write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(ModelError, match="live.npz"):
        a.reload()
    assert not a.stale() and not b.stale()
    assert a.generation == b.generation == 1 and a.current.n_factors == 6
    assert sorted(p.name for p in store.folder.glob("*.npz")) == ["model-1.npz"]


def test_any_exception_from_the_loader_is_a_model_error(files, store):
    live, _, _ = files

    def exploding(path):
        raise ZeroDivisionError("boom")

    worker = SharedHolder(store, live)
    worker._load = exploding  # what a reload would load the file with
    with pytest.raises(ModelError, match="ZeroDivisionError: boom"):
        worker.reload()
    assert worker.generation == 1 and not worker.stale()


def test_old_snapshots_are_pruned_and_a_lagging_worker_jumps_to_the_newest(files, store):
    live, first, second = files
    a, b = _workers(store, live)
    for source in (second, first, second):
        live.write_bytes(source.read_bytes())
        a.reload()
    assert a.generation == 4
    assert sorted(p.name for p in store.folder.glob("*.npz")) == ["model-3.npz", "model-4.npz"]
    b.catch_up()
    assert b.generation == 4 and b.current.n_factors == 3


def test_workers_apps_answer_from_the_new_generation_after_a_reload(files, store):
    live, _, second = files
    settings = Settings(admin_token="t", max_n=20, max_batch=50, max_body_bytes=4096)
    apps = [create_app(None, settings, holder=h) for h in _workers(store, live)]
    with TestClient(apps[0]) as one, TestClient(apps[1]) as two:
        before = two.get("/users/1/recommendations?n=5").json()
        assert {c.get("/model").json()["n_factors"] for c in (one, two)} == {6}
        live.write_bytes(second.read_bytes())
        r = one.post("/admin/reload", headers={"Authorization": "Bearer t"})
        assert r.status_code == 200 and r.json()["generation"] == 2
        # the other worker has not reloaded by itself: its next request does it first
        for url in ("/users/1/recommendations?n=5", "/model", "/health"):
            body = two.get(url).json()
            if url == "/model":
                assert body["n_factors"] == 3
            elif url == "/health":
                assert body["generation"] == 2 and body["worker"] > 0
            else:
                assert body != before
        assert two.get("/users/1/recommendations?n=5").json() == \
            one.get("/users/1/recommendations?n=5").json()
        live.write_bytes(b"not a model")
        r = two.post("/admin/reload", headers={"Authorization": "Bearer t"})
        assert r.status_code == 409 and r.json()["error"] == "reload_refused"
        assert [c.get("/health").json()["generation"] for c in (one, two)] == [2, 2]


def test_a_worker_that_cannot_load_the_new_generation_refuses_to_answer(files, store):
    live, _, second = files
    a, b = _workers(store, live)
    app = create_app(None, Settings(), holder=b)
    live.write_bytes(second.read_bytes())
    a.reload()
    record, _ = store.latest()
    store.snapshot(record).write_bytes(b"damaged after publishing")
    with TestClient(app) as c:
        r = c.get("/users/1/recommendations")
        assert r.status_code == 503 and r.json()["error"] == "model_unavailable"
        assert b.generation == 1  # and it did not answer from it
