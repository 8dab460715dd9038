"""The HTTP service through FastAPI's TestClient: answers equal the model's, bad requests
get a 4xx with a JSON error body, and reloads swap the model or leave it serving."""

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
pytest.importorskip("orjson")

from fastapi.testclient import TestClient  # noqa: E402

from recsys import FunkSVD  # noqa: E402
from recsys.errors import ModelError  # noqa: E402
from recsys.models.registry import load, save  # noqa: E402
from recsys.serving.app import create_app  # noqa: E402
from recsys.serving.engine import ModelHolder, Served  # noqa: E402
from recsys.serving.middleware import FastPath  # noqa: E402
from recsys.serving.settings import Settings  # noqa: E402

SETTINGS = dict(max_n=50, max_batch=100, max_body_bytes=4096)


@pytest.fixture(scope="module")
def model_file(service_model_file):
    return service_model_file


@pytest.fixture(scope="module")
def model(model_file):
    return load(model_file)


@pytest.fixture(scope="module")
def client(model_file):
    app = create_app(model_file, Settings(admin_token=None, **SETTINGS))
    with TestClient(app) as c:
        yield c


def _ids(body):
    return [x["item"] for x in body["items"]]


def _scores(body, key="score"):
    return [x[key] for x in body["items"]]


def test_health_and_model_description(client, model):
    assert client.get("/health").json()["status"] == "ok"
    info = client.get("/model").json()
    assert info["format"] == "recsys-funksvd" and info["format_version"] == 2
    assert (info["n_users"], info["n_items"], info["n_factors"]) == (100, 80, 8)
    assert info["trained_at"] == model.manifest_["created"]
    assert info["params"]["n_epochs"] == 30 and info["epochs"] == 30
    assert info["reg"] == model.reg_


@pytest.mark.parametrize("exclude", [True, False])
def test_recommendations_equal_the_model(client, model, exclude):
    # with seen items excluded, answers come from the top items precomputed at load by
    # recommend_many over all users; otherwise from the one-user path of recommend
    every_ids, every_scores = model.recommend_many(model.user_map_.ids, n=7)
    for user in (1, 17, 100):
        ids, scores = model.recommend(user, n=7, exclude_seen=exclude)
        if exclude:
            row = model.user_map_.index_of(user)
            ids, scores = every_ids[row], every_scores[row]
        r = client.get(f"/users/{user}/recommendations",
                       params={"n": 7, "exclude_seen": str(exclude).lower()})
        assert r.status_code == 200
        body = r.json()
        assert body["user"] == user and body["fallback"] is None
        assert _ids(body) == ids.tolist()
        assert _scores(body) == scores.tolist()  # the same float32 sums, bit for bit


def test_precomputed_top_items_agree_with_computing_them(model_file, model):
    cached = Served(model, cache_top=100)
    assert cached.cache_top == 80  # all the items
    fresh = Served(model, cache_top=0)
    small = Served(model, cache_top=5)
    for u in range(model.user_factors_.shape[0]):
        ids, scores = cached.recommend(u, 10, True)
        ids2, scores2 = fresh.recommend(u, 10, True)
        assert ids == ids2
        np.testing.assert_allclose(scores, scores2, rtol=1e-6)
        assert small.recommend(u, 10, True) == fresh.recommend(u, 10, True)  # n > 5
    for i in range(model.item_factors_.shape[0]):
        ids, sims = cached.similar(i, 10)
        ids2, sims2 = fresh.similar(i, 10)
        assert ids == ids2 == model.similar_items(cached.item_ids[i], n=10)[0].tolist()
        np.testing.assert_allclose(sims, sims2, rtol=1e-12)
    assert cached.similar_top == 79 and small.similar(3, 10) == fresh.similar(3, 10)
    over = Served(model, cache_top=100, cache_budget=10)
    assert over.cache_top == over.similar_top == 0  # over budget: nothing precomputed


@pytest.mark.parametrize("url, fast", [
    ("/users/1/recommendations", True), ("/users/2/recommendations?n=5", True),
    ("/users/3/recommendations?n=50&exclude_seen=false", True),
    ("/users/4/recommendations?exclude_seen=0&n=3", True),
    ("/users/1/recommendations?fallback=none", True),
    ("/users/77777/recommendations?fallback=popular&n=4", True),
    ("/users/abc/recommendations?fallback=popular", True),
    ("/users/%31/recommendations", True), ("/users/1.0/recommendations", True),
    ("/items/3/similar", True), ("/items/3/similar?n=50", True),
    # everything else is left to the route: errors, unusual spellings, unknown ids
    ("/users/3/recommendations?n=51", False), ("/users/5/recommendations?n=010", False),
    ("/users/4/recommendations?exclude_seen=True", False),
    ("/users/5/recommendations?n=%32", False), ("/users/5/recommendations?n=2&n=3", False),
    ("/users/5/recommendations?n=", False), ("/users/5/recommendations?x=1", False),
    ("/users/77777/recommendations", False), ("/items/3/similar?n=50&x", False),
    ("/items/999/similar", False), ("/items/3/similar?exclude_seen=true", False),
    ("/items/3/similar?n=79", False),
])
def test_fast_path_answers_exactly_like_the_route(model_file, url, fast):
    holder = ModelHolder(model_file, cache_top=100)
    slow = TestClient(create_app(None, Settings(fast_path=False, **SETTINGS), holder=holder))
    quick = TestClient(create_app(None, Settings(**SETTINGS), holder=holder))
    a, b = slow.get(url), quick.get(url)
    assert (a.status_code, a.content) == (b.status_code, b.content)
    assert _fast_path_answered(quick.app) == int(fast)


PAIR = '{"user": 1, "item": 2}'


@pytest.mark.parametrize("body, headers, query, fast", [
    ('{"pairs": [{"user": 1, "item": 2}, {"user": "x", "item": 3}]}', None, "", True),
    ('{"pairs": []}', None, "", True),
    ('{"pairs": [{"item": 2, "user": 9999999}]}', None, "", True),
    ('{"pairs": [' + ", ".join([PAIR] * 100) + "]}", None, "", True),
    ('{"pairs": [' + ", ".join([PAIR] * 101) + "]}", None, "", False),
    ('{"pairs": [{"user": 1.0, "item": 2}]}', None, "", False),
    ('{"pairs": [{"user": true, "item": 2}]}', None, "", False),
    ('{"pairs": [{"user": null, "item": 2}]}', None, "", False),
    ('{"pairs": [{"user": 1, "item": 2, "x": 1}]}', None, "", False),
    ('{"pairs": [{"user": 1, "itm": 2}]}', None, "", False),
    ('{"pairs": [{"user": 1}]}', None, "", False),
    ('{"pairs": [{"user": 123456789012345678901234, "item": 2}]}', None, "", False),
    ('{"pairs": {}}', None, "", False), ("[]", None, "", False),
    ('{"pairs": [], "x": 1}', None, "", False), ("{", None, "", False),
    ('{"pairs": [{"user": 999, "item": 2}]}', None, "?strict=true", False),
    ('{"pairs": []}', {"content-type": "text/plain"}, "", False),
    ('{"pairs": []}', {"content-type": "application/json; charset=utf-8"}, "", False),
])
def test_fast_predict_answers_exactly_like_the_route(model_file, body, headers, query, fast):
    holder = ModelHolder(model_file, cache_top=0)
    slow = TestClient(create_app(None, Settings(fast_path=False, **SETTINGS), holder=holder))
    quick = TestClient(create_app(None, Settings(**SETTINGS), holder=holder))
    headers = headers or {"content-type": "application/json"}
    a = slow.post("/predict" + query, content=body.encode(), headers=headers)
    b = quick.post("/predict" + query, content=body.encode(), headers=headers)
    assert (a.status_code, a.content) == (b.status_code, b.content)
    assert _fast_path_answered(quick.app) == int(fast)


def _fast_path_answered(app) -> int:
    layer = app.middleware_stack
    while not isinstance(layer, FastPath):
        layer = layer.app
    return layer.answered


def test_unknown_user_is_404_or_popular_on_request(client, model):
    r = client.get("/users/4242/recommendations")
    assert r.status_code == 404
    assert r.json()["error"] == "unknown_user" and "4242" in r.json()["detail"]
    r = client.get("/users/4242/recommendations", params={"fallback": "popular", "n": 5})
    assert r.status_code == 200 and r.json()["fallback"] == "popular"
    assert _ids(r.json()) == model.recommend(4242, n=5)[0].tolist()


def test_similar_items_equal_the_model(client, model):
    ids, sims = model.similar_items(3, n=6)
    r = client.get("/items/3/similar", params={"n": 6})
    assert r.status_code == 200 and r.json()["item"] == 3
    assert _ids(r.json()) == ids.tolist()
    np.testing.assert_allclose(_scores(r.json(), "similarity"), sims, rtol=1e-12)
    r = client.get("/items/nope/similar")
    assert r.status_code == 404 and r.json()["error"] == "unknown_item"


def test_predict_equals_the_model_and_strict_names_unknown_ids(client, model):
    pairs = [{"user": 1, "item": 2}, {"user": 50, "item": 80}, {"user": 999, "item": 3}]
    r = client.post("/predict", json={"pairs": pairs})
    assert r.status_code == 200
    got = [p["prediction"] for p in r.json()["predictions"]]
    want = model.predict([1, 50, 999], [2, 80, 3])
    assert got == want.tolist()
    r = client.post("/predict", params={"strict": "true"}, json={"pairs": pairs})
    assert r.status_code == 404 and "999" in r.json()["detail"]
    assert client.post("/predict", json={"pairs": []}).json() == {"predictions": []}


def test_new_user_recommendations_fold_in(client, model, small_ratings):
    u = int(np.argmax(np.bincount(small_ratings.users)))
    sel = small_ratings.users == u
    items = small_ratings.item_map.ids[small_ratings.items[sel]].tolist()
    values = small_ratings.values[sel].tolist()
    ratings = [{"item": i, "rating": v} for i, v in zip(items, values, strict=True)]
    ratings.append({"item": 12345, "rating": 4.0})
    r = client.post("/recommendations", json={"ratings": ratings, "n": 10})
    assert r.status_code == 200
    body = r.json()
    assert body["unknown_items"] == [12345] and body["used_ratings"] == len(items)
    assert not set(_ids(body)) & set(items)
    trained = _ids(client.get(f"/users/{small_ratings.user_map.ids[u]}/recommendations").json())
    assert len(set(trained) & set(_ids(body))) >= 7
    ids, scores = model.recommend_for_ratings((items, values), n=10)
    assert _ids(body) == ids.tolist()


LIMIT_BODY = b'{"pairs": [' + b",".join([b'{"user": 1, "item": 2}'] * 300) + b"]}"


@pytest.mark.parametrize("method, url, kwargs, status, error", [
    ("get", "/users/1/recommendations?n=0", {}, 422, "invalid_request"),
    ("get", "/users/1/recommendations?n=51", {}, 422, "invalid_request"),
    ("get", "/users/1/recommendations?n=ten", {}, 422, "invalid_request"),
    ("get", "/users/1/recommendations?exclude_seen=maybe", {}, 422, "invalid_request"),
    ("get", "/users/1/recommendations?fallback=random", {}, 422, "invalid_request"),
    ("get", "/items/3/similar?n=-1", {}, 422, "invalid_request"),
    ("post", "/predict", {"content": b'{"pairs": [', "headers": {
        "content-type": "application/json"}}, 400, "malformed_json"),
    ("post", "/predict", {"json": {"pairs": [{"user": 1.5, "item": 2}]}}, 422,
     "invalid_request"),
    ("post", "/predict", {"json": {"pairs": [{"user": True, "item": 2}]}}, 422,
     "invalid_request"),
    ("post", "/predict", {"json": {"pairs": [{"user": 2**70, "item": 2}]}}, 422,
     "invalid_request"),
    ("post", "/predict", {"json": {"pairs": [[1, 2]]}}, 422, "invalid_request"),
    ("post", "/predict", {"json": [{"user": 1, "item": 2}]}, 422, "invalid_request"),
    ("post", "/predict", {"json": {"pairs": [{"user": 1, "item": 2}] * 101}}, 413,
     "batch_too_large"),
    ("post", "/predict", {"content": LIMIT_BODY, "headers": {
        "content-type": "application/json"}}, 413, "body_too_large"),
    ("post", "/recommendations", {"json": {"ratings": [{"item": 1, "rating": "NaN"}]}}, 422,
     "invalid_request"),
    ("post", "/recommendations", {"json": {"ratings": [{"item": 1, "rating": 3},
                                                       {"item": 1, "rating": 4}]}}, 422,
     "invalid_request"),
    ("post", "/recommendations", {"json": {"ratings": [], "n": 51}}, 422, "invalid_request"),
    ("post", "/recommendations", {"json": {"ratings": [{"item": 1, "rating": 3, "x": 1}]}},
     422, "invalid_request"),
    ("post", "/predict", {"content": b'{"pairs": []}'}, 415, "unsupported_media_type"),
    ("delete", "/predict", {}, 405, "method_not_allowed"),
    ("get", "/no/such/path", {}, 404, "not_found"),
])
def test_bad_requests_get_a_json_4xx(client, method, url, kwargs, status, error):
    r = getattr(client, method)(url, **kwargs)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == error and body["detail"]


def test_streamed_body_over_the_limit_is_refused(client):
    def chunks():  # no Content-Length: the size is only known while reading
        for _ in range(10):
            yield b" " * 1000

    r = client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "body_too_large"
    ok = client.post("/predict", content=iter([b'{"pairs": ', b"[]}"]),
                     headers={"content-type": "application/json"})
    assert ok.status_code == 200 and ok.json() == {"predictions": []}


def test_validation_messages_name_the_field(client):
    detail = client.post("/predict", json={"pairs": [{"user": 1.5, "item": 2}]}).json()["detail"]
    assert "pairs.0.user" in detail and "integer or a string" in detail
    detail = client.get("/users/1/recommendations?n=51").json()["detail"]
    assert "query.n" in detail and "50" in detail


# ----------------------------------------------------------------------------- reload


@pytest.fixture()
def reloadable(tmp_path, model_file, small_ratings):
    path = tmp_path / "live.npz"
    path.write_bytes(model_file.read_bytes())
    other = tmp_path / "other.npz"
    save(FunkSVD(n_factors=4, n_epochs=5, seed=9).fit(small_ratings), other)
    app = create_app(path, Settings(admin_token="s3cret", **SETTINGS))
    with TestClient(app) as c:
        yield c, path, other


def test_reload_needs_the_token(reloadable, client):
    c, _, _ = reloadable
    assert c.post("/admin/reload").status_code == 403
    assert c.post("/admin/reload", headers={"Authorization": "Bearer nope"}).status_code == 403
    r = client.post("/admin/reload", headers={"Authorization": "Bearer "})
    assert r.status_code == 403 and r.json()["error"] == "reload_disabled"


def test_reload_swaps_the_model_and_refuses_a_broken_file(reloadable):
    c, path, other = reloadable
    auth = {"Authorization": "Bearer s3cret"}
    before = c.get("/users/1/recommendations").json()
    path.write_bytes(other.read_bytes())
    r = c.post("/admin/reload", headers=auth)
    assert r.status_code == 200 and r.json()["generation"] == 2
    assert c.get("/model").json()["n_factors"] == 4
    after = c.get("/users/1/recommendations").json()
    assert after["items"] == _ids_scores(load(other), 1) != before["items"]
    path.write_bytes(path.read_bytes()[:1000])  # truncated
    r = c.post("/admin/reload", headers=auth)
    assert r.status_code == 409 and "keeps serving" in r.json()["detail"]
    assert c.get("/health").json()["generation"] == 2
    assert c.get("/users/1/recommendations").json() == after


def _ids_scores(model, user):
    ids, scores = model.recommend(user, n=10)
    return [{"item": i, "score": s} for i, s in zip(ids.tolist(), scores.tolist(), strict=True)]


def test_requests_in_flight_finish_on_the_old_model(tmp_path, model_file, small_ratings):
    path = tmp_path / "m.npz"
    path.write_bytes(model_file.read_bytes())
    holder = ModelHolder(path)
    old = holder.current  # what a request in flight holds
    expected = old.recommend(0, 5, True)
    save(FunkSVD(n_factors=4, n_epochs=3, seed=5).fit(small_ratings), path)
    new = holder.reload()
    assert holder.current is new and new is not old and new.n_factors == 4
    assert old.recommend(0, 5, True) == expected
    path.write_text("not a model")
    with pytest.raises(ModelError):
        holder.reload()
    assert holder.current is new and holder.generation == 2


def test_titles_are_served_when_the_model_has_them(model_file):
    model = load(model_file)
    model.state_.item_titles = {i: f"Film {i}" for i in model.item_map_.ids.tolist()}
    holder = ModelHolder("in memory", loader=lambda _: model, cache_top=100)
    app = create_app(None, Settings(**SETTINGS), holder=holder)
    with TestClient(app) as c:
        for url in ("/users/1/recommendations?n=3", "/items/2/similar?n=3"):
            items = c.get(url).json()["items"]
            assert [x["title"] for x in items] == [f"Film {x['item']}" for x in items]



def test_text_ids_work_everywhere(tmp_path, small_ratings):
    frame = small_ratings.to_dataframe()
    frame["user"] = "u" + frame["user"].astype(str)
    frame["item"] = "i" + frame["item"].astype(str)
    path = tmp_path / "text.npz"
    save(FunkSVD(n_factors=4, n_epochs=5, seed=0).fit(frame), path)
    model = load(path)
    with TestClient(create_app(path, Settings(**SETTINGS))) as c:
        body = c.get("/users/u1/recommendations?n=3").json()
        assert body["user"] == "u1" and all(x["item"].startswith("i") for x in body["items"])
        assert c.get("/items/i3/similar?n=2").json()["item"] == "i3"
        pairs = [{"user": "u1", "item": "i2"}, {"user": 1, "item": "i2"}]
        got = [p["prediction"] for p in c.post("/predict", json={"pairs": pairs}).json()[
            "predictions"]]
        assert got == model.predict(["u1", "1"], ["i2", "i2"]).tolist()
        assert c.get("/users/1/recommendations").status_code == 404


@pytest.mark.parametrize("kind", ["SVDpp", "RankingMF", "HybridMF", "Biases", "GlobalMean"])
def test_every_model_kind_is_served(tmp_path, small_ratings, kind):
    import recsys

    cls = getattr(recsys, kind)
    fitted = cls(n_factors=3, n_epochs=3, reg=0.05).fit(small_ratings) if kind == "SVDpp" \
        else cls().fit(small_ratings)
    path = tmp_path / "m.npz"
    save(fitted, path)
    app = create_app(path, Settings(admin_token=None, **SETTINGS))
    with TestClient(app) as c:
        info = c.get("/model").json()
        assert info["reg"] == fitted.report_.reg
        assert (info["reg"] is None) == (kind in ("RankingMF", "Biases", "GlobalMean"))
        user = small_ratings.user_map.id_of(0)
        body = c.get(f"/users/{user}/recommendations?n=5").json()
        assert _ids(body) == fitted.recommend(user, n=5)[0].tolist()
        body = c.get("/users/nobody/recommendations?n=5&fallback=popular").json()
        assert _ids(body) == fitted.recommend("nobody", n=5)[0].tolist()
        ratings = [{"item": int(small_ratings.item_map.id_of(j)), "rating": 5.0}
                   for j in range(3)]
        body = c.post("/recommendations", json={"ratings": ratings, "n": 4}).json()
        items = [r["item"] for r in ratings]
        want = fitted.recommend_for_ratings((items, [5.0] * 3), n=4)[0].tolist()
        assert _ids(body) == want
        pairs = [{"user": int(user), "item": int(small_ratings.item_map.id_of(1))}]
        got = c.post("/predict", json={"pairs": pairs}).json()["predictions"][0]["prediction"]
        assert got == pytest.approx(float(fitted.predict([user], [pairs[0]["item"]])[0]))
