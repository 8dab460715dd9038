"""``reg='auto'``: choose the factor regularization on held-out ratings.

Why: the best γ depends on the data. Per-rating regularization shrinks every learned
direction of the rating matrix by about γ (in rating units per rating), whatever the amount
of data, so a γ that suits noisy star ratings (MovieLens 100k: 0.065, with residual noise
near 0.9) over-shrinks a clean or dense low-rank signal, and one that suits clean data lets
noisy data overfit. Neither the noise level nor the strength of the signal is known before
training, so they are measured: a share of the training ratings is held out, models with
the other settings unchanged are trained at γ on a ladder of halvings and doublings of the
reference, and the γ with the lowest held-out RMSE is used to train on all the ratings.

The ladder starts at ``REFERENCE``, halves while that helps (down to REFERENCE / 8), and
only if the first halving did not help, doubles while that helps (up to REFERENCE · 4).
On MovieLens-like data it stops after three trials at the reference; the cost is then
about 3.7 fits. Too few ratings to tell the trials apart give the reference, untried.
"""

from __future__ import annotations

from collections.abc import Callable

from recsys.data.ratings import Ratings
from recsys.evaluation.metrics import rmse
from recsys.models.defaults import REG_REFERENCE

#: Share of the training ratings held out to score each γ.
HOLDOUT = 0.1
#: Below this many training ratings the reference is used without a search: the held-out
#: share would be too small to tell the trials apart.
MIN_RATINGS = 2_000
REFERENCE = REG_REFERENCE
LOWEST = REFERENCE / 8
HIGHEST = REFERENCE * 4


def choose_reg(model, ratings: Ratings,
               report: Callable[[float, float], None] | None = None
               ) -> tuple[float, list[tuple[float, float]]]:
    """(γ, trials): the γ with the lowest held-out RMSE and every (γ, RMSE) tried, in order.

    ``model`` supplies every other parameter (the seed chooses the held-out ratings too);
    ``report(γ, rmse)`` is called after each trial.
    """
    if len(ratings) < MIN_RATINGS:
        return REFERENCE, []
    from recsys.models.funksvd import split_off

    rest, held = split_off(ratings, HOLDOUT, model.seed, stream=2)
    params = dict(model.get_params())
    trials: dict[float, float] = {}

    def score(reg: float) -> float:
        trial = type(model)(**{**params, "reg": reg}).fit(rest)
        trials[reg] = rmse(held.values, trial.predict(held.raw_users, held.raw_items))
        if report is not None:
            report(reg, trials[reg])
        return trials[reg]

    best = score(REFERENCE)
    for step in (0.5, 2.0):
        reg = REFERENCE * step
        while LOWEST <= reg <= HIGHEST:
            error = score(reg)
            if not error < best:
                break
            best = error
            reg *= step
        if min(trials, key=trials.get) != REFERENCE:
            break  # lowering helped: no need to try raising
    chosen = min(trials, key=trials.get)
    return float(chosen), [(float(r), float(e)) for r, e in trials.items()]


def is_auto(reg) -> bool:
    return isinstance(reg, str) and reg == "auto"

