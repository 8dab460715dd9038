"""``reg='auto'``: the ladder that chooses the factor regularization on held-out ratings.

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
Too few ratings to tell the trials apart give the reference, untried.

**Where it starts.** Under a warm-up, the warm-up (trained once at the reference) is
scored on the held-out share before any trial, and where it already explains more than
``CLEAN_R2`` of those ratings' variance (a clean or dense signal, which wants less
shrinkage) the ladder starts one halving lower, at ``CLEAN_START``. The start changes
which γ are tried, not which wins, whenever the held-out RMSE falls and then rises along
the ladder (it did on every set measured); it saves the trial that the walk down from
the reference spends. Measured on 17 sets (2026-12-04, docs/results.md, "Where the ladder
starts"): MovieLens 100k u1..u5, ua, ub explain 0.31-0.33 and choose 0.065; generated
star ratings with noise 0.7-1.1 0.15-0.28, choosing 0.0325-0.065; the 1M and 10M
generated MovieLens-shaped sets 0.44 and 0.49, half-star ratings 0.40, noise 0.3 0.48
and the ground truth (σ 0.5) 0.56-0.57, all choosing 0.016 or 0.008. On those the
ladder now runs 3 trials where it ran 4.

Trials need to rank the γ, not to be good models: a trial of plain blocked SGD (constant
or decaying learning rate) runs ``TRIAL_SPEEDUP`` times the learning rate for that many
times fewer epochs, the same total step (under decay the per-epoch factor is raised to the
same power). Measured on MovieLens 100k u1..u5, a 1M-rating generated MovieLens-shaped set
and the ground-truth check (rank 10, σ 0.5), the short trials chose the same γ as
full-length ones every time, so the final model is unchanged (under constant steps, and
again under the decay schedule: 0.065 on u1..u5, 0.0325 on the 1M set, 0.008 on a rank-10,
σ 0.5 set). A warm-up (AdaGrad epochs first, ``recsys.training.schedule``) is kept whole:
it is what gets the factors off their small start (one warm-up shared by all trials moved
the 1M set's choice to 0.016; a one-epoch warm-up at 0.3 changed it on 4 of 7 MovieLens
100k training sets; docs/results.md). On MovieLens-like data the ladder stops after
three or four trials. The warm-up is trained once, at the reference, and every trial
and the final fit go on from it (``recsys.models.regsearch``): with the defaults each
trial then runs 3 epochs on 90% of the ratings, and the final fit the 12 plain epochs
after the warm-up on all of them. If a short trial diverges at the larger step, the
ladder is run again with full-length trials.

**On half the users.** Where the trials have at least ``SAMPLE_MIN_RATINGS`` ratings
and there are at least ``SAMPLE_USERS_PER_ITEM`` users per item (MovieLens 10M and 20M,
Netflix; not MovieLens 100k, 1M or 25M), the trials after the warm-up train on all the
trial ratings of half the users, drawn by the seed, and are scored on those users'
held-out ratings (``user_share``). Each user row keeps its density, and the items, much
denser than the users there, keep at least twice the average user's ratings. On the 10M
generated set the trials then take half the time and choose the same γ (0.01625,
margin 0.0005 against 0.008 where it was 0.0008); the 100M Netflix-shaped set chose the
same γ too (docs/results.md, "Trials on half the users").

The estimator holds out the ratings and fits the trials; this module only decides which γ
to try next, so it needs no estimator.
"""

from __future__ import annotations

from collections.abc import Callable

from recsys.training.schedule import warmup_run

#: The tuned factor regularization of MovieLens 100k, where the ladder starts.
REFERENCE = 0.065
LOWEST = REFERENCE / 8
HIGHEST = REFERENCE * 4
#: Share of the training ratings held out to score each γ.
HOLDOUT = 0.1
#: Below this many training ratings the reference is used without a search: the held-out
#: share would be too small to tell the trials apart.
MIN_RATINGS = 2_000
#: Learning-rate multiple (and epoch divisor) of a trial of constant-step SGD.
TRIAL_SPEEDUP = 4
#: The share of the held-out ratings' variance the warm-up must explain for the ladder to
#: start at ``CLEAN_START``; and that start.
CLEAN_R2 = 0.4
CLEAN_START = REFERENCE / 2


#: Trials on a share of the users (with all their ratings) where the trials' ratings
#: number at least ``SAMPLE_MIN_RATINGS`` and there are at least ``SAMPLE_USERS_PER_ITEM``
#: users per item; that share.
SAMPLE_MIN_RATINGS = 2_000_000
SAMPLE_USERS_PER_ITEM = 4
SAMPLE_SHARE = 0.5


def user_share(n_ratings: int, n_users: int, n_items: int) -> float:
    """The share of the users whose ratings the trials train on (1: all of them).

    Half, where the trials have at least ``SAMPLE_MIN_RATINGS`` ratings and at least
    ``SAMPLE_USERS_PER_ITEM`` users per item: a sampled user keeps all of its ratings, so
    the user rows, the sparse side whose shrinkage γ mostly answers to, are as dense as
    before, and the items, with n_users / n_items times the ratings of the average user,
    still have at least twice as many after halving. Ratings sampled at random instead
    thin both sides and move the choice (docs/results.md, "Cheaper search, fewer
    epochs"); a sample of the users kept it on every set measured ("Trials on half the
    users"), at half the trials' cost.
    """
    if n_ratings >= SAMPLE_MIN_RATINGS and n_users >= SAMPLE_USERS_PER_ITEM * n_items:
        return SAMPLE_SHARE
    return 1.0


def ladder_start(explained: float | None) -> float:
    """Where the ladder starts, given the share of the held-out ratings' variance the
    warm-up explains (1 − MSE / variance; None: no warm-up, or no variance to explain)."""
    return CLEAN_START if explained is not None and explained > CLEAN_R2 else REFERENCE


def trial_params(params: dict, method: str) -> dict:
    """The parameters of a short trial fit of plain blocked SGD (``method``): ``params``
    with ``TRIAL_SPEEDUP`` (s) times the learning rate for s times fewer epochs, the same
    total step. Under the ``decay`` schedule the per-epoch factor d becomes d^s too, so
    trial epoch t steps s·λ·d^(s·t), what s full-length epochs from epoch s·t would take
    together. A warm-up (``warmup_epochs`` AdaGrad epochs first) is kept as it is: its
    steps adapt per row already, and it is what gets the factors off their small start;
    only the epochs after it are shortened. Any other method or schedule (whose step or
    epochs mean something else) unchanged."""
    schedule = params.get("lr_schedule")
    if method != "sgd" or schedule not in ("constant", "decay"):
        return dict(params)
    warmup = min(warmup_run(method, schedule, params.get("warmup_epochs")),
                 int(params["n_epochs"]))
    after = int(params["n_epochs"]) - warmup
    epochs = max(1, -(-after // TRIAL_SPEEDUP)) if after else 0
    short = {**params, "lr": float(params["lr"]) * TRIAL_SPEEDUP, "n_epochs": warmup + epochs}
    if schedule == "decay":
        short["lr_decay"] = float(params["lr_decay"]) ** TRIAL_SPEEDUP
    return short


def choose_reg(score: Callable[[float], float], start: float = REFERENCE
               ) -> tuple[float, list[tuple[float, float]]]:
    """(γ, trials): the γ with the lowest ``score(γ)`` (held-out RMSE) on the ladder from
    ``start`` (a rung of it: REFERENCE times a power of 2 within LOWEST..HIGHEST), and
    every (γ, score) tried, in order. Ties go to the γ tried first."""
    trials: dict[float, float] = {}

    def trial(reg: float) -> float:
        trials[reg] = score(reg)
        return trials[reg]

    best = trial(start)
    for step in (0.5, 2.0):
        reg = start * step
        while LOWEST <= reg <= HIGHEST:
            error = trial(reg)
            if not error < best:
                break
            best = error
            reg *= step
        if min(trials, key=trials.get) != start:
            break  # lowering helped: no need to try raising
    chosen = min(trials, key=trials.get)
    return float(chosen), [(float(r), float(e)) for r, e in trials.items()]


def is_auto(reg) -> bool:
    return isinstance(reg, str) and reg == "auto"
