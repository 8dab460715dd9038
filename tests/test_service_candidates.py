"""Candidate and exclusion lists (``items``, ``exclude``) over HTTP: answers equal the
model's ``recommend`` / ``recommend_for_ratings`` with the same lists, short lists stay
short, the precomputed top items never answer a request with lists, and malformed or
too many ids get a JSON 4xx naming them."""

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from recsys.models.registry import load  # noqa: E402
from recsys.serving.app import create_app  # noqa: E402
from recsys.serving.engine import ModelHolder  # noqa: E402
from recsys.serving.middleware import FastPath  # noqa: E402
from recsys.serving.settings import Settings  # noqa: E402

SETTINGS = dict(max_n=50, max_batch=20, max_body_bytes=4096)


@pytest.fixture(scope="module")
def model_file(service_model_file):
    return service_model_file


@pytest.fixture(scope="module")
def model(model_file):
    return load(model_file)


@pytest.fixture(scope="module")
def client(model_file):
    with TestClient(create_app(model_file, Settings(admin_token=None, **SETTINGS))) as c:
        yield c


def _ids(body):
    return [x["item"] for x in body["items"]]


def _scores(body):
    return [x["score"] for x in body["items"]]


def _query(n, items=None, exclude=None, **extra):
    params = [("n", n)] + [("items", i) for i in items or ()]
    params += [("exclude", i) for i in exclude or ()]
    return params + list(extra.items())


CANDIDATES = [3, 7, 11, 19, 23, 42, 55, 61, 70, 79]


@pytest.mark.parametrize("exclude_seen", [True, False])
@pytest.mark.parametrize("items, exclude", [
    (CANDIDATES, None), (None, [1, 2, 3, 4, 5]), (CANDIDATES, [7, 42]),
    (CANDIDATES + [99999], [88888]),  # unknown ids are ignored, as in Python
])
def test_get_lists_equal_the_python_api(client, model, exclude_seen, items, exclude):
    for user in (1, 17, 100):
        ids, scores = model.recommend(user, n=6, exclude_seen=exclude_seen, items=items,
                                      exclude=exclude)
        r = client.get(f"/users/{user}/recommendations", params=_query(
            6, items, exclude, exclude_seen=str(exclude_seen).lower()))
        assert r.status_code == 200, r.text
        assert _ids(r.json()) == ids.tolist()
        assert _scores(r.json()) == scores.tolist()
        if items is not None:
            assert set(_ids(r.json())) <= set(items)
        assert not set(_ids(r.json())) & set(exclude or ())


def test_the_precomputed_top_items_never_answer_a_request_with_lists(client, model):
    # n=5 is within the precomputed top items: without lists they answer it
    plain = _ids(client.get("/users/1/recommendations", params={"n": 5}).json())
    assert plain == model.recommend(1, n=5)[0].tolist()
    r = client.get("/users/1/recommendations", params=_query(5, exclude=plain[:2]))
    got = _ids(r.json())
    assert got == model.recommend(1, n=5, exclude=plain[:2])[0].tolist()
    assert got[:3] == plain[2:] and len(got) == 5  # two more from beyond the first five
    r = client.get("/users/1/recommendations", params=_query(5, items=plain[3:]))
    assert _ids(r.json()) == plain[3:]


def test_short_lists_are_short_never_padded(client, model, small_ratings):
    r = client.get("/users/1/recommendations", params=_query(10, items=[3, 7]))
    want = model.recommend(1, n=10, items=[3, 7])[0].tolist()
    assert _ids(r.json()) == want and len(want) <= 2
    seen = small_ratings.item_map.ids[small_ratings.items[
        small_ratings.users == small_ratings.user_map.index_of(1)]].tolist()
    r = client.get("/users/1/recommendations", params=_query(10, items=seen[:3]))
    assert r.status_code == 200 and r.json()["items"] == []  # all seen: nothing left
    r = client.get("/users/1/recommendations",
                   params=_query(10, items=seen[:3], exclude_seen="false"))
    assert sorted(_ids(r.json())) == sorted(seen[:3])


def test_unknown_users_get_the_popular_candidates(client, model):
    r = client.get("/users/4242/recommendations",
                   params=_query(4, CANDIDATES, [3], fallback="popular"))
    ids, scores = model.recommend(4242, n=4, items=CANDIDATES, exclude=[3])
    assert r.json()["fallback"] == "popular"
    assert _ids(r.json()) == ids.tolist() and _scores(r.json()) == scores.tolist()


@pytest.mark.parametrize("params, status, error, words", [
    ([("items", "3"), ("items", "99999"), ("strict", "true")], 404, "unknown_item", "99999"),
    ([("items", "3,7")], 422, "invalid_id", "'3,7'"),
    ([("items", "3"), ("exclude", "x1")], 422, "invalid_id", "exclude.0: 'x1'"),
    ([("exclude", "")], 422, "invalid_id", "exclude.0: ''"),
    ([("items", str(i)) for i in range(21)], 413, "batch_too_large", "21 ids"),
    ([("items", "3"), ("strict", "maybe")], 422, "invalid_request", "strict"),
])
def test_bad_lists_get_a_json_4xx_naming_the_value(client, params, status, error, words):
    r = client.get("/users/1/recommendations", params=params)
    assert r.status_code == status, r.text
    assert r.json()["error"] == error and words in r.json()["detail"]


@pytest.mark.parametrize("query", ["items=3&items=7", "exclude=3", "n=5&exclude=3&items=4",
                                   "items=3,7", "items=3&strict=true"])
def test_the_fast_path_leaves_lists_to_the_route(model_file, query):
    holder = ModelHolder(model_file, cache_top=100)
    slow = TestClient(create_app(None, Settings(fast_path=False, **SETTINGS), holder=holder))
    quick = TestClient(create_app(None, Settings(**SETTINGS), holder=holder))
    a, b = (c.get(f"/users/2/recommendations?{query}") for c in (slow, quick))
    assert (a.status_code, a.content) == (b.status_code, b.content)
    layer = quick.app.middleware_stack
    while not isinstance(layer, FastPath):
        layer = layer.app
    assert layer.answered == 0


RATINGS = [{"item": 1, "rating": 5.0}, {"item": 2, "rating": 1.0}, {"item": 5, "rating": 4.0}]


@pytest.mark.parametrize("fields", [
    {"items": CANDIDATES}, {"exclude": [7, 42, 1]}, {"items": CANDIDATES + [1], "exclude": [3]},
    {"items": [1, 2, 5], "exclude_rated": True}, {"items": ["3", 99999]},
])
def test_fold_in_lists_equal_the_python_api(client, model, fields):
    r = client.post("/recommendations", json={"ratings": RATINGS, "n": 6, **fields})
    assert r.status_code == 200, r.text
    ratings = ([x["item"] for x in RATINGS], [x["rating"] for x in RATINGS])
    ids, scores = model.recommend_for_ratings(
        ratings, n=6, exclude_rated=fields.get("exclude_rated", True),
        items=fields.get("items"), exclude=fields.get("exclude"))
    assert _ids(r.json()) == ids.tolist() and _scores(r.json()) == scores.tolist()


@pytest.mark.parametrize("fields, status, error, words", [
    ({"items": [3, 1.5]}, 422, "invalid_id", "items.1: 1.5"),
    ({"exclude": [True]}, 422, "invalid_id", "exclude.0: True"),
    ({"items": "3,7"}, 422, "invalid_request", "items: must be a list"),
    ({"items": [3, "abc"]}, 422, "invalid_id", "items.1: 'abc'"),
    ({"items": [3, 99999], "strict": True}, 404, "unknown_item", "99999"),
    ({"items": list(range(15)), "exclude": list(range(6))}, 413, "batch_too_large", "21"),
    ({"items": [3], "strict": "maybe"}, 422, "invalid_request", "strict"),
])
def test_bad_fold_in_lists_get_a_json_4xx(client, fields, status, error, words):
    r = client.post("/recommendations", json={"ratings": RATINGS, **fields})
    assert r.status_code == status, r.text
    assert r.json()["error"] == error and words in r.json()["detail"]


def test_python_fold_in_lists(model):
    ratings = ([1, 2, 5], [5.0, 1.0, 4.0])
    all_ids, all_scores = model.recommend_for_ratings(ratings, n=80)
    ids, scores = model.recommend_for_ratings(ratings, n=80, items=CANDIDATES, exclude=[7])
    keep = np.isin(all_ids, CANDIDATES) & (all_ids != 7)
    assert ids.tolist() == all_ids[keep].tolist()  # the same order, only the candidates
    np.testing.assert_array_equal(scores, all_scores[keep])
    assert len(model.recommend_for_ratings(ratings, n=10, items=[1, 2, 3])[0]) == 1
    with pytest.raises(Exception, match="99999"):
        model.recommend_for_ratings(ratings, items=[3, 99999], strict=True)
