"""Training variants, learning-rate schedules and early stopping."""

import numpy as np
import pytest

from recsys.kernels.cpu.funk import funk_commit, funk_pass
from recsys.kernels.cpu.gd import gd_epoch
from recsys.kernels.cpu.sgd import loss
from recsys.models.funksvd import FunkSVD
from recsys.training.schedule import BOLD_DOWN, BOLD_UP, LearningRate
from tests.conftest import tiny_problem

REG, REG_BIAS = 0.05, 0.02


def _J(users, items, values, p):
    return loss(users, items, values, p["mu"], p["bu"], p["bi"], p["P"], p["Q"], REG, REG_BIAS)


def _problem():
    return tiny_problem(seed=4, n_users=20, n_items=15, n_ratings=120, k=4)


def test_gd_reduces_J_every_epoch():
    users, items, values, p = _problem()
    losses = [_J(users, items, values, p)]
    for _ in range(40):
        gd_epoch(users, items, values, p["mu"], p["bu"], p["bi"], p["P"], p["Q"], 0.01, REG,
                 REG_BIAS)
        losses.append(_J(users, items, values, p))
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False))
    assert losses[-1] < 0.7 * losses[0]


def test_gd_step_is_half_learning_rate_times_gradient():
    from recsys.kernels.cpu.sgd import loss_gradient

    users, items, values, p = _problem()
    grads = loss_gradient(users, items, values, p["mu"], p["bu"], p["bi"], p["P"], p["Q"],
                          REG, REG_BIAS)
    before = [p[k].copy() for k in ("bu", "bi", "P", "Q")]
    gd_epoch(users, items, values, p["mu"], p["bu"], p["bi"], p["P"], p["Q"], 0.01, REG,
             REG_BIAS)
    for old, grad, key in zip(before, grads, ("bu", "bi", "P", "Q"), strict=True):
        np.testing.assert_allclose(p[key], old - 0.005 * grad, rtol=1e-12, atol=1e-15)


def test_funk_passes_reduce_J_feature_by_feature():
    users, items, values, p = _problem()
    P, Q = p["P"], p["Q"]
    init_P, init_Q = P.copy(), Q.copy()
    P[...] = 0
    Q[...] = 0
    cache = np.zeros(len(values))
    losses = [_J(users, items, values, p)]
    for f in range(P.shape[1]):
        P[:, f], Q[:, f] = init_P[:, f], init_Q[:, f]
        for _ in range(30):
            # a wide clip range: the pass is then plain SGD on feature f, which descends J
            funk_pass(users, items, values, cache, f, p["mu"], p["bu"], p["bi"], P, Q, 0.01,
                      REG, REG_BIAS, -100.0, 100.0)
        funk_commit(users, items, cache, f, P, Q)
        losses.append(_J(users, items, values, p))
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False))
    # the cache holds exactly the trained features' products
    np.testing.assert_allclose(cache, np.einsum("nk,nk->n", P[users], Q[items]), rtol=1e-10)


def test_funk_clips_the_prediction_used_for_the_error():
    users, items, values, p = tiny_problem(seed=2)
    cache = np.full(len(values), 50.0)  # predictions far above the scale
    P, Q = p["P"].copy(), p["Q"].copy()
    sse = funk_pass(users, items, values, cache, 0, p["mu"], p["bu"].copy(), p["bi"].copy(),
                    P, Q, 0.0, REG, REG_BIAS, 1.0, 5.0)
    assert sse == pytest.approx(float(((values - 5.0) ** 2).sum()))


@pytest.mark.parametrize("method", ["sgd", "funk", "gd"])
@pytest.mark.parametrize("schedule", ["constant", "decay", "bold"])
def test_every_variant_lowers_J_on_small_data(small_ratings, method, schedule):
    lr = 0.002 if method == "gd" else 0.01
    model = FunkSVD(n_factors=4, n_epochs=15, lr=lr, reg=REG, reg_bias=REG_BIAS, n_jobs=1,
                    method=method, lr_schedule=schedule, lr_decay=0.94, init_std=0.1)
    start = FunkSVD(n_factors=4, n_epochs=0, reg=REG, reg_bias=REG_BIAS, n_jobs=1,
                    init_std=0.1).fit(small_ratings)
    model.fit(small_ratings)
    r = small_ratings

    def J(m):
        return loss(r.users, r.items, r.values, m.mu_, m.user_bias_, m.item_bias_,
                    m.user_factors_, m.item_factors_, REG, REG_BIAS)

    assert J(model) < 0.8 * J(start)
    assert len(model.history_) == (4 if method == "funk" else 15)


def test_constant_and_decay_rates():
    lr = LearningRate(0.1, "constant")
    for _ in range(3):
        assert lr.after_epoch()
    assert lr.rate == 0.1
    lr = LearningRate(0.1, "decay", decay=0.5)
    lr.after_epoch()
    lr.after_epoch()
    assert lr.rate == pytest.approx(0.1 * 0.25)


def test_bold_driver_raises_after_a_better_epoch_and_halves_after_a_worse_one():
    lr = LearningRate(0.1, "bold")
    lr.start(10.0)
    assert lr.after_epoch(9.0) is True
    assert lr.rate == pytest.approx(0.1 * BOLD_UP)
    assert lr.after_epoch(9.5) is False  # worse than the best kept epoch: undo, shrink
    assert lr.rate == pytest.approx(0.1 * BOLD_UP * BOLD_DOWN)
    assert lr.after_epoch(8.0) is True
    assert lr.rate == pytest.approx(0.1 * BOLD_UP * BOLD_DOWN * BOLD_UP)
    assert lr.after_epoch(float("nan")) is False


def test_bold_driver_undoes_a_diverging_epoch(small_ratings):
    # a rate far too large for full-batch GD: the driver must reject and shrink until stable
    model = FunkSVD(n_factors=3, n_epochs=12, lr=1.0, method="gd", lr_schedule="bold",
                    n_jobs=1).fit(small_ratings)
    rates = [h["lr"] for h in model.history_]
    assert rates[1] == pytest.approx(rates[0] * BOLD_DOWN)
    assert np.isfinite(model.user_factors_).all()
    assert model.history_[-1]["train_rmse"] < 1.5


def test_early_stopping_restores_the_best_epoch(small_ratings):
    train = small_ratings.subset(np.arange(0, 1600))
    valid = small_ratings.subset(np.arange(1600, 2000))
    # overfits: many factors, no regularization, a large constant rate
    params = dict(n_factors=30, n_epochs=60, lr=0.05, reg=0.0, n_jobs=1, seed=3,
                  lr_schedule="constant")
    model = FunkSVD(**params, early_stopping=5).fit(train, validation=valid)
    history = model.history_
    rmses = [h["valid_rmse"] for h in history]
    best = int(np.argmin(rmses)) + 1
    assert model.best_epoch_ == best
    assert len(history) == best + 5 < 60  # stopped 5 epochs after the best
    # the arrays are those of the best epoch: a fresh fit of exactly that many epochs
    again = FunkSVD(**{**params, "n_epochs": best}).fit(train)
    np.testing.assert_array_equal(model.user_factors_, again.user_factors_)
    np.testing.assert_array_equal(model.item_bias_, again.item_bias_)


def test_early_stopping_without_validation_holds_out_part_of_training(small_ratings):
    model = FunkSVD(n_factors=4, n_epochs=5, n_jobs=1, early_stopping=2).fit(small_ratings)
    assert all(h["valid_rmse"] is not None for h in model.history_)
    # reg auto's shared warm-up trained on most of that share: the fit warms up itself
    assert not any(h.get("reg_trial") for h in model.history_) and model.reg_trials_
    assert model.train_summary_["ratings"] == len(small_ratings) - len(small_ratings) // 20


@pytest.mark.parametrize("bad", [{"method": "als"}, {"lr_schedule": "cosine"},
                                 {"lr_decay": 0.0}, {"early_stopping": -1}])
def test_bad_variant_parameters_are_refused(small_ratings, bad):
    with pytest.raises(ValueError):
        FunkSVD(**bad).fit(small_ratings)


def test_new_parameters_round_trip_through_save(tmp_path, small_ratings):
    from recsys.models.registry import load

    model = FunkSVD(n_factors=3, n_epochs=2, method="gd", lr_schedule="decay", lr_decay=0.9,
                    lr=0.001, n_jobs=1).fit(small_ratings)
    model.save(tmp_path / "m.npz")
    back = load(tmp_path / "m.npz")
    assert back.get_params() == model.get_params()


def test_bold_driver_recovers_from_a_diverging_sgd_epoch(small_ratings):
    model = FunkSVD(n_factors=3, n_epochs=10, lr=5.0, lr_schedule="bold", n_jobs=1)
    model.fit(small_ratings)  # an epoch at lr 5 blows up; it is undone, not reported
    assert np.isfinite(model.user_factors_).all()
    assert model.history_[-1]["lr"] < 5.0
    assert all(np.isfinite(h["train_rmse"]) for h in model.history_)


def test_n_jobs_holds_for_the_whole_fit(small_ratings):
    """The threads asked for run everything in the fit, the trials' scoring between the
    epochs too, and the setting is restored after it."""
    import numba

    before = numba.get_num_threads()
    seen = []
    FunkSVD(n_factors=4, n_epochs=4, n_jobs=1).fit(
        small_ratings, reg_callback=lambda reg, rmse: seen.append(numba.get_num_threads()))
    assert seen and set(seen) == {1}
    assert numba.get_num_threads() == before


def test_the_digest_hashed_meanwhile_is_the_datas(small_ratings):
    import numba

    from recsys.models.fitted import digest_meanwhile
    from recsys.training.backends.cpu import CpuBackend

    with CpuBackend().workers(1):
        assert digest_meanwhile(small_ratings) is None  # one thread: hashed at the end
    if numba.config.NUMBA_NUM_THREADS >= 2:
        with CpuBackend().workers(2):
            assert digest_meanwhile(small_ratings).result() == small_ratings.digest()
    for jobs in (1, 2):
        model = FunkSVD(n_epochs=2, n_jobs=jobs).fit(small_ratings)
        assert model.state_.lineage.data[0]["sha256"] == small_ratings.digest()
