"""GET /metrics: the Prometheus exposition parses, counts move by exactly the requests
made (the scrapes included, each counted once its answer is sent), histograms are
cumulative and agree with the counts, and the model and live-ratings gauges follow
reloads and ratings."""

import math

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
parser = pytest.importorskip("prometheus_client.parser")

from fastapi.testclient import TestClient  # noqa: E402

from recsys import FunkSVD  # noqa: E402
from recsys.models.registry import save  # noqa: E402
from recsys.serving.app import create_app  # noqa: E402
from recsys.serving.metrics import BUCKETS, Metrics  # noqa: E402
from recsys.serving.settings import Settings  # noqa: E402

RECS = "/users/{user}/recommendations"


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, small_ratings):
    path = tmp_path_factory.mktemp("metrics") / "model.npz"
    save(FunkSVD(n_factors=6, n_epochs=10, seed=2).fit(small_ratings), path)
    return path


def scrape(client) -> dict:
    """{(family, sample name, frozen labels without worker): value}, and the worker."""
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    out = {}
    for family in parser.text_string_to_metric_families(r.text):
        for s in family.samples:
            labels = dict(s.labels)
            assert labels.pop("worker") == str(client.app.state.metrics.worker)
            out[(s.name, frozenset(labels.items()))] = s.value
    return out


def _count(sample, name, **labels):
    return sample.get((name, frozenset((k, str(v)) for k, v in labels.items())), 0)


def _requests(sample, route, method, status):
    return _count(sample, "recsys_requests_total", route=route, method=method, status=status)


def test_counts_move_by_exactly_the_requests_made(model_file):
    app = create_app(model_file, Settings(admin_token="secret", max_body_bytes=2048,
                                          max_n=50))
    with TestClient(app) as c:
        before = scrape(c)
        for user in (1, 2, 3):  # the fast path answers these
            assert c.get(f"/users/{user}/recommendations").status_code == 200
        assert c.get("/users/1/recommendations?items=3&items=4").status_code == 200
        for _ in range(2):
            assert c.get("/users/99999/recommendations").status_code == 404
        assert c.get("/users/1/recommendations?n=51").status_code == 422
        assert c.post("/predict", json={"pairs": [{"user": 1, "item": 2}]}).status_code == 200
        assert c.post("/predict", json={"pairs": [{"user": 1.5, "item": 2}]}).status_code \
            == 422
        assert c.post("/predict", content=b"x" * 4096,
                      headers={"content-type": "application/json"}).status_code == 413
        assert c.get("/items/3/similar").status_code == 200
        assert c.get("/no/such/path").status_code == 404
        after = scrape(c)
    moved = {(r, m, s): _requests(after, r, m, s) - _requests(before, r, m, s)
             for (r, m, s) in [(RECS, "GET", 200), (RECS, "GET", 404), (RECS, "GET", 422),
                               ("/predict", "POST", 200), ("/predict", "POST", 422),
                               ("/predict", "POST", 413), ("/items/{item}/similar", "GET", 200),
                               ("other", "GET", 404), ("/metrics", "GET", 200)]}
    assert moved == {(RECS, "GET", 200): 4, (RECS, "GET", 404): 2, (RECS, "GET", 422): 1,
                     ("/predict", "POST", 200): 1, ("/predict", "POST", 422): 1,
                     ("/predict", "POST", 413): 1, ("/items/{item}/similar", "GET", 200): 1,
                     ("other", "GET", 404): 1,
                     ("/metrics", "GET", 200): 1}  # the first scrape, not the second
    total = sum(v for (name, _), v in after.items() if name == "recsys_requests_total")
    assert total == 13  # the scrape before and these 12: nothing else was counted
    errors = {code: _count(after, "recsys_errors_total", error=code)
              - _count(before, "recsys_errors_total", error=code)
              for code in ("unknown_user", "invalid_request", "body_too_large", "not_found")}
    assert errors == {"unknown_user": 2, "invalid_request": 2, "body_too_large": 1,
                      "not_found": 1}
    histogram_is_consistent(after)
    n = "recsys_request_duration_seconds_count"
    assert _count(after, n, route=RECS) - _count(before, n, route=RECS) == 7
    assert _count(after, n, route="/predict") == 3


def histogram_is_consistent(sample) -> None:
    routes = {dict(labels)["route"] for (name, labels) in sample
              if name == "recsys_request_duration_seconds_count"}
    assert routes
    for route in routes:
        buckets = [_count(sample, "recsys_request_duration_seconds_bucket", route=route,
                          le=le) for le in ("0.0005", "0.001", "0.0025", "0.005", "0.01",
                                            "0.025", "0.05", "0.1", "0.25", "0.5", "1.0",
                                            "2.5", "5.0", "10.0", "+Inf")]
        assert buckets == sorted(buckets)  # cumulative
        count = _count(sample, "recsys_request_duration_seconds_count", route=route)
        assert buckets[-1] == count > 0
        requests = sum(v for (name, labels), v in sample.items()
                       if name == "recsys_requests_total" and dict(labels)["route"] == route)
        assert count == requests
        assert 0 < _count(sample, "recsys_request_duration_seconds_sum", route=route)


def test_buckets_hold_their_upper_bound_and_render_cumulatively():
    m = Metrics()
    m.set_routes([])
    for seconds in (0.0005, 0.0006, 0.001, 3.0, 99.0):
        m.observe("/x", "GET", 200, seconds, None)
    text = m.render(_Holder(), Settings(admin_token=None))
    families = {f.name: f for f in parser.text_string_to_metric_families(text)}
    buckets = {s.labels["le"]: s.value for s in
               families["recsys_request_duration_seconds"].samples
               if s.name.endswith("_bucket")}
    assert buckets["0.0005"] == 1 and buckets["0.001"] == 3 and buckets["2.5"] == 3
    assert buckets["5.0"] == 4 and buckets["10.0"] == 4 and buckets["+Inf"] == 5
    assert len(buckets) == len(BUCKETS)
    s = {x.name: x.value for x in families["recsys_request_duration_seconds"].samples
         if not x.name.endswith("_bucket")}
    assert math.isclose(s["recsys_request_duration_seconds_sum"], 0.0005 + 0.0006 + 0.001
                        + 3.0 + 99.0)


class _Holder:
    generation = 7

    class current:  # noqa: N801 - a stand-in for Served's two attributes read here
        load_seconds = 0.25
        loaded_unix = 1.5e9


def test_model_gauges_follow_a_reload(model_file, tmp_path):
    path = tmp_path / "model.npz"
    path.write_bytes(model_file.read_bytes())
    with TestClient(create_app(path, Settings(admin_token="secret"))) as c:
        first = scrape(c)
        assert _count(first, "recsys_model_generation") == 1
        load_seconds = _count(first, "recsys_model_load_seconds")
        assert 0 < load_seconds < 600 and math.isfinite(load_seconds)
        loaded = _count(first, "recsys_model_loaded_timestamp_seconds")
        assert c.post("/admin/reload", headers={"Authorization": "Bearer secret"}) \
            .status_code == 200
        second = scrape(c)
    assert _count(second, "recsys_model_generation") == 2
    assert _count(second, "recsys_model_loaded_timestamp_seconds") >= loaded
    assert _requests(second, "/admin/reload", "POST", 200) == 1


def test_live_ratings_are_counted(model_file, tmp_path):
    settings = Settings(admin_token=None, ratings_token="sesame",
                        ratings_log=str(tmp_path / "r.log"))
    with TestClient(create_app(model_file, settings)) as c:
        before = scrape(c)
        assert _count(before, "recsys_live_ratings") == 0
        ratings = [{"user": 1, "item": 3, "rating": 4.0}, {"user": 123456, "item": 3,
                                                           "rating": 2.0}]
        r = c.post("/ratings", json={"ratings": ratings},
                   headers={"Authorization": "Bearer sesame"})
        assert r.status_code == 200
        assert c.post("/ratings", json={"ratings": ratings}).status_code == 401
        after = scrape(c)
    assert _count(after, "recsys_ratings_accepted_total") == 2
    assert _count(after, "recsys_live_ratings") == 2
    assert _count(after, "recsys_live_new_users") == 1
    assert _count(after, "recsys_live_users_changed") >= 1
    assert _count(after, "recsys_errors_total", error="unauthorized") == 1
    without = create_app(model_file, Settings(admin_token=None))
    with TestClient(without) as c:
        assert "recsys_live_ratings" not in c.get("/metrics").text


def test_an_internal_error_is_counted_as_a_500(model_file, monkeypatch):
    app = create_app(model_file, Settings(admin_token=None))
    with TestClient(app, raise_server_exceptions=False) as c:
        monkeypatch.setattr(type(app.state.holder.current), "describe",
                            lambda self: 1 / 0)
        assert c.get("/model").status_code == 500
        after = scrape(c)
    assert _requests(after, "/model", "GET", 500) == 1
    assert _count(after, "recsys_errors_total", error="internal_error") == 1
