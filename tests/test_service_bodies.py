"""Hostile request bodies and files: large bad bodies are refused with bounded work off the
event loop (another client is answered meanwhile), fold-in ratings are checked against the
training scale, and a model file that does not load, whatever the error, is a 409."""

import asyncio
import logging
import threading

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from recsys import FunkSVD, RankingMF  # noqa: E402
from recsys.models.registry import load, save  # noqa: E402
from recsys.serving import bodies  # noqa: E402
from recsys.serving.app import _install_sighup, create_app  # noqa: E402
from recsys.serving.engine import ModelHolder  # noqa: E402
from recsys.serving.settings import Settings  # noqa: E402

DEADLINE = 30.0  # seconds a blocked step may wait before the test gives up (never timing)
JSON = {"content-type": "application/json"}
BAD_PAIR = b'{"user": 1.5, "item": true}'


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, small_ratings):
    path = tmp_path_factory.mktemp("bodies") / "model.npz"
    save(FunkSVD(n_factors=5, n_epochs=10, seed=4).fit(small_ratings), path)
    return path


@pytest.fixture(scope="module")
def client(model_file):
    settings = Settings(max_n=50, max_batch=10_000, max_body_bytes=2 << 20,
                        inline_body_bytes=4096)
    with TestClient(create_app(model_file, settings)) as c:
        yield c


def _pairs(pair: bytes, n: int) -> bytes:
    return b'{"pairs": [' + b",".join([pair] * n) + b"]}"


def test_a_megabyte_of_bad_pairs_is_refused_before_validation(client):
    body = _pairs(BAD_PAIR, 36_000)
    assert len(body) > 1_000_000
    r = client.post("/predict", content=body, headers=JSON)
    assert r.status_code == 413 and r.json()["error"] == "batch_too_large"
    assert "36000 pairs" in r.json()["detail"]


def test_many_bad_pairs_within_the_batch_limit_name_the_first_places(client):
    r = client.post("/predict", content=_pairs(BAD_PAIR, 9_000), headers=JSON)
    assert r.status_code == 422 and r.json()["error"] == "invalid_request"
    detail = r.json()["detail"]
    assert detail.startswith("pairs.0.user: Input should be an integer or a string id")
    assert detail.endswith("(and more)") or "more)" in detail
    late = _pairs(b'{"user": 1, "item": 2}', 5_000)[:-2] + b', {"user": [1], "item": 2}]}'
    r = client.post("/predict", content=late, headers=JSON)
    assert r.status_code == 422 and "pairs.5000.user" in r.json()["detail"]
    good = client.post("/predict", content=_pairs(b'{"user": 1, "item": 2}', 5_000),
                       headers=JSON)
    assert good.status_code == 200 and len(good.json()["predictions"]) == 5_000


def test_large_bodies_are_answered_in_a_worker_thread(client, monkeypatch):
    where = []
    real = bodies.answer

    def recording(*args):
        try:
            asyncio.get_running_loop()
            where.append("event loop")
        except RuntimeError:
            where.append("worker thread")
        return real(*args)

    monkeypatch.setattr(bodies, "answer", recording)
    client.post("/predict", content=_pairs(BAD_PAIR, 20), headers=JSON)  # 600 bytes
    client.post("/predict", content=_pairs(BAD_PAIR, 9_000), headers=JSON)
    client.post("/recommendations", content=b'{"ratings": [' + b",".join(
        [b'{"item": 1, "rating": "x"}'] * 500) + b"]}", headers=JSON)
    assert where == ["event loop", "worker thread", "worker thread"]


def test_a_small_request_is_answered_while_a_large_body_is_validated(client, monkeypatch):
    started, release = threading.Event(), threading.Event()
    released = []
    real = bodies.answer

    def held(*args):  # stands for a validation that takes long: it waits for the test
        started.set()
        released.append(release.wait(DEADLINE))
        return real(*args)

    monkeypatch.setattr(bodies, "answer", held)
    answers = {}
    big = threading.Thread(target=lambda: answers.setdefault("big", client.post(
        "/predict", content=_pairs(BAD_PAIR, 9_000), headers=JSON)))
    big.start()
    assert started.wait(DEADLINE)
    small = client.get("/users/1/recommendations?n=3")  # while the large one is held
    release.set()
    big.join(DEADLINE)
    assert small.status_code == 200 and len(small.json()["items"]) == 3
    assert released == [True]  # the small answer came before the large one was let go
    assert answers["big"].status_code == 422


@pytest.mark.parametrize("body, query", [
    (b'{"pairs": [{"user": 1, "item": 2}, {"user": "x", "item": 3}]}', b""),
    (b'{"pairs": [{"user": 1.5, "item": 2}]}', b""),
    (b'{"pairs": [{"user": 1, "item": 2}], "x": 1}', b""),
    (b'{"pairs": {}}', b""), (b"[]", b""), (b'"pairs"', b""), (b"{", b""), (b"\xff", b""),
    (b'{"pairs": [{"user": 123456789012345678901234, "item": 2}]}', b""),
    (b'{"pairs": [{"user": 999, "item": 2}]}', b"strict=true"),
    (b'{"pairs": [{"user": 1, "item": 2}]}', b"strict=maybe"),
    (b'{"pairs": [{"user": 1.5, "item": 2}]}', b"strict=maybe"),
    (b'{"pairs": [{"user": 1, "item": 2}]}', b"strict=false&strict=yes"),
])
def test_bodies_read_inline_and_in_a_thread_get_the_same_answer(model_file, body, query):
    holder = ModelHolder(model_file, cache_top=0)
    answers = []
    for inline in (0, 1 << 20):
        app = create_app(None, Settings(inline_body_bytes=inline, fast_path=False),
                         holder=holder)
        with TestClient(app) as c:
            r = c.post("/predict?" + query.decode(), content=body, headers=JSON)
            answers.append((r.status_code, r.content))
    assert answers[0] == answers[1]
    status, content = answers[0]
    assert status == 200 or (status < 500 and b'"error"' in content)


def _ratings(*pairs):
    return {"ratings": [{"item": i, "rating": v} for i, v in pairs]}


@pytest.mark.parametrize("ratings, status, error, words", [
    (((1, 1000),), 422, "rating_out_of_range", ["item 1", "1000", "[1, 5]"]),
    (((1, 5), ("nope", -3)), 422, "rating_out_of_range", ["ratings.1", "'nope'", "-3"]),
    (((1, 5), (2, 0.5)), 422, "rating_out_of_range", ["item 2", "0.5"]),
    (((1, 1), (2, 5), (3, 3.5)), 200, None, []),
])
def test_fold_in_ratings_must_lie_in_the_training_scale(client, ratings, status, error, words):
    r = client.post("/recommendations", json={**_ratings(*ratings), "n": 5})
    assert r.status_code == status, r.text
    if error:
        assert r.json()["error"] == error
        assert all(w in r.json()["detail"] for w in words), r.json()["detail"]
    else:
        assert len(r.json()["items"]) == 5


def test_a_fold_in_with_non_finite_scores_is_a_422_not_an_empty_200(model_file, monkeypatch):
    model = load(model_file)
    holder = ModelHolder("in memory", loader=lambda _: model)
    with TestClient(create_app(None, Settings(), holder=holder)) as c:
        def overflowing(ratings, n=10, exclude_rated=True, strict=False):
            return np.array([], dtype=np.int64), np.array([], dtype=np.float32)

        monkeypatch.setattr(model, "recommend_for_ratings", overflowing)
        r = c.post("/recommendations", json=_ratings((1, 5.0)))
        assert r.status_code == 422 and r.json()["error"] == "fold_in_failed"
        monkeypatch.setattr(model, "fold_in", lambda ratings: (np.full(5, np.inf), 0.0))
        r = c.post("/recommendations", json=_ratings((1, 5.0)))
        assert r.status_code == 422 and r.json()["error"] == "fold_in_failed"


def test_the_python_fold_in_refuses_ratings_outside_the_scale(model_file, small_ratings):
    model = load(model_file)
    with pytest.raises(ValueError, match=r"item 1: rating 1000 is outside .* \[1, 5\]"):
        model.fold_in({1: 1000.0})
    model.fold_in({1: 5.0, 2: 1.0})
    ranking = RankingMF(n_factors=3, n_epochs=2, threshold=4).fit(small_ratings)
    assert ranking.rating_scale_ == (0.0, 1.0) and ranking.fold_in_scale() == (1.0, 5.0)
    with pytest.raises(ValueError, match="rating 6"):
        ranking.fold_in({1: 6.0})
    ranking.fold_in({1: 5.0})  # on the ratings' scale, not the preferences' (0, 1)


class Boom(Exception):
    pass


@pytest.mark.parametrize("error", [Boom("strange"), KeyError("factors"), MemoryError(),
                                   ZeroDivisionError("x")])
def test_a_reload_that_raises_anything_is_a_409_and_keeps_the_model(model_file, error):
    model = load(model_file)
    calls = []

    def loader(path):
        calls.append(path)
        if len(calls) > 1:
            raise error
        return model

    holder = ModelHolder(model_file, loader=loader)
    with TestClient(create_app(None, Settings(admin_token="t"), holder=holder)) as c:
        before = c.get("/users/1/recommendations").json()
        r = c.post("/admin/reload", headers={"Authorization": "Bearer t"})
        assert r.status_code == 409 and r.json()["error"] == "reload_refused"
        assert type(error).__name__ in r.json()["detail"]
        assert c.get("/users/1/recommendations").json() == before
        assert c.get("/health").json()["generation"] == 1


def test_a_sighup_reload_that_fails_logs_one_refusal_and_keeps_serving(model_file, caplog):
    model = load(model_file)
    holder = ModelHolder(model_file, loader=lambda _: model)
    holder._load = lambda _: (_ for _ in ()).throw(RuntimeError("bad\nfile"))

    async def main():
        import signal

        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        real = loop.run_in_executor

        def run_and_signal(executor, fn, *args):
            future = real(executor, fn, *args)
            future.add_done_callback(lambda _: done.set())
            return future

        loop.run_in_executor = run_and_signal
        _install_sighup(holder)
        signal.raise_signal(signal.SIGHUP)
        await asyncio.wait_for(done.wait(), DEADLINE)
        loop.remove_signal_handler(signal.SIGHUP)

    with caplog.at_level(logging.ERROR, logger="recsys.serving.app"):
        asyncio.run(main())
    refusals = [r.getMessage() for r in caplog.records if "reload refused" in r.getMessage()]
    assert len(refusals) == 1 and "\n" not in refusals[0] and "RuntimeError" in refusals[0]
    assert holder.current.model is model and holder.generation == 1
