"""reg='auto': the ladder of trials, what it picks on clean and on noisy data, and that the
final model is the plain fit at the chosen γ."""

import numpy as np
import pytest

from recsys.data.ratings import IdMap, Ratings
from recsys.data.split import split_off
from recsys.data.synth import SynthSpec, generate
from recsys.evaluation.metrics import rmse
from recsys.models.funksvd import FunkSVD
from recsys.training import autoreg
from recsys.training.autoreg import REFERENCE, choose_reg
from recsys.training.loop import train

FAST = dict(n_factors=4, n_epochs=30, lr=0.01, init_std=0.1, n_jobs=1, lr_schedule="constant")


def _flat(n=5_000) -> Ratings:
    users = np.arange(n, dtype=np.int32) % 50
    items = np.arange(n, dtype=np.int32) // 50
    return Ratings(users, items, np.full(n, 3.0, np.float32), IdMap(np.arange(50)),
                   IdMap(np.arange(n // 50)))


def _ladder(best: float) -> tuple[float, list[float]]:
    reg, trials = choose_reg(lambda reg: abs(np.log2(reg / best)) + 0.1)
    return reg, [r for r, _ in trials]


@pytest.mark.parametrize("best, tried", [
    (REFERENCE, [1, 1 / 2, 2]),
    (REFERENCE / 4, [1, 1 / 2, 1 / 4, 1 / 8]),
    (REFERENCE / 2, [1, 1 / 2, 1 / 4]),
    (REFERENCE / 100, [1, 1 / 2, 1 / 4, 1 / 8]),
    (REFERENCE * 2, [1, 1 / 2, 2, 4]),
    (REFERENCE * 100, [1, 1 / 2, 2, 4]),
])
def test_ladder_halves_while_it_helps_and_doubles_only_if_halving_did_not(best, tried):
    reg, trials = _ladder(best)
    assert trials == [REFERENCE * t for t in tried]
    nearest = min(trials, key=lambda r: abs(np.log2(r / best)))
    assert reg == nearest


def test_trials_report_the_held_out_error_of_each_fit(small_ratings):
    """The estimator scores each trial on the held-out share and reports it."""
    seen = []
    model = FunkSVD(**FAST).fit(_flat(), reg_callback=lambda r, e: seen.append((r, e)))
    assert seen == model.reg_trials_ and [r for r, _ in seen][:2] == [REFERENCE, REFERENCE / 2]
    # all ratings are 3, so every model predicts them nearly exactly
    assert all(e < 0.05 for _, e in seen)


def test_ties_go_to_the_first_trial():
    reg, trials = choose_reg(lambda reg: 1.0)
    assert reg == REFERENCE and [r for r, _ in trials] == [REFERENCE, REFERENCE / 2,
                                                           REFERENCE * 2]


def test_too_few_ratings_use_the_reference_untried():
    model = FunkSVD(**FAST).fit(_flat(autoreg.MIN_RATINGS - 50))
    assert model.reg == "auto" and model.reg_ == REFERENCE and model.reg_trials_ == []


@pytest.fixture(scope="module")
def clean():
    """A strong rank-2 signal with little noise: needs far less shrinkage than MovieLens."""
    ratings, _ = generate(SynthSpec(n_users=300, n_items=150, n_ratings=20_000, rank=2,
                                    noise=0.1, scale="none", seed=3))
    return ratings


@pytest.fixture(scope="module")
def noisy():
    """Biases and a faint rank-2 signal under heavy, rounded noise: shrinkage pays."""
    ratings, _ = generate(SynthSpec(n_users=300, n_items=150, n_ratings=8_000, rank=2,
                                    noise=1.2, seed=4))
    return ratings


def test_clean_data_get_less_regularization_than_the_reference(clean):
    model = FunkSVD(**FAST).fit(clean)
    assert model.reg_ < REFERENCE
    errors = dict(model.reg_trials_)
    assert errors[model.reg_] < errors[REFERENCE]


def test_on_clean_data_auto_predicts_unseen_ratings_better_than_the_reference():
    ratings, _ = generate(SynthSpec(n_users=300, n_items=150, n_ratings=22_000, rank=2,
                                    noise=0.1, scale="none", seed=5))
    test = np.arange(len(ratings)) % 10 == 0
    train, held = ratings.subset(~test), ratings.subset(test)

    def error(model):
        return rmse(held.values, model.predict(held.raw_users, held.raw_items))

    auto = FunkSVD(**FAST).fit(train)
    fixed = FunkSVD(**{**FAST, "reg": REFERENCE}).fit(train)
    assert error(auto) < 0.85 * error(fixed)
    assert error(auto) < 1.05 * 0.1  # within 5% of the noise σ: the truth is learned


def test_noisy_data_keep_at_least_the_reference(noisy):
    model = FunkSVD(**FAST).fit(noisy)
    assert model.reg_ >= REFERENCE
    assert dict(model.reg_trials_)[model.reg_] == min(e for _, e in model.reg_trials_)


def test_auto_is_the_plain_fit_at_the_chosen_reg_bit_for_bit(clean):
    auto = FunkSVD(**FAST).fit(clean)
    fixed = FunkSVD(**{**FAST, "reg": auto.reg_}).fit(clean)
    assert fixed.reg_trials_ == []
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
        np.testing.assert_array_equal(getattr(auto, name), getattr(fixed, name))
    items = clean.raw_items[:20]
    values = clean.values[:20]
    for a, b in zip(auto.fold_in((items, values)), fixed.fold_in((items, values))):
        np.testing.assert_array_equal(a, b)


def test_auto_is_reproducible_and_follows_the_seed(clean):
    one = FunkSVD(**FAST).fit(clean)
    two = FunkSVD(**FAST).fit(clean)
    assert one.reg_trials_ == two.reg_trials_
    np.testing.assert_array_equal(one.user_factors_, two.user_factors_)
    other = FunkSVD(**{**FAST, "seed": 1}).fit(clean)
    assert other.reg_trials_ != one.reg_trials_  # another held-out share


@pytest.mark.parametrize("bad", ["fast", "AUTO ", True, -0.1, float("nan"), float("inf"), None])
def test_reg_must_be_auto_or_a_number(bad, small_ratings):
    with pytest.raises(ValueError, match="reg must be 'auto' or a finite number"):
        FunkSVD(reg=bad).fit(small_ratings)


def test_trial_params_shorten_plain_sgd_only():
    plain = dict(FAST, method="sgd", lr_schedule="constant")
    short = autoreg.trial_params(plain, "sgd")
    assert short["lr"] == pytest.approx(4 * FAST["lr"]) and short["n_epochs"] == 8  # ceil(30/4)
    assert autoreg.trial_params(dict(plain, n_epochs=1), "sgd")["n_epochs"] == 1
    for params, method in ((dict(plain, lr_schedule="adagrad"), "sgd"),
                           (dict(plain, method="funk"), "funk"), (plain, "svdpp")):
        assert autoreg.trial_params(params, method) == params


def test_a_short_trial_of_the_decay_schedule_takes_the_same_total_step():
    full = dict(FAST, method="sgd", lr_schedule="decay", lr_decay=0.94)
    short = autoreg.trial_params(full, "sgd")
    assert short["lr"] == pytest.approx(4 * FAST["lr"]) and short["n_epochs"] == 8
    assert short["lr_decay"] == pytest.approx(0.94 ** 4)

    def total(p):
        return sum(p["lr"] * p["lr_decay"] ** t for t in range(p["n_epochs"]))

    # with the per-epoch factor left at 0.94 the trial would step about twice as far
    assert total(short) == pytest.approx(total(full), rel=0.15)


def test_trials_run_a_quarter_of_the_epochs_at_four_times_the_step(clean, monkeypatch):
    import recsys.models.regsearch as regsearch

    fits = []

    def recording(config, *args, **kwargs):
        fits.append((config.lr, config.n_epochs, config.reg))
        return train(config, *args, **kwargs)

    monkeypatch.setattr(regsearch, "train", recording)
    model = FunkSVD(**FAST).fit(clean)
    assert len(fits) == len(model.reg_trials_) >= 2
    assert all(f[:2] == (pytest.approx(4 * FAST["lr"]), 8) for f in fits)
    assert [f[2] for f in fits] == [reg for reg, _ in model.reg_trials_]
    assert model.history_[0]["lr"] == FAST["lr"] and len(model.history_) == FAST["n_epochs"]


# (with a warm-up the trials go on from one shared warm-up: tests/test_warmup.py)
@pytest.mark.parametrize("schedule", [{}, dict(lr_schedule="decay", lr=0.03, n_epochs=13,
                                              warmup_epochs=0)])
def test_a_trial_scores_what_a_model_fitted_on_the_rest_predicts(clean, schedule):
    model = FunkSVD(**{**FAST, **schedule}).fit(clean)
    rest, held = split_off(clean, autoreg.HOLDOUT, FAST.get("seed", 0), stream=2)
    short = autoreg.trial_params(model.get_params(), "sgd")
    for reg, score in model.reg_trials_:
        trial = FunkSVD(**{**short, "reg": reg}).fit(rest)
        pred = trial.predict(held.raw_users, held.raw_items).astype(np.float64)
        assert score == pytest.approx(float(np.sqrt(np.mean((pred - held.values) ** 2))),
                                      rel=1e-12)


@pytest.mark.parametrize("data", ["clean", "noisy"])
def test_short_trials_choose_what_full_length_trials_choose(data, request, monkeypatch):
    ratings = request.getfixturevalue(data)
    short = FunkSVD(**FAST).fit(ratings)
    monkeypatch.setattr(autoreg, "TRIAL_SPEEDUP", 1)
    full = FunkSVD(**FAST).fit(ratings)
    assert short.reg_ == full.reg_
    np.testing.assert_array_equal(short.user_factors_, full.user_factors_)


def test_a_diverging_short_trial_falls_back_to_full_length_trials(clean, monkeypatch):
    monkeypatch.setattr(autoreg, "TRIAL_SPEEDUP", 1)
    full = FunkSVD(**FAST).fit(clean)
    monkeypatch.setattr(autoreg, "TRIAL_SPEEDUP", 10_000)  # lr 100: every short trial diverges
    fallback = FunkSVD(**FAST).fit(clean)
    assert fallback.reg_ == full.reg_ and fallback.reg_trials_ == full.reg_trials_


def test_the_ladder_starts_lower_only_where_the_warm_up_explains_enough():
    assert autoreg.ladder_start(None) == REFERENCE
    assert autoreg.ladder_start(autoreg.CLEAN_R2) == REFERENCE
    assert autoreg.ladder_start(-0.5) == REFERENCE  # worse than the mean
    assert autoreg.ladder_start(autoreg.CLEAN_R2 + 1e-6) == autoreg.CLEAN_START
    assert autoreg.CLEAN_START == REFERENCE / 2  # a rung of the ladder


@pytest.mark.parametrize("best, tried", [
    (REFERENCE / 2, [1 / 2, 1 / 4, 1]),
    (REFERENCE / 4, [1 / 2, 1 / 4, 1 / 8]),
    (REFERENCE / 100, [1 / 2, 1 / 4, 1 / 8]),
    (REFERENCE, [1 / 2, 1 / 4, 1, 2]),
    (REFERENCE * 100, [1 / 2, 1 / 4, 1, 2, 4]),
])
def test_the_ladder_from_a_lower_start(best, tried):
    reg, trials = choose_reg(lambda reg: abs(np.log2(reg / best)) + 0.1, autoreg.CLEAN_START)
    assert [r for r, _ in trials] == [REFERENCE * t for t in tried]
    assert reg == min((r for r, _ in trials), key=lambda r: abs(np.log2(r / best)))


@pytest.mark.parametrize("best", np.geomspace(REFERENCE / 20, REFERENCE * 20, 23))
@pytest.mark.parametrize("skew", [0.3, 1.0, 3.0])
def test_either_start_finds_the_same_minimum_of_a_curve_that_falls_then_rises(best, skew):
    """On a held-out curve with one minimum along the ladder (steeper on one side), the
    start changes what is tried, never what is chosen."""
    def score(reg):
        x = np.log2(reg / best)
        return float(x * x * (skew if x > 0 else 1.0))

    starts = (REFERENCE, autoreg.CLEAN_START)
    assert len({choose_reg(score, start)[0] for start in starts}) == 1


def _default_fit(ratings, **params):
    return FunkSVD(n_factors=8, n_jobs=1, **params).fit(ratings)


def test_clean_data_start_the_ladder_lower_and_get_the_same_model(clean, monkeypatch):
    lower = _default_fit(clean)  # the defaults: a warm-up, then the decay schedule
    assert lower.reg_trials_[0][0] == autoreg.CLEAN_START
    assert len(lower.reg_trials_) == 3
    monkeypatch.setattr("recsys.models.regsearch.ladder_start", lambda explained: REFERENCE)
    upper = _default_fit(clean)
    assert upper.reg_trials_[0][0] == REFERENCE and len(upper.reg_trials_) == 4
    assert lower.reg_ == upper.reg_
    # the trials both ladders ran are the same fits, and so is the model
    common = set(dict(lower.reg_trials_)) & set(dict(upper.reg_trials_))
    assert all(dict(lower.reg_trials_)[r] == dict(upper.reg_trials_)[r] for r in common)
    assert lower.state_.digest() == upper.state_.digest()


def test_noisy_data_start_the_ladder_at_the_reference(noisy):
    model = _default_fit(noisy)
    assert model.reg_trials_[0][0] == REFERENCE


@pytest.mark.parametrize("n, users, items, share", [
    (9_000_000, 70_000, 10_000, 0.5),   # MovieLens 10M's shape: sampled
    (88_000_000, 480_000, 17_770, 0.5),  # Netflix's
    (880_000, 6_040, 3_706, 1.0),       # MovieLens 1M's: too few users per item
    (72_000, 943, 1_682, 1.0),          # 100k's
    (1_900_000, 400_000, 1_000, 1.0),   # too few ratings for half of them to do
    (2_000_000, 4_000, 1_000, 0.5),     # both at the edge
    (2_000_000, 3_999, 1_000, 1.0),
])
def test_trials_sample_half_the_users_only_of_large_sets_with_many_users_per_item(
        n, users, items, share):
    assert autoreg.user_share(n, users, items) == share


def test_trials_of_a_large_set_train_and_score_on_a_half_of_its_users(clean, monkeypatch):
    """Where the sample applies (here with its bounds lowered to a small set), every trial
    goes on from the shared warm-up on all the trial ratings of about half the users,
    taken from the warm-up's blocks in their order, and is scored on those users'
    held-out ratings; the final fit is the warm-up's on all the ratings at the chosen γ,
    as without a sample."""
    import recsys.models.regsearch as regsearch
    from recsys.state import Factors

    monkeypatch.setattr(autoreg, "SAMPLE_MIN_RATINGS", 1000)
    monkeypatch.setattr(autoreg, "SAMPLE_USERS_PER_ITEM", 1)
    trained, scored = [], []
    fit, rmse_of = regsearch.train, Factors.rmse

    def spy_train(config, ratings, *args, **kwargs):
        if kwargs.get("init") is not None:  # a trial
            trained.append((ratings, kwargs["shared"].grouped))
        return fit(config, ratings, *args, **kwargs)

    def spy_rmse(self, users, *args):
        scored.append(users)
        return rmse_of(self, users, *args)

    monkeypatch.setattr(regsearch, "train", spy_train)
    monkeypatch.setattr(Factors, "rmse", spy_rmse)
    sampled = _default_fit(clean)
    assert len(trained) == len(sampled.reg_trials_) == len(scored) - 1  # (+ the warm-up's)
    rest, held = split_off(clean, autoreg.HOLDOUT, 0, stream=2)
    picked = regsearch.picked_users(rest.n_users, 0.5, 0)
    assert 0.4 < picked.mean() < 0.6
    ratings, grouped = trained[0]
    assert all(r is ratings for r, _ in trained)  # the same sample for every trial
    # all the trial ratings of the users drawn, and none of the others'
    rows = sorted(zip(ratings.users, ratings.items, ratings.values, strict=True))
    mine = picked[rest.users]
    assert rows == sorted(zip(rest.users[mine], rest.items[mine], rest.values[mine],
                              strict=True))
    assert np.all(grouped.users == ratings.users)  # in the blocks' order, sorted by user
    for a, b in zip(grouped.block_ptr[:-1], grouped.block_ptr[1:], strict=True):
        assert np.all(np.diff(grouped.users[a:b]) >= 0)
    # the warm-up is scored on all the held-out ratings, the trials on those users' only
    np.testing.assert_array_equal(scored[0], held.users)
    for users in scored[1:]:
        np.testing.assert_array_equal(users, held.users[picked[held.users]])
    # the same draw for the same seed, another for another
    np.testing.assert_array_equal(regsearch.picked_users(rest.n_users, 0.5, 0), picked)
    assert not np.array_equal(regsearch.picked_users(rest.n_users, 0.5, 1), picked)
    # the trials differ from those on every user; the final fit follows γ alone
    monkeypatch.setattr(autoreg, "SAMPLE_MIN_RATINGS", 10**12)
    whole = _default_fit(clean)
    assert sampled.reg_trials_ != whole.reg_trials_
    assert sampled.reg_ == whole.reg_  # (on this set both choose the same γ)
    assert sampled.state_.digest() == whole.state_.digest()
