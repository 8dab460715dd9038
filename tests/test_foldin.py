"""Fold-in of new users: the least-squares maths, and recommendations close to a trained user's."""

import numpy as np
import pytest

from recsys import FunkSVD
from recsys.errors import UnknownIdError
from recsys.models.foldin import fold_in, normal_equations, ratings_arrays


@pytest.fixture(scope="module")
def model(small_ratings):
    # converged SGD (so the trained user vectors sit near the least-squares optimum)
    return FunkSVD(n_factors=8, n_epochs=60, lr=0.01, reg=0.08, reg_bias=0.08, init_std=0.1,
                   lr_schedule="constant",
                   seed=1).fit(small_ratings)


def _user_ratings(ratings, u):
    sel = ratings.users == u
    return ratings.item_map.ids[ratings.items[sel]], ratings.values[sel]


def test_solution_has_zero_gradient_of_the_objective():
    rng = np.random.default_rng(3)
    Q = rng.normal(0, 0.5, (30, 5))
    bi = rng.normal(0, 0.3, 30)
    items = rng.choice(30, 12, replace=False)
    values = rng.integers(1, 6, 12).astype(float)
    reg, reg_bias = 0.1, 0.03
    m = len(items)
    p, b = fold_in(Q, bi, 3.5, items, values, reg * m, reg_bias * m)
    # gradient of Σ (r - mu - b_i - q·p - b)² + reg·m·|p|² + reg_bias·m·b², written out
    e = values - 3.5 - bi[items] - Q[items] @ p - b
    grad_p = -2 * Q[items].T @ e + 2 * reg * m * p
    grad_b = -2 * e.sum() + 2 * reg_bias * m * b
    assert np.abs(grad_p).max() < 1e-9
    assert abs(grad_b) < 1e-9
    M, rhs = normal_equations(Q, bi, 3.5, items, values, reg * m, reg_bias * m)
    np.testing.assert_allclose(M @ np.r_[p, b], rhs, atol=1e-10)


def test_no_regularization_is_plain_least_squares():
    rng = np.random.default_rng(4)
    Q = rng.normal(size=(20, 3))
    items = np.arange(20)
    p_true, b_true = np.array([0.5, -1.0, 2.0]), 0.7
    values = 3.0 + Q @ p_true + b_true  # exact, no noise, item biases zero
    p, b = fold_in(Q, np.zeros(20), 3.0, items, values, 0.0, 0.0)
    np.testing.assert_allclose(p, p_true, atol=1e-10)
    assert b == pytest.approx(b_true, abs=1e-10)


def test_own_ratings_fold_in_close_to_the_trained_user(model, small_ratings):
    counts = np.bincount(small_ratings.users)
    overlaps, cosines = [], []
    for u in np.argsort(-counts)[:10]:
        items, values = _user_ratings(small_ratings, u)
        trained, _ = model.recommend(small_ratings.user_map.ids[u], n=10)
        folded, _ = model.recommend_for_ratings((items, values), n=10)
        overlaps.append(len(set(trained) & set(folded)))
        p, _ = model.fold_in((items, values))
        P = model.user_factors_[u]
        cosines.append(P @ p / np.linalg.norm(P) / np.linalg.norm(p))
    assert np.mean(overlaps) >= 8.5, overlaps
    assert min(cosines) > 0.9, cosines


def test_dict_and_pair_forms_agree_and_unknown_items_are_ignored(model, small_ratings):
    items, values = _user_ratings(small_ratings, 0)
    p1, b1 = model.fold_in((items, values))
    p2, b2 = model.fold_in({**dict(zip(items.tolist(), values.tolist(), strict=True)), 10**9: 5.0})
    np.testing.assert_allclose(p1, p2, rtol=1e-6)
    assert b1 == pytest.approx(b2, rel=1e-6)
    assert p1.dtype == model.user_factors_.dtype
    with pytest.raises(UnknownIdError, match="1000000000"):
        model.fold_in({10**9: 5.0}, strict=True)


def test_rated_items_are_excluded_and_no_ratings_give_popular(model, small_ratings):
    items, values = _user_ratings(small_ratings, 3)
    rec, scores = model.recommend_for_ratings((items, values), n=80)
    assert len(rec) == 80 - len(items)
    assert not set(rec) & set(items.tolist())
    assert np.all(np.diff(scores) <= 0)
    everything, _ = model.recommend_for_ratings((items, values), n=80, exclude_rated=False)
    assert len(everything) == 80
    empty_ids, _ = model.recommend_for_ratings({}, n=5)
    popular, _ = model.recommend("no such user", n=5)
    np.testing.assert_array_equal(empty_ids, popular)


@pytest.mark.parametrize("bad, message", [
    ({1: float("nan")}, "finite"),
    (([1, 1], [3.0, 4.0]), "more than once"),
    (([1, 2], [3.0]), "2 items but 1 ratings"),
    (([1], ["x"]), "numbers"),
    (42, "dict"),
])
def test_bad_ratings_are_value_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        ratings_arrays(bad)
