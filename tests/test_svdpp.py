"""SVD++ against its maths: finite differences, hand-derived updates, descent, determinism,
and the folded model against the SVD++ formula."""

import numpy as np
import pytest
from click.testing import CliRunner

from recsys.cli import main
from recsys.kernels.cpu.svdpp import group_by_user, loss, loss_gradient, svdpp_epoch, svdpp_user
from recsys.models.registry import load, make_estimator, save
from recsys.models.svdpp import SVDpp
from recsys.training import trainers as training
from tests.conftest import assert_gradient_close, centered_difference, tiny_problem

REG, REG_BIAS, REG_Y = 0.05, 0.02, 0.03


def _problem(seed, **sizes):
    users, items, values, p = tiny_problem(seed=seed, **sizes)
    users, items, values, indptr = group_by_user(users, items, values, len(p["bu"]))
    rng = np.random.default_rng(seed + 100)
    p["Y"] = rng.normal(0, 0.5, p["Q"].shape)
    return users, items, values, indptr, p


def _loss(items, values, indptr, p):
    return loss(items, values, indptr, p["mu"], p["bu"], p["bi"], p["P"], p["Q"], p["Y"],
                REG, REG_BIAS, REG_Y)


def _predict(u, i, items, indptr, p):
    """The SVD++ formula, written out in numpy."""
    rated = items[indptr[u]:indptr[u + 1]]
    z = p["P"][u] + p["Y"][rated].sum(axis=0) / np.sqrt(len(rated))
    return p["mu"] + p["bu"][u] + p["bi"][i] + p["Q"][i] @ z


@pytest.mark.parametrize("name", ["bu", "bi", "P", "Q", "Y"])
def test_gradient_matches_centered_finite_difference(name):
    users, items, values, indptr, p = _problem(seed=3, n_users=5, n_items=6, n_ratings=16)
    grads = loss_gradient(items, values, indptr, p["mu"], p["bu"], p["bi"], p["P"], p["Q"],
                          p["Y"], REG, REG_BIAS, REG_Y)
    analytic = dict(zip(("bu", "bi", "P", "Q", "Y"), grads))[name]
    numeric = centered_difference(lambda: _loss(items, values, indptr, p), p[name])
    assert_gradient_close(analytic, numeric, name)


def _run_user(u, users, items, values, indptr, p, lr):
    k = p["P"].shape[1]
    return svdpp_user(u, indptr[u], indptr[u + 1], items, values, p["mu"], p["bu"], p["bi"],
                      p["P"], p["Q"], p["Y"], np.empty(k), np.empty(k), lr, REG, REG_BIAS,
                      REG_Y)


def test_one_user_equals_hand_derived_updates():
    users, items, values, indptr, p = _problem(seed=5, n_users=3, n_items=8, n_ratings=12)
    u = int(np.argmax(np.diff(indptr)))
    start, end = indptr[u], indptr[u + 1]
    assert end - start >= 3
    lr = 0.03
    want = {key: np.array(value, copy=True) for key, value in p.items()}
    rated = items[start:end]
    s = 1 / np.sqrt(len(rated))
    g = np.zeros(want["P"].shape[1])
    sse = 0.0
    for n in range(start, end):
        i = items[n]
        z = want["P"][u] + s * want["Y"][rated].sum(axis=0)  # y fixed within the user
        e = values[n] - (want["mu"] + want["bu"][u] + want["bi"][i] + want["Q"][i] @ z)
        sse += e * e
        pu, qi = want["P"][u].copy(), want["Q"][i].copy()
        want["bu"][u] += lr * (e - REG_BIAS * want["bu"][u])
        want["bi"][i] += lr * (e - REG_BIAS * want["bi"][i])
        want["P"][u] = pu + lr * (e * qi - REG * pu)
        want["Q"][i] = qi + lr * (e * z - REG * qi)
        g += e * qi
    for j in rated:
        want["Y"][j] += lr * (s * g - len(rated) * REG_Y * want["Y"][j])

    got_sse = _run_user(u, users, items, values, indptr, p, lr)
    assert got_sse == pytest.approx(sse, rel=1e-12)
    for key in ("bu", "bi", "P", "Q", "Y"):
        np.testing.assert_allclose(p[key], want[key], rtol=1e-12, atol=1e-15, err_msg=key)
    others = np.setdiff1d(np.arange(len(want["Y"])), rated)
    assert len(others) and np.array_equal(p["Y"][others], want["Y"][others])


def test_a_user_with_one_rating_takes_half_learning_rate_times_its_gradient():
    users, items, values, indptr, p = _problem(seed=8, n_users=6, n_items=5, n_ratings=14)
    u = int(users[0])
    keep = np.ones(len(values), dtype=bool)
    keep[indptr[u] + 1:indptr[u + 1]] = False  # user u keeps a single rating
    users, items, values, indptr = group_by_user(users[keep], items[keep], values[keep],
                                                 len(p["bu"]))
    n = indptr[u]
    assert indptr[u + 1] - n == 1
    lr = 0.02
    one = np.array([0, 1])
    grads = loss_gradient(items[n:n + 1], values[n:n + 1], one, p["mu"], p["bu"][u:u + 1],
                          p["bi"], p["P"][u:u + 1], p["Q"], p["Y"], REG, REG_BIAS, REG_Y)
    before = [np.array(p[key], copy=True) for key in ("bu", "bi", "P", "Q", "Y")]
    _run_user(u, users, items, values, indptr, p, lr)
    np.testing.assert_allclose(p["bu"][u], before[0][u] - lr / 2 * grads[0][0], rtol=1e-12)
    np.testing.assert_allclose(p["P"][u], before[2][u] - lr / 2 * grads[2][0], rtol=1e-12)
    for key, old, grad in zip(("bi", "Q", "Y"), before[1::2] + before[4:],
                              (grads[1], grads[3], grads[4])):
        np.testing.assert_allclose(p[key], old - lr / 2 * grad, rtol=1e-12, atol=1e-15)


def test_J_decreases_over_epochs():
    users, items, values, indptr, p = _problem(seed=11, n_users=20, n_items=15,
                                               n_ratings=120, k=4)
    losses = [_loss(items, values, indptr, p)]
    for epoch in range(30):
        svdpp_epoch(users, items, values, indptr, 7, epoch, p["mu"], p["bu"], p["bi"], p["P"],
                    p["Q"], p["Y"], 0.01, REG, REG_BIAS, REG_Y)
        losses.append(_loss(items, values, indptr, p))
    assert all(b < a for a, b in zip(losses, losses[1:]))
    assert losses[-1] < 0.5 * losses[0]


def test_epoch_keeps_each_user_s_ratings_together_and_shuffles_them():
    users, items, values, indptr, p = _problem(seed=2, n_users=4, n_items=12, n_ratings=40)
    pairs = sorted(zip(users.tolist(), items.tolist(), values.tolist()))
    before = items.copy()
    svdpp_epoch(users, items, values, indptr, 1, 0, p["mu"], p["bu"], p["bi"], p["P"],
                p["Q"], p["Y"], 0.01, REG, REG_BIAS, REG_Y)
    assert sorted(zip(users.tolist(), items.tolist(), values.tolist())) == pairs
    assert np.array_equal(users, np.repeat(np.arange(4), np.diff(indptr)))
    assert not np.array_equal(items, before)


def _fit(ratings, **params):
    base = dict(n_factors=6, n_epochs=12, lr=0.01, reg=0.05, init_std=0.1, method="svdpp")
    return make_estimator({**base, **params}).fit(ratings)


def test_same_seed_gives_a_bit_identical_model(small_ratings):
    a = _fit(small_ratings, seed=4, n_jobs=1)
    b = _fit(small_ratings, seed=4, n_jobs=2)
    c = _fit(small_ratings, seed=5, n_jobs=1)
    for name in ("user_bias_", "item_bias_", "user_factors_", "item_factors_"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert not np.array_equal(a.user_factors_, c.user_factors_)
    assert [h["train_rmse"] for h in a.history_] == [h["train_rmse"] for h in b.history_]


def test_folded_model_predicts_what_the_svdpp_formula_predicts(small_ratings, monkeypatch):
    trainers = []

    class Recording(training.SVDppTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            trainers.append(self)

    monkeypatch.setitem(training.TRAINERS, "svdpp", Recording)
    model = _fit(small_ratings, dtype="float64")
    (t,) = trainers
    p = {"mu": t.mu, "bu": t.bu, "bi": t.bi, "P": t.p, "Q": t.Q, "Y": t.Y}
    assert np.abs(t.Y).max() > 0.05 and not np.array_equal(t.p, model.user_factors_)
    rng = np.random.default_rng(0)
    u_idx = rng.integers(0, small_ratings.n_users, 300)
    i_idx = rng.integers(0, small_ratings.n_items, 300)
    lo, hi = model.rating_scale_
    want = np.clip([_predict(u, i, t.items, t.indptr, p) for u, i in zip(u_idx, i_idx)],
                   lo, hi)
    got = model.predict(model.user_map_.ids[u_idx], model.item_map_.ids[i_idx])
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # the training error the loop reports is the formula's error on the training ratings
    sse = t.squared_error()
    direct = sum((r - _predict(u, i, t.items, t.indptr, p)) ** 2
                 for u, i, r in zip(t.users, t.items, t.values))
    assert sse == pytest.approx(direct, rel=1e-10)


def test_svdpp_fits_the_training_data_better_than_sgd(small_ratings):
    plain = _fit(small_ratings, method="sgd")
    svdpp = _fit(small_ratings)
    assert svdpp.history_[-1]["train_rmse"] < plain.history_[0]["train_rmse"]
    assert svdpp.history_[-1]["train_rmse"] < svdpp.history_[0]["train_rmse"]


def test_saved_svdpp_model_loads_with_the_same_predictions(tmp_path, small_ratings):
    model = _fit(small_ratings)
    save(model, tmp_path / "m.npz")
    again = load(tmp_path / "m.npz")
    assert type(again) is SVDpp and again.get_params() == model.get_params()
    users, items = small_ratings.raw_users[:50], small_ratings.raw_items[:50]
    assert np.array_equal(again.predict(users, items), model.predict(users, items))


def test_cli_trains_svdpp(tmp_path, small_ratings):
    from recsys.data.synth import write_csv

    write_csv(small_ratings, tmp_path / "r.csv")
    result = CliRunner().invoke(main, ["train", str(tmp_path / "r.csv"), "-o",
                                       str(tmp_path / "m.npz"), "--method", "svdpp", "-k",
                                       "4", "-t", "3", "-q"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert type(load(tmp_path / "m.npz")) is SVDpp


def test_reg_implicit_moves_svdpp_only(small_ratings):
    a, b = _fit(small_ratings, reg_implicit=0.0), _fit(small_ratings, reg_implicit=0.5)
    assert not np.array_equal(a.user_factors_, b.user_factors_)
    c = _fit(small_ratings, method="sgd", reg_implicit=0.0)
    d = _fit(small_ratings, method="sgd", reg_implicit=0.5)
    assert np.array_equal(c.user_factors_, d.user_factors_)
    with pytest.raises(ValueError, match="reg_implicit"):
        _fit(small_ratings, reg_implicit=-1.0)


def test_early_stopping_restores_the_best_svdpp_epoch(small_ratings):
    train = small_ratings.subset(np.arange(len(small_ratings)) % 5 != 0)
    valid = small_ratings.subset(np.arange(len(small_ratings)) % 5 == 0)
    model = SVDpp(n_factors=8, n_epochs=200, lr=0.02, reg=0.0,
                    reg_implicit=0.0, init_std=0.1, early_stopping=3)
    model.fit(train, validation=valid)
    curve = [h["valid_rmse"] for h in model.history_]
    assert len(curve) < 200 and model.best_epoch_ < len(curve)
    pred = model.predict(valid.raw_users, valid.raw_items).astype(np.float64)
    got = float(np.sqrt(np.mean((pred - valid.values) ** 2)))
    assert got == pytest.approx(min(curve), rel=1e-6)
