"""The update rule against the maths: finite differences, one hand-derived step, descent."""

import numpy as np
import pytest

from recsys.kernels.cpu.sgd import loss, loss_gradient, sgd_epoch, sgd_step
from tests.conftest import assert_gradient_close, centered_difference, tiny_problem

REG, REG_BIAS = 0.05, 0.02


def _loss(users, items, values, p):
    return loss(users, items, values, p["mu"], p["bu"], p["bi"], p["P"], p["Q"], REG, REG_BIAS)


@pytest.mark.parametrize("name", ["bu", "bi", "P", "Q"])
def test_gradient_matches_centered_finite_difference(name):
    users, items, values, p = tiny_problem(seed=3)
    g_bu, g_bi, g_P, g_Q = loss_gradient(users, items, values, p["mu"], p["bu"], p["bi"],
                                         p["P"], p["Q"], REG, REG_BIAS)
    analytic = {"bu": g_bu, "bi": g_bi, "P": g_P, "Q": g_Q}[name]
    numeric = centered_difference(lambda: _loss(users, items, values, p), p[name])
    assert_gradient_close(analytic, numeric, name)


def test_one_step_equals_hand_derived_update():
    users, items, values, p = tiny_problem(seed=5)
    u, i, r = int(users[0]), int(items[0]), float(values[0])
    lr = 0.03
    bu, bi, P, Q = (p[k].copy() for k in ("bu", "bi", "P", "Q"))
    e = r - (p["mu"] + bu[u] + bi[i] + P[u] @ Q[i])
    want_bu = bu[u] + lr * (e - REG_BIAS * bu[u])
    want_bi = bi[i] + lr * (e - REG_BIAS * bi[i])
    want_pu = P[u] + lr * (e * Q[i] - REG * P[u])
    want_qi = Q[i] + lr * (e * P[u] - REG * Q[i])

    got_e = sgd_step(u, i, r, p["mu"], bu, bi, P, Q, lr, REG, REG_BIAS)
    assert got_e == pytest.approx(e, rel=1e-12)
    np.testing.assert_allclose(bu[u], want_bu, rtol=1e-12)
    np.testing.assert_allclose(bi[i], want_bi, rtol=1e-12)
    np.testing.assert_allclose(P[u], want_pu, rtol=1e-12)
    np.testing.assert_allclose(Q[i], want_qi, rtol=1e-12)
    # nothing else moved
    others = np.arange(len(bu)) != u
    np.testing.assert_array_equal(bu[others], p["bu"][others])


def test_one_step_is_half_learning_rate_times_rating_gradient():
    users, items, values, p = tiny_problem(seed=8)
    one = (users[:1], items[:1], values[:1])
    lr = 0.02
    grads = loss_gradient(*one, p["mu"], p["bu"], p["bi"], p["P"], p["Q"], REG, REG_BIAS)
    before = [p[k].copy() for k in ("bu", "bi", "P", "Q")]
    sgd_step(int(users[0]), int(items[0]), float(values[0]), p["mu"], p["bu"], p["bi"], p["P"],
             p["Q"], lr, REG, REG_BIAS)
    for old, grad, key in zip(before, grads, ("bu", "bi", "P", "Q")):
        np.testing.assert_allclose(p[key], old - lr / 2 * grad, rtol=1e-12, atol=1e-15)


def test_loss_decreases_over_epochs():
    users, items, values, p = tiny_problem(seed=11, n_users=20, n_items=15, n_ratings=120, k=4)
    losses = [_loss(users, items, values, p)]
    for _ in range(30):
        sgd_epoch(users, items, values, p["mu"], p["bu"], p["bi"], p["P"], p["Q"], 0.01, REG,
                  REG_BIAS)
        losses.append(_loss(users, items, values, p))
    assert all(b < a for a, b in zip(losses, losses[1:]))
    assert losses[-1] < 0.5 * losses[0]


def test_adaptive_step_is_the_half_gradient_scaled_by_the_row_accumulators():
    """One AdaGrad step moves each parameter by −η/√(its row's accumulator) times half the
    gradient of the rating's loss term (checked by centered differences), and then adds
    the squared half gradient (averaged over the k coordinates for factor rows)."""
    from recsys.kernels.cpu.sgd import adagrad_step

    users, items, values, p = tiny_problem(seed=9)
    one = (users[:1], items[:1], values[:1])
    u, i, r = int(users[0]), int(items[0]), float(values[0])
    k = p["P"].shape[1]
    rng = np.random.default_rng(4)
    acc = {name: 1 + rng.random(len(p[side])) for name, side in
           (("Gu", "bu"), ("Gi", "bi"), ("Hu", "bu"), ("Hi", "bi"))}
    half = {}
    for key in ("bu", "bi", "P", "Q"):
        numeric = centered_difference(lambda: _loss(*one, p), p[key])
        half[key] = numeric / 2
    before = {key: p[key].copy() for key in ("bu", "bi", "P", "Q")}
    old = {name: a.copy() for name, a in acc.items()}
    lr = 0.07
    adagrad_step(u, i, r, p["mu"], p["bu"], p["bi"], p["P"], p["Q"], lr, REG, REG_BIAS,
                 acc["Gu"], acc["Gi"], acc["Hu"], acc["Hi"])
    scale = {"P": lr / np.sqrt(old["Gu"][u]), "Q": lr / np.sqrt(old["Gi"][i]),
             "bu": lr / np.sqrt(old["Hu"][u]), "bi": lr / np.sqrt(old["Hi"][i])}
    for key in ("bu", "bi", "P", "Q"):
        np.testing.assert_allclose(p[key], before[key] - scale[key] * half[key], rtol=1e-6,
                                   atol=1e-9)
    np.testing.assert_allclose(acc["Gu"][u], old["Gu"][u] + (half["P"][u] ** 2).sum() / k,
                               rtol=1e-6)
    np.testing.assert_allclose(acc["Gi"][i], old["Gi"][i] + (half["Q"][i] ** 2).sum() / k,
                               rtol=1e-6)
    np.testing.assert_allclose(acc["Hu"][u], old["Hu"][u] + half["bu"][u] ** 2, rtol=1e-6)
    np.testing.assert_allclose(acc["Hi"][i], old["Hi"][i] + half["bi"][i] ** 2, rtol=1e-6)
    untouched = np.arange(len(acc["Gu"])) != u
    np.testing.assert_array_equal(acc["Gu"][untouched], old["Gu"][untouched])


def test_adaptive_steps_descend_the_loss():
    from recsys.kernels.cpu.sgd import adagrad_epoch

    users, items, values, p = tiny_problem(seed=12, n_users=20, n_items=15, n_ratings=120, k=4)
    acc = [np.ones(20), np.ones(15), np.ones(20), np.ones(15)]
    losses = [_loss(users, items, values, p)]
    for _ in range(30):
        adagrad_epoch(users, items, values, p["mu"], p["bu"], p["bi"], p["P"], p["Q"], 0.05,
                      REG, REG_BIAS, *acc)
        losses.append(_loss(users, items, values, p))
    assert losses[-1] < 0.5 * losses[0]
    assert all(b < a for a, b in zip(losses[5:], losses[6:]))
