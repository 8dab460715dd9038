"""The AdaGrad warm-up before the decaying rate (``recsys.training.schedule``): its epochs
are exactly AdaGrad's, the schedule starts after them, only SGD under ``decay`` has it,
short ``reg='auto'`` trials keep it, and continuations and updates do not run it again."""

import numpy as np
import pytest

from recsys.data.split import holdout
from recsys.data.synth import SynthSpec, generate
from recsys.models.funksvd import FunkSVD
from recsys.training import autoreg
from recsys.training.config import TrainConfig
from recsys.training.schedule import LearningRate, continued_rate, ended_rate

BASE = dict(n_factors=6, reg=0.05, seed=4, n_jobs=1)


def arrays(model):
    return (model.user_bias_, model.item_bias_, model.user_factors_, model.item_factors_)


def test_warm_up_epochs_are_adagrad_epochs_at_their_own_reg_bit_for_bit(small_ratings):
    warmed = FunkSVD(**BASE, n_epochs=3, warmup_epochs=3, warmup_lr=0.07,
                     warmup_reg=0.03).fit(small_ratings)
    adagrad = FunkSVD(**{**BASE, "reg": 0.03}, n_epochs=3, lr_schedule="adagrad", lr=0.07,
                      warmup_epochs=0).fit(small_ratings)
    for a, b in zip(arrays(warmed), arrays(adagrad), strict=True):
        np.testing.assert_array_equal(a, b)
    assert [h["adaptive"] for h in warmed.history_] == [True] * 3
    # reg applies after the warm-up: the same warm-up, then other plain epochs
    longer = [FunkSVD(**{**BASE, "reg": reg}, n_epochs=5, warmup_epochs=3, warmup_lr=0.07,
                      warmup_reg=0.03).fit(small_ratings) for reg in (0.03, 0.2)]
    assert not np.array_equal(longer[0].user_factors_, longer[1].user_factors_)
    warm_only = [FunkSVD(**{**BASE, "reg": reg}, n_epochs=3, warmup_epochs=3, warmup_lr=0.07,
                         warmup_reg=0.03).fit(small_ratings) for reg in (0.03, 0.2)]
    np.testing.assert_array_equal(warm_only[0].user_factors_, warm_only[1].user_factors_)


def test_the_schedule_starts_after_the_warm_up(small_ratings):
    model = FunkSVD(**BASE, n_epochs=7, warmup_epochs=2, warmup_lr=0.1, lr=0.04,
                    lr_decay=0.5).fit(small_ratings)
    rates = [h["lr"] for h in model.history_]
    assert rates == pytest.approx([0.1, 0.1, 0.04, 0.02, 0.01, 0.005, 0.0025])
    assert [h["adaptive"] for h in model.history_] == [True] * 2 + [False] * 5
    # and the epochs after it are plain SGD: without a warm-up the same rates give
    # another model
    plain = FunkSVD(**BASE, n_epochs=7, warmup_epochs=0, lr=0.04, lr_decay=0.5).fit(
        small_ratings)
    assert not np.array_equal(plain.user_factors_, model.user_factors_)


def test_the_warm_up_gets_further_than_plain_sgd_from_a_small_start():
    # plain SGD at a decaying rate sits on the plateau of the small initial factors (only
    # the biases learn) while its rate decays; the warm-up leaves it
    ratings, _ = generate(SynthSpec(n_users=400, n_items=300, n_ratings=20_000, rank=4,
                                    noise=0.3, seed=5))
    train, valid = holdout(ratings, 0.1, seed=1)

    def final_rmse(warmup):
        model = FunkSVD(n_factors=16, reg=0.03, seed=4, n_jobs=1, init_std=0.005,
                        n_epochs=8, warmup_epochs=warmup).fit(train, validation=valid)
        return model.history_[-1]["valid_rmse"]

    assert final_rmse(3) < final_rmse(0) - 0.05


@pytest.mark.parametrize("schedule", ["constant", "bold", "adagrad"])
def test_only_the_decay_schedule_is_warmed_up(small_ratings, schedule):
    warmed = FunkSVD(**BASE, n_epochs=4, lr_schedule=schedule, warmup_epochs=3).fit(
        small_ratings)
    none = FunkSVD(**BASE, n_epochs=4, lr_schedule=schedule, warmup_epochs=0).fit(
        small_ratings)
    for a, b in zip(arrays(warmed), arrays(none), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("method", ["gd", "funk"])
def test_other_methods_have_no_warm_up(small_ratings, method):
    warmed = FunkSVD(**BASE, n_epochs=3, method=method, warmup_epochs=3).fit(small_ratings)
    none = FunkSVD(**BASE, n_epochs=3, method=method, warmup_epochs=0).fit(small_ratings)
    np.testing.assert_array_equal(warmed.user_factors_, none.user_factors_)


def test_the_warm_up_is_the_same_model_on_any_number_of_threads(small_ratings):
    one = FunkSVD(**{**BASE, "n_jobs": 1}, n_epochs=5, grid=4).fit(small_ratings)
    two = FunkSVD(**{**BASE, "n_jobs": 2}, n_epochs=5, grid=4).fit(small_ratings)
    for a, b in zip(arrays(one), arrays(two), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_short_trial_keeps_the_warm_up_and_shortens_what_follows():
    params = dict(method="sgd", lr_schedule="decay", n_epochs=13, lr=0.03, lr_decay=0.85,
                  warmup_epochs=3, warmup_lr=0.1)
    short = autoreg.trial_params(params, "sgd")
    assert short["n_epochs"] == 3 + 3  # the warm-up, then ceil(10 / 4)
    assert short["warmup_lr"] == 0.1 and short["warmup_epochs"] == 3
    assert short["lr"] == pytest.approx(0.12) and short["lr_decay"] == pytest.approx(0.85 ** 4)
    assert autoreg.trial_params({**params, "n_epochs": 2}, "sgd")["n_epochs"] == 2
    constant = {**params, "lr_schedule": "constant", "n_epochs": 12}
    assert autoreg.trial_params(constant, "sgd")["n_epochs"] == 3  # no warm-up to keep


def test_the_rate_a_fit_ended_with_skips_its_warm_up():
    history = [{"lr": 0.1, "adaptive": True}] * 3 + [{"lr": 0.03, "adaptive": False},
                                                      {"lr": 0.0255, "adaptive": False}]
    assert ended_rate(history, 0.03, 0.85, 5, 3) == 0.0255
    assert ended_rate(history[:3], 0.03, 0.85, 3, 3) == 0.03  # the schedule had not begun
    assert ended_rate([], 0.03, 0.85, 5, 3) == pytest.approx(0.03 * 0.85)  # no history
    assert ended_rate([{"lr": 0.02}], 0.03, 0.85, 1) == 0.02  # a history from before


def test_the_shared_warm_up_reports_the_validation_rmse_without_being_steered_by_it():
    """With reg auto and validation ratings, the warm-up epochs (trained for the trials,
    taken over by the final fit) report the validation RMSE like the other epochs; the
    model and the trials are those of the fit without validation, bit for bit."""
    ratings, _ = generate(SynthSpec(n_users=300, n_items=200, n_ratings=12_000, rank=4,
                                    noise=0.3, seed=5))
    train, valid = holdout(ratings, 0.1, seed=1)
    params = dict(n_factors=6, n_epochs=6, seed=2, n_jobs=1)
    reports = []
    scored = FunkSVD(**params).fit(train, validation=valid, callback=reports.append)
    alone = FunkSVD(**params).fit(train)
    for a, b in zip(arrays(scored), arrays(alone), strict=True):
        np.testing.assert_array_equal(a, b)
    assert scored.reg_trials_ == alone.reg_trials_
    warm_up = scored.history_[:3]
    assert all(h["reg_trial"] for h in warm_up) and not any(h.get("reg_trial")
                                                            for h in scored.history_[3:])
    assert all(h["valid_rmse"] is not None for h in scored.history_)
    assert all(h["valid_rmse"] is None for h in alone.history_)
    # the callback heard the same numbers, epoch by epoch, warm-up first
    assert [r.valid_rmse for r in reports] == [h["valid_rmse"] for h in scored.history_]
    assert [r.epoch for r in reports] == list(range(1, 7))
    # the warm-up's last report is the RMSE of its factors on the validation ratings,
    # clipped to the range of the ratings it trained on
    from recsys.data.split import split_off
    from recsys.models.factorization import _indexed_validation
    from recsys.models.regsearch import search_reg

    held = _indexed_validation(valid, train.user_map, train.item_map)
    _, _, warmed = search_reg(FunkSVD(**params), train, validation=held)
    rest, _ = split_off(train, autoreg.HOLDOUT, 2, stream=2)
    lo, hi = float(rest.values.min()), float(rest.values.max())
    assert warm_up[-1]["valid_rmse"] == pytest.approx(warmed.factors.rmse(
        held.users, held.items, held.values, lo, hi), rel=1e-9)
    assert warm_up[0]["valid_rmse"] > warm_up[-1]["valid_rmse"]  # and it learns


def test_a_warm_start_does_not_warm_up_again(small_ratings):
    parent = FunkSVD(**BASE, n_epochs=5, lr=0.04, lr_decay=0.5).fit(small_ratings)
    child = FunkSVD(**BASE, n_epochs=2, lr=0.04, lr_decay=0.5).fit(small_ratings,
                                                                    init=parent)
    assert [h["adaptive"] for h in child.history_] == [False, False]
    # the parent's schedule ran 0.04, 0.02 after its warm-up; the child goes on from there
    assert [h["lr"] for h in child.history_] == pytest.approx([0.01, 0.005])


def test_a_warm_start_after_only_a_warm_up_begins_the_schedule(small_ratings):
    parent = FunkSVD(**BASE, n_epochs=2, lr=0.04, lr_decay=0.5).fit(small_ratings)
    child = FunkSVD(**BASE, n_epochs=2, lr=0.04, lr_decay=0.5).fit(small_ratings,
                                                                    init=parent)
    assert [h["lr"] for h in child.history_] == pytest.approx([0.04, 0.02])
    history = [{"lr": 0.1, "adaptive": True}] * 3 + [{"lr": 0.03, "adaptive": False}]
    assert continued_rate(history, 0.03, 0.85, 4, 3, 0.5) == pytest.approx(0.015)
    assert continued_rate(history[:3], 0.03, 0.85, 3, 3, 0.5) == 0.03
    assert continued_rate([], 0.03, 0.85, 3, 3, 0.5) == 0.03


def test_learning_rate_refuses_a_warm_up_it_cannot_have():
    with pytest.raises(ValueError, match="warm-up needs lr_schedule decay"):
        LearningRate(0.01, "constant", warmup=2)
    assert TrainConfig().warmup_epochs == 3 and TrainConfig().n_epochs == 15


def test_one_warm_up_at_the_reference_starts_every_trial_and_the_final_fit():
    """With reg auto the warm-up is trained once, at the reference γ, on the trials'
    ratings; the trials and the final fit go on from it: the model is a plain-SGD fit
    from it on all the ratings."""
    from dataclasses import replace

    from recsys.data.split import split_off
    from recsys.models.regsearch import search_reg
    from recsys.training.loop import IndexedRatings, train

    ratings, _ = generate(SynthSpec(n_users=300, n_items=200, n_ratings=12_000, rank=4,
                                    noise=0.3, seed=5))
    model = FunkSVD(n_factors=6, n_epochs=8, seed=2, n_jobs=1)
    reg, trials, warmed = search_reg(model, ratings)
    assert len(trials) >= 3 and [h["adaptive"] for h in warmed.history] == [True] * 3
    # the warm-up is three AdaGrad epochs at the reference on the trials' 90%, bit for bit
    rest, _ = split_off(ratings, autoreg.HOLDOUT, 2, stream=2)
    alone = train(replace(model._train_config(autoreg.REFERENCE), n_epochs=3),
                  IndexedRatings.of(rest)).factors
    for a, b in zip(warmed.factors.arrays(), alone.arrays(), strict=True):
        np.testing.assert_array_equal(a, b)
    # each trial goes on from it: the held-out RMSE of the first trial is that of the
    # shortened schedule after the warm-up
    short = autoreg.trial_params(model.get_params(), "sgd")
    first = replace(model._train_config(autoreg.REFERENCE), warmup_epochs=0,
                    n_epochs=short["n_epochs"] - 3, lr=short["lr"], lr_decay=short["lr_decay"])
    _, held = split_off(ratings, autoreg.HOLDOUT, 2, stream=2)
    after = train(first, IndexedRatings.of(rest), init=warmed.factors.copy()).factors
    lo, hi = float(rest.values.min()), float(rest.values.max())
    assert trials[0] == (autoreg.REFERENCE, pytest.approx(after.rmse(
        held.users, held.items, held.values.astype(np.float64), lo, hi), rel=1e-12))
    # and the final fit goes on from it too: 5 plain epochs on all the ratings
    model.fit(ratings)
    assert model.reg_ == reg
    on = train(replace(model._train_config(reg), warmup_epochs=0, n_epochs=5),
               IndexedRatings.of(ratings), init=warmed.factors.copy()).factors
    for a, b in zip(arrays(model), on.arrays(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert [h["epoch"] for h in model.history_] == list(range(1, 9))
    assert [h.get("reg_trial", False) for h in model.history_] == [True] * 3 + [False] * 5
    assert not any(h["adaptive"] for h in model.history_[3:])
    # without a warm-up there is nothing to share: the pinned γ gives the same model
    plain = dict(n_factors=6, n_epochs=8, seed=2, n_jobs=1, warmup_epochs=0)
    auto = FunkSVD(**plain).fit(ratings)
    pinned = FunkSVD(**plain, reg=auto.reg_).fit(ratings)
    for a, b in zip(arrays(auto), arrays(pinned), strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_final_fit_groups_its_ratings_into_the_trials_arrays(monkeypatch):
    """The trials' grouped arrays have room for every rating, and the final fit groups
    all of them into those (no second set of arrays), giving the model it gives in arrays
    of its own (the test above)."""
    import recsys.training.loop as loop

    ratings, _ = generate(SynthSpec(n_users=300, n_items=200, n_ratings=12_000, rank=4,
                                    noise=0.3, seed=5))
    grouped = []
    group = loop._grouped

    def spy(*args, **kwargs):
        grouped.append(group(*args, **kwargs))
        return grouped[-1]

    monkeypatch.setattr(loop, "_grouped", spy)
    model = FunkSVD(n_factors=6, n_epochs=8, seed=2, n_jobs=1).fit(ratings)
    trials, final = grouped  # grouped once for all the trials, once for the final fit
    assert len(trials) == len(ratings) - int(len(ratings) * autoreg.HOLDOUT)
    assert len(final) == len(ratings)
    assert all(len(a) == len(ratings) for a in trials.room)
    assert all(b is a for a, b in zip(trials.room, final.room, strict=True))
    assert np.shares_memory(final.users, trials.room[0])
    monkeypatch.setattr(loop, "_grouped", group)
    again = FunkSVD(n_factors=6, n_epochs=8, seed=2, n_jobs=1).fit(ratings)
    for a, b in zip(arrays(model), arrays(again), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_fit_groups_into_room_only_where_it_fits(small_ratings):
    from recsys.training.loop import IndexedRatings, train

    config = FunkSVD(n_factors=4, n_epochs=2, reg=0.05, seed=1, n_jobs=1,
                     warmup_epochs=0)._train_config(0.05)
    r = IndexedRatings.of(small_ratings)
    alone = train(config, r).factors
    n = len(r)
    for room, used in [((np.empty(n + 5, np.int32), np.empty(n + 5, np.int32),
                         np.empty(n + 5, np.float32)), True),
                       ((np.empty(n - 1, np.int32), np.empty(n, np.int32),
                         np.empty(n, np.float32)), False),  # too short
                       ((np.empty(n, np.int64), np.empty(n, np.int32),
                         np.empty(n, np.float32)), False)]:  # another dtype
        before = room[0].copy()
        factors = train(config, r, room=room).factors
        for a, b in zip(factors.arrays(), alone.arrays(), strict=True):
            np.testing.assert_array_equal(a, b)
        assert (not np.array_equal(room[0], before)) == used
