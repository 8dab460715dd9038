"""``reg='auto'``'s trial fits: what each trial trains and how it is scored.

The ladder of γ to try is ``recsys.training.autoreg``'s; this module runs it for an
estimator. A share (``HOLDOUT``) of the training ratings is held out by the seed; each
trial trains on the rest with the estimator's other parameters (shortened for plain SGD,
``autoreg.trial_params``) and scores the RMSE of its clipped predictions of the held-out
ratings. Trials go straight to the training loop: a model's seen-items index and lineage
are not needed to rank γ, and building them for three trials took 1.1 s of a 24.5 s
default fit (10M ratings, one thread). The trials also share the ratings grouped and
ordered into blocks and the initial factors (``recsys.training.loop.Shared``): grouped,
sorted and drawn once.

**One warm-up for all.** Under a warm-up (AdaGrad epochs first, the decay schedule) the
warm-up is trained once, at its own γ (``warmup_reg``, by default the ladder's reference
0.065, whatever γ a trial tries), on the trials' ratings; every trial goes on from a copy
of it at its own γ, and so does the final fit, on all the ratings, instead of warming up
again (``WarmedUp``). The trials then rank γ for the procedure the final fit follows, and
the warm-up is paid once where it was paid by every trial and the final fit (1M
generated ratings, one thread, CPU seconds: the whole default fit 1.01-1.03 s where
separate warm-ups took 1.13-1.18 s, two runs each, not alternated; docs/benchmarks.md has
the alternated comparison with LIBMF). On a 1M generated MovieLens-shaped set the choice
moves from 0.0325 to 0.016 and the final model is better for it (RMSE 0.6001 against
0.6022); MovieLens 100k keeps 0.065 on every fold and the ground-truth check 0.008
(docs/results.md, "One warm-up for all"). The warm-up sees 90% of the ratings; the other
10% enter with the final fit's first plain epochs, and the default schedule is two plain
epochs longer for it (15 epochs of 0.03 × 0.88 where it was 13 of 0.03 × 0.85: MovieLens
100k u1..u5 at the old schedule lost 0.001).

The warm-up is trained before the first trial, and its RMSE on the held-out share decides
where the ladder starts (``autoreg.ladder_start``): one halving below the reference where
it already explains more than 40% of those ratings' variance. On large sets with many
users per item the trials after it train on half the users (``autoreg.user_share``):
their ratings are taken from the warm-up's blocks as they lie (no second grouping,
shuffle or sort), and the held-out ratings of those users score them.

The trials' grouped arrays are made with room for all the ratings, and the final fit
groups its ratings into them, then builds the seen-items index in them, instead of
allocating its own (``recsys.training.loop.train``'s ``room``): on the shared VM the
first write to fresh memory is slow (``train``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np

from recsys.data.split import split_off
from recsys.errors import TrainingError
from recsys.state import Factors
from recsys.training.autoreg import (
    HOLDOUT,
    MIN_RATINGS,
    REFERENCE,
    choose_reg,
    ladder_start,
    trial_params,
    user_share,
)
from recsys.training.loop import IndexedRatings, Shared, train
from recsys.training.schedule import warmup_run

log = logging.getLogger(__name__)
#: What a short trial changes (``autoreg.trial_params``).
_SHORTENED = ("lr", "n_epochs", "lr_decay")


@dataclass
class WarmedUp:
    """The trials' warm-up: the factors at its end and its epochs' reports, where every
    trial and the final fit (``FactorizationEstimator.fit``) start their schedule."""

    factors: Factors
    history: list
    #: The trials' grouped arrays, with room for all the ratings: the final fit groups
    #: its ratings into them (``recsys.training.loop.train``'s ``room``).
    room: tuple | None = None


def search_reg(estimator, ratings, reg_callback=None, validation=None
               ) -> tuple[float, list, WarmedUp | None]:
    """(γ, trials, warm-up) for ``estimator`` (a FactorizationEstimator with
    ``reg='auto'``) on ``ratings``: the ladder's choice from trial fits on ratings held
    out by its seed, and the warm-up the trials went on from (None where they have
    none); the reference, untried, below ``MIN_RATINGS`` ratings. ``validation``: the
    caller's validation ratings (IndexedRatings on the maps of ``ratings``, or None),
    scored after each warm-up epoch so that the warm-up's reports, which the final fit
    takes as its first epochs, carry a validation RMSE like the rest; the trials never
    see them."""
    if len(ratings) < MIN_RATINGS:
        return REFERENCE, [], None
    rest, held = split_off(ratings, HOLDOUT, int(estimator.seed), stream=2)
    fitting = IndexedRatings.of(rest)
    # both sides keep the id maps, so the held-out indices are the trials' own
    scored = IndexedRatings(held.users, held.items, held.values.astype(np.float64),
                            rest.n_users, rest.n_items)
    lo, hi = float(rest.values.min()), float(rest.values.max())
    params = estimator.get_params()
    method = estimator._METHOD or params.get("method", "sgd")
    short = trial_params(params, method)
    warmup = _warmup_of(replace(estimator._train_config(REFERENCE),
                                **{name: short[name] for name in _SHORTENED}))
    # every trial trains on the same ratings; from the same drawn start, unless they go
    # on from the warm-up (then the drawn start is not kept)
    shared = Shared(keep_start=not warmup, capacity=len(ratings))
    warmed: list[WarmedUp] = []  # the warm-up, once trained
    scratch: list[Factors] = []  # the factors of the trial before, overwritten by the next
    sampled: list[tuple] = []  # what the trials after the warm-up train and score on

    def after_warm_up() -> tuple:
        """(ratings, Shared, held-out truth) of the trials that go on from the warm-up:
        the warm-up's, or where ``autoreg.user_share`` says so, those of a share of the
        users, taken from the warm-up's grouped ratings in their order (no grouping,
        shuffling or sorting again) and scored on the held-out ratings of those users."""
        if not sampled:
            share = user_share(len(rest), rest.n_users, rest.n_items)
            if share < 1:
                picked = picked_users(rest.n_users, share, int(estimator.seed))
                grouped = shared.grouped.of_users(picked)
                _, kept = held.split(picked[held.users])
                sampled.append((
                    IndexedRatings(grouped.users, grouped.items, grouped.values,
                                   rest.n_users, rest.n_items),
                    Shared(key=shared.key, grouped=grouped, keep_start=False),
                    IndexedRatings(kept.users, kept.items, kept.values.astype(np.float64),
                                   rest.n_users, rest.n_items)))
                log.info("reg auto: the trials train on %.0f%% of the users (%d ratings)",
                         100 * share, len(grouped))
            else:
                sampled.append((fitting, shared, scored))
        return sampled[0]

    def warm_up(warmup: int) -> WarmedUp:
        if not warmed:  # (its epochs train at warmup_reg, whatever the γ)
            first = replace(estimator._train_config(REFERENCE), n_epochs=warmup,
                            early_stopping=0)
            done = train(first, fitting, validation, shared=shared)
            warmed.append(WarmedUp(done.factors, done.history, shared.grouped.room))
        return warmed[0]

    def scorer(trial: dict):
        def score(reg: float) -> float:
            config = replace(estimator._train_config(reg),
                             **{name: trial[name] for name in _SHORTENED})
            # with early stopping a trial stops on the share it is scored on, as every
            # trial does, so the comparison stays even
            warmup = _warmup_of(config)
            if warmup:
                start = warm_up(warmup).factors.copy(into=scratch[0] if scratch else None)
                scratch[:] = [start]
                on, their, truth = after_warm_up()
                valid = truth if config.early_stopping else None
                rest_of = replace(config, warmup_epochs=0, n_epochs=config.n_epochs - warmup)
                factors = train(rest_of, on, valid, init=start, shared=their,
                                after=warmup).factors
            else:
                valid = scored if config.early_stopping else None
                factors = train(config, fitting, valid, shared=shared).factors
                truth = scored
            error = factors.rmse(truth.users, truth.items, truth.values, lo, hi)
            log.info("reg auto: %g gives RMSE %.4f on the held-out share", reg, error)
            if reg_callback is not None:
                reg_callback(reg, error)
            return error

        return score

    explained = None  # of the held-out ratings' variance, by the warm-up
    variance = float(np.var(scored.values))
    if warmup and variance > 0:
        error = warm_up(warmup).factors.rmse(scored.users, scored.items, scored.values, lo, hi)
        explained = 1.0 - error * error / variance
    start = ladder_start(explained)
    log.info("reg auto: the warm-up explains %s of the held-out variance; the ladder starts "
             "at %g", "-" if explained is None else f"{explained:.3f}", start)
    if short == params:
        reg, trials = choose_reg(scorer(params), start)
    else:
        try:
            reg, trials = choose_reg(scorer(short), start)
        except TrainingError:
            log.info("reg auto: a short trial diverged at lr %g; trying again with "
                     "full-length trials", short["lr"])
            reg, trials = choose_reg(scorer(params), start)
    return reg, trials, (warmed[0] if warmed else None)


def picked_users(n_users: int, share: float, seed: int) -> np.ndarray:
    """Which users (a bool per user index) a share of them is, drawn by ``seed`` from a
    stream of its own."""
    from recsys.kernels.cpu.rng import stream_seed

    return np.random.default_rng(int(stream_seed(seed, 3, 0))).random(n_users) < share


def _warmup_of(config) -> int:
    """The warm-up epochs a trial of ``config`` runs first (0: none, or nothing after it)."""
    warmup = warmup_run(config.method, config.lr_schedule, config.warmup_epochs)
    return warmup if 0 < warmup < config.n_epochs else 0
