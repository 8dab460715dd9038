"""``reg='auto'``'s trial fits: what each trial trains and how it is scored.

The ladder of γ to try is ``recsys.training.autoreg``'s; this module runs it for an
estimator. A share (``HOLDOUT``) of the training ratings is held out by the seed; each
trial trains on the rest with the estimator's other parameters (shortened for plain SGD,
``autoreg.trial_params``) and scores the RMSE of its clipped predictions of the held-out
ratings. Trials go straight to the training loop: a model's seen-items index and lineage
are not needed to rank γ, and building them for three trials took 1.1 s of a 24.5 s
default fit (10M ratings, one thread). The trials also share the ratings grouped and
ordered into blocks and the initial factors (``recsys.training.loop.Shared``): the same
trials, bit for bit, without grouping, sorting and drawing again for each.

The trials keep their own warm-up (AdaGrad epochs first, under the decay schedule):
trained once at the reference γ and shared, it moved the choice on a 1M generated set
from 0.0325 to 0.016 and narrowed the margins on MovieLens 100k (docs/results.md).

The chosen trial's warm-up is the final fit's: each trial keeps a copy of its factors at
the end of its warm-up (the best trial's only), and the final fit starts its schedule
from them on all the ratings instead of warming up again (``WarmedUp``). The warm-up then
saw 90% of the ratings; the other 10% enter with the schedule's first plain epochs. The
default schedule is two epochs longer for it (15 epochs, 0.03 × 0.88, where it was 13 of
0.03 × 0.85): MovieLens 100k u1..u5 0.9043 either way (0.9054 with the old schedule after
the trial's warm-up), and the final fit's 12 plain epochs cost less than the 3 AdaGrad and
10 plain it ran (docs/results.md, "The final fit starts from the chosen trial").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np

from recsys.data.split import split_off
from recsys.errors import TrainingError
from recsys.training.autoreg import HOLDOUT, MIN_RATINGS, REFERENCE, choose_reg, trial_params
from recsys.training.loop import IndexedRatings, Shared, train
from recsys.training.schedule import warmup_run

log = logging.getLogger(__name__)
#: What a short trial changes (``autoreg.trial_params``).
_SHORTENED = ("lr", "n_epochs", "lr_decay")


@dataclass
class WarmedUp:
    """The chosen trial's factors at the end of its warm-up, and the warm-up epochs'
    reports: where the final fit's schedule starts (``FactorizationEstimator.fit``)."""

    factors: object  # recsys.state.Factors
    history: list


def search_reg(estimator, ratings, reg_callback=None) -> tuple[float, list, WarmedUp | None]:
    """(γ, trials, warmed up) for ``estimator`` (a FactorizationEstimator with
    ``reg='auto'``) on ``ratings``: the ladder's choice from trial fits on ratings held
    out by its seed, and the chosen trial's factors after its warm-up (None where the
    trials have none); the reference, untried, below ``MIN_RATINGS`` ratings."""
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

    shared = Shared()  # every trial trains on the same ratings from the same start
    warmed: dict[float, WarmedUp] = {}  # γ: the trial's warm-up, for the best so far

    def scorer(trial: dict):
        def score(reg: float) -> float:
            config = replace(estimator._train_config(reg),
                             **{name: trial[name] for name in _SHORTENED})
            # with early stopping a trial stops on the share it is scored on, as every
            # trial does, so the comparison stays even
            valid = scored if config.early_stopping else None
            warmup = warmup_run(config.method, config.lr_schedule, config.warmup_epochs)
            result = train(config, fitting, valid, shared=shared, keep=warmup)
            error = result.factors.rmse(scored.users, scored.items, scored.values, lo, hi)
            log.info("reg auto: %g gives RMSE %.4f on the held-out share", reg, error)
            if reg_callback is not None:
                reg_callback(reg, error)
            if result.kept is not None and (not errors or error < min(errors.values())):
                warmed.clear()  # only the best trial's warm-up is kept
                warmed[reg] = WarmedUp(result.kept, result.history[:warmup])
            errors[reg] = error
            return error

        return score

    errors: dict[float, float] = {}
    short = trial_params(params, method)
    if short == params:
        reg, trials = choose_reg(scorer(params))
        return reg, trials, warmed.get(reg)
    try:
        reg, trials = choose_reg(scorer(short))
    except TrainingError:
        log.info("reg auto: a short trial diverged at lr %g; trying again with "
                 "full-length trials", short["lr"])
        warmed.clear()
        errors.clear()
        reg, trials = choose_reg(scorer(params))
    return reg, trials, warmed.get(reg)
