"""RankingMF: matrix factorization for top-N lists, fitted to the ranking objective.

Why: a model fitted to observed ratings alone learns how much a user likes what they chose
to rate, not what they choose; its top-N lists lose to "most popular" (MovieLens 100k:
NDCG@10 0.090 against 0.198). Every model that ranks well treats the pairs a user did not
choose as weak negatives (Hu et al. 2008; Cremonesi et al. 2010; Steck 2010). The loss and
its solver: ``recsys.kernels.cpu.wals``; the trainer: ``recsys.training.trainers``.

The model keeps the form mu + b_u + b_i + p_u·q_i (with mu and the biases 0), so predict,
recommend, save, load and serve need nothing new. The weight of the unobserved pairs is
given relative to the density of the chosen ones: per pair w0 = ``unobserved_weight`` ·
|O| / (users · items), so the unobserved pairs weigh, in total, ``unobserved_weight`` times
the number of chosen pairs, whatever the size of the catalogue (on MovieLens 100k the
default 18 gives w0 ≈ 0.51).
"""

from __future__ import annotations

import numpy as np

from recsys.errors import TrainingError
from recsys.models import params as P
from recsys.models.base import FactorModel, raise_unknown
from recsys.models.factorization import as_ratings
from recsys.models.fitted import new_state
from recsys.state import FitReport
from recsys.training.config import TrainConfig
from recsys.training.loop import IndexedRatings, train
from recsys.training.resources import (
    ensure_memory,
    factor_bytes,
    temporary,
    training_bytes,
    with_margin,
)


class RankingMF(FactorModel):
    """Implicit-feedback matrix factorization for top-N (the ranking objective).

    score_ui = p_u·q_i, fitted to L = Σ_O c (1 − s)² + w0 Σ_{not O} s² + Σ λ_r ‖x_r‖² with
    c = 1 + ``confidence``. The chosen pairs O are the ratings at or above ``threshold``
    (default 4); with ``threshold=None`` every pair in the data is chosen, with
    c = 1 + ``confidence`` · value (counts of plays, clicks or purchases). ``reg`` is
    scaled per row by the total weight of the row's loss terms (one value suits any data
    size); ``unobserved_weight`` is relative (see the module docstring); each epoch takes
    ``cg_steps`` conjugate-gradient steps on every user's and every item's row.

    ``predict`` gives the preference score clipped to [0, 1]; recommendations rank by the
    unclipped score; an unknown user gets the items the average user scores highest.
    """

    _PARAMS = ("n_factors", "n_epochs", "reg", "confidence", "unobserved_weight", "threshold",
               "cg_steps", "init_std", "seed", "dtype", "n_jobs")
    _PARAM_SPECS = {
        "n_factors": P.PARAMS["n_factors"].but(default=64),
        "n_epochs": P.PARAMS["n_epochs"].but(default=15),
        "reg": P.PARAMS["reg"].but(kind="float", default=0.02, expects="a finite number >= 0"),
        "init_std": P.PARAMS["init_std"].but(default=0.01),
    }
    _D = {**P.defaults(_PARAMS), **{n: s.default for n, s in _PARAM_SPECS.items()}}

    def __init__(self, n_factors: int = _D["n_factors"], n_epochs: int = _D["n_epochs"],
                 reg: float = _D["reg"], confidence: float = _D["confidence"],
                 unobserved_weight: float = _D["unobserved_weight"],
                 threshold: float | None = _D["threshold"], cg_steps: int = _D["cg_steps"],
                 init_std: float = _D["init_std"], seed: int = _D["seed"],
                 dtype: str = _D["dtype"], n_jobs: int | None = None):
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.reg = reg
        self.confidence = confidence
        self.unobserved_weight = unobserved_weight
        self.threshold = threshold
        self.cg_steps = cg_steps
        self.init_std = init_std
        self.seed = seed
        self.dtype = dtype
        self.n_jobs = n_jobs

    def chosen(self, values) -> tuple[np.ndarray, np.ndarray]:
        """(mask of the chosen pairs, their confidences c) for raw ratings or counts."""
        values = np.asarray(values, dtype=np.float64)
        if self.threshold is None:
            keep = values > 0
            return keep, 1.0 + float(self.confidence) * values[keep]
        keep = values >= float(self.threshold)
        return keep, np.full(int(keep.sum()), 1.0 + float(self.confidence))

    def fit(self, data, validation=None, callback=None, reg_callback=None):
        """Learn the factors from ``data`` (Ratings, DataFrame or path; every rating in it
        is left out of the user's recommendations). ``validation`` and ``reg_callback`` are
        accepted for the common interface and not used: the objective predicts
        preferences, not ratings, and its regularization is not searched.
        ``callback(EpochInfo)`` is called after every epoch (its train_rmse: of the scores
        of the chosen pairs against 1)."""
        self.check_params()
        ratings = as_ratings(data)
        if len(ratings) == 0:
            raise TrainingError("no ratings to train on")
        ensure_memory(self.memory_estimate(ratings),
                      f"fitting {len(ratings):,} ratings with {self.n_factors} factors")
        keep, conf = self.chosen(ratings.values)
        if not keep.any():
            raise TrainingError(f"no ratings at or above the threshold {self.threshold:g}")
        w0 = float(self.unobserved_weight) * int(keep.sum()) / (ratings.n_users *
                                                                 ratings.n_items)
        chosen = IndexedRatings(ratings.users[keep], ratings.items[keep],
                                conf.astype(np.float32), ratings.n_users, ratings.n_items)
        config = TrainConfig(
            method="ials", n_factors=int(self.n_factors), n_epochs=int(self.n_epochs),
            reg=float(self.reg), init_std=float(self.init_std), seed=int(self.seed),
            dtype=self.dtype, n_jobs=None if self.n_jobs is None else int(self.n_jobs),
            unobserved_weight=w0, cg_steps=int(self.cg_steps))
        result = train(config, chosen, None, callback)
        state = new_state(ratings, result.factors)
        state.rating_scale = (0.0, 1.0)
        state.unknown_user = result.factors.user_factors.mean(
            axis=0, dtype=np.float64).astype(state.dtype)
        self._set_fitted(state, FitReport(None, [], result.history, result.best_epoch,
                                          ratings.summary(), {"unobserved_weight": w0}))
        return self

    def memory_estimate(self, ratings, has_validation: bool = False) -> int:
        """Peak bytes ``fit(ratings)`` allocates (beyond ``ratings``), as ``fit`` checks
        before it starts: choosing the pairs (the values in float64, the mask, the
        confidences and the chosen ratings, kept through training) and the training
        (``recsys.training.resources``, method 'ials')."""
        n, u, i = len(ratings), ratings.n_users, ratings.n_items
        values = ratings.values
        n_chosen = int(np.count_nonzero(values > 0 if self.threshold is None
                                        else values >= float(self.threshold)))
        itemsize, k = np.dtype(self.dtype).itemsize, int(self.n_factors)
        kept = n + 8 * n_chosen + 12 * n_chosen  # the mask, the confidences, the pairs
        retained, values = temporary(8 * n)  # the values in float64
        kept += retained
        training = training_bytes(n_chosen, u, i, k, itemsize, "ials")
        state = factor_bytes(u, i, k, itemsize) + 4 * n + 8 * u
        return with_margin(max(values + kept, kept + training, kept + state))

    @property
    def unobserved_weight_(self) -> float:
        """w0, the weight of each pair not chosen in the fit."""
        self._fitted_state()
        return float(self.report_.fitted["unobserved_weight"])

    def fold_in_scale(self) -> tuple[float, float] | None:
        """The training ratings' range (not the (0, 1) scale of the preferences); from 0
        for counts of implicit events (no threshold), where 0 means not chosen."""
        summary = self.report_.summary or {}
        lo, hi = summary.get("min_rating"), summary.get("max_rating")
        if lo is None or hi is None:
            return None
        return (min(0.0, float(lo)) if self.threshold is None else float(lo)), float(hi)

    def fold_in(self, ratings, strict: bool = False):
        """(user_vector, 0) for a new user: the exact minimum of their row of the ranking
        loss, the items fixed (``recsys.models.foldin.ranking_fold_in``); items rated
        below the threshold count as not chosen."""
        from recsys.models.foldin import ranking_fold_in, ratings_arrays

        state = self._fitted_state()
        items, values = ratings_arrays(ratings)
        self._check_fold_in_ratings(items, values)
        idx = state.item_map.indices(items)
        if strict:
            raise_unknown(items[idx < 0], "item")
        known = idx >= 0
        keep, conf = self.chosen(values[known])
        w0 = self.unobserved_weight_
        penalty = float(self.reg) * (float(conf.sum()) + w0 * state.n_items)
        p = ranking_fold_in(state.factors.item_factors, idx[known][keep], conf, w0, penalty)
        return p.astype(state.dtype), state.dtype.type(0)
