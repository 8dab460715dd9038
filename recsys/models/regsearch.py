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
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from recsys.data.split import split_off
from recsys.errors import TrainingError
from recsys.training.autoreg import HOLDOUT, MIN_RATINGS, REFERENCE, choose_reg, trial_params
from recsys.training.loop import IndexedRatings, Shared, train

log = logging.getLogger(__name__)
#: What a short trial changes (``autoreg.trial_params``).
_SHORTENED = ("lr", "n_epochs", "lr_decay")


def search_reg(estimator, ratings, reg_callback=None) -> tuple[float, list]:
    """(γ, trials) for ``estimator`` (a FactorizationEstimator with ``reg='auto'``) on
    ``ratings``: the ladder's choice from trial fits on ratings held out by its seed;
    the reference, untried, below ``MIN_RATINGS`` ratings."""
    if len(ratings) < MIN_RATINGS:
        return REFERENCE, []
    rest, held = split_off(ratings, HOLDOUT, int(estimator.seed), stream=2)
    fitting = IndexedRatings.of(rest)
    # both sides keep the id maps, so the held-out indices are the trials' own
    scored = IndexedRatings(held.users, held.items, held.values.astype(np.float64),
                            rest.n_users, rest.n_items)
    lo, hi = float(rest.values.min()), float(rest.values.max())
    params = estimator.get_params()
    method = estimator._METHOD or params.get("method", "sgd")

    shared = Shared()  # every trial trains on the same ratings from the same start

    def scorer(trial: dict):
        def score(reg: float) -> float:
            config = replace(estimator._train_config(reg),
                             **{name: trial[name] for name in _SHORTENED})
            # with early stopping a trial stops on the share it is scored on, as every
            # trial does, so the comparison stays even
            valid = scored if config.early_stopping else None
            factors = train(config, fitting, valid, shared=shared).factors
            error = factors.rmse(scored.users, scored.items, scored.values, lo, hi)
            log.info("reg auto: %g gives RMSE %.4f on the held-out share", reg, error)
            if reg_callback is not None:
                reg_callback(reg, error)
            return error

        return score

    short = trial_params(params, method)
    if short == params:
        return choose_reg(scorer(params))
    try:
        return choose_reg(scorer(short))
    except TrainingError:
        log.info("reg auto: a short trial diverged at lr %g; trying again with "
                 "full-length trials", short["lr"])
        return choose_reg(scorer(params))
