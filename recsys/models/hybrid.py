"""HybridMF: one model with two heads, rating predictions from the rating objective and
top-N lists from the ranking objective.

    predict:    r̂_ui = mu + b_u + b_i + p_u·q_i
    recommend:  s_ui = r̂_ui + β p'_u·q'_i,     β = ranking_weight × σ

The rating part is FunkSVD fitted to the observed ratings (``n_factors`` features,
``reg``); the ranking part is RankingMF fitted to the chosen pairs (``ranking_factors``
features); σ is the standard deviation of the training ratings, so that ``ranking_weight``
means the same on a 1-5 scale as on a 1-10 one (the ranking scores run from about 0, not
chosen, to 1, chosen). Stacked as P = [P_rating, β P_ranking], Q = [Q_rating, Q_ranking]
this is the one model form, so recommend, recommend_many, fold-in, save, load and serve
need nothing new; predictions use the leading ``n_factors`` columns alone
(``FactorState.rating_factors``), so they are FunkSVD's exactly.

Why two heads: one set of scores cannot do both. Adding the ranking part to the
predicted ratings costs RMSE as fast as it gains NDCG, and pulling every unobserved pair
toward a low rating in one set of factors (Steck, KDD 2010) was worse still (MovieLens
100k u1..u5, docs/results.md, "Ranking"). In the lists, the rating part orders what the
ranking part scores alike: between two items a user is as likely to choose, the one
they would rate higher comes first.
"""

from __future__ import annotations

import numpy as np

from recsys.models import params as P
from recsys.models.base import FactorModel, raise_unknown
from recsys.models.factorization import as_ratings
from recsys.models.funksvd import FunkSVD
from recsys.models.ranking import RankingMF
from recsys.state import Factors, FactorState, FitReport
from recsys.training.resources import ensure_memory, factor_bytes, with_margin


class HybridMF(FactorModel):
    """Rating predictions and top-N lists from one model (see the module docstring).

    ``n_factors``, ``reg``: the rating part's (FunkSVD's other parameters at their
    defaults); ``ranking_factors``: the ranking part's (RankingMF's other parameters at
    their defaults); ``ranking_weight``: the weight of the ranking part in the
    recommendation scores, in standard deviations of the training ratings (0: FunkSVD's
    lists). Predictions are the rating part's whatever the weight.
    """

    _PARAMS = ("n_factors", "reg", "ranking_factors", "ranking_weight", "seed", "dtype",
               "n_jobs")
    _D = P.defaults(_PARAMS)

    def __init__(self, n_factors: int = _D["n_factors"], reg: float | str = _D["reg"],
                 ranking_factors: int = _D["ranking_factors"],
                 ranking_weight: float = _D["ranking_weight"], seed: int = _D["seed"],
                 dtype: str = _D["dtype"], n_jobs: int | None = None):
        self.n_factors = n_factors
        self.reg = reg
        self.ranking_factors = ranking_factors
        self.ranking_weight = ranking_weight
        self.seed = seed
        self.dtype = dtype
        self.n_jobs = n_jobs

    def _parts(self) -> tuple[FunkSVD, RankingMF]:
        common = dict(seed=self.seed, dtype=self.dtype, n_jobs=self.n_jobs)
        return (FunkSVD(n_factors=self.n_factors, reg=self.reg, **common),
                RankingMF(n_factors=self.ranking_factors, **common))

    def fit(self, data, validation=None, callback=None, reg_callback=None):
        """Fit both parts on ``data``; ``validation``, ``callback`` and ``reg_callback`` go
        to the rating part's fit (whose epochs are reported)."""
        self.check_params()
        ratings = as_ratings(data)
        rating, ranking = self._parts()
        ensure_memory(self.memory_estimate(ratings, validation is not None),
                      f"fitting {len(ratings):,} ratings with "
                      f"{self.n_factors} + {self.ranking_factors} factors")

        def report(info):
            self.reg_, self.reg_trials_ = rating.reg_, rating.reg_trials_
            if callback is not None:
                callback(info)

        rating.fit(ratings, validation=validation, callback=report, reg_callback=reg_callback)
        ranking.fit(ratings)
        self._set_fitted(*self._stack(rating, ranking, ratings))
        return self

    def memory_estimate(self, ratings, has_validation: bool = False) -> int:
        """Peak bytes ``fit(ratings)`` allocates (beyond ``ratings``): the rating part's
        fit, the ranking part's with the rating part kept, and stacking both (the new
        factors)."""
        rating, ranking = self._parts()
        n, u, i = len(ratings), ratings.n_users, ratings.n_items
        itemsize = np.dtype(self.dtype).itemsize
        ka, kb = int(self.n_factors), int(self.ranking_factors)
        seen = 4 * n + 8 * u
        a = factor_bytes(u, i, ka, itemsize) + seen
        b = factor_bytes(u, i, kb, itemsize) + seen
        stack = factor_bytes(u, i, ka + kb, itemsize)
        return max(rating.memory_estimate(ratings, has_validation),
                   a + ranking.memory_estimate(ratings), with_margin(a + b + stack))

    def _stack(self, rating: FunkSVD, ranking: RankingMF, ratings):
        a, b = rating.state_, ranking.state_
        beta = float(self.ranking_weight) * rating_spread(ratings.values)
        fa, fb = a.factors, b.factors
        dtype = fa.user_factors.dtype
        factors = Factors(fa.mu, fa.user_bias, fa.item_bias,
                          np.hstack([fa.user_factors, (beta * fb.user_factors).astype(dtype)]),
                          np.hstack([fa.item_factors, fb.item_factors.astype(dtype)]))
        unknown = np.concatenate([np.zeros(fa.user_factors.shape[1], dtype=dtype),
                                  (beta * b.unknown_user).astype(dtype)])
        state = FactorState(factors, a.user_map, a.item_map, a.seen, a.rating_scale,
                            a.item_titles, a.lineage, unknown, fa.user_factors.shape[1])
        r = rating.report_
        fitted = {"rating_factors": int(fa.user_factors.shape[1]), "ranking_scale": beta,
                  "rating_reg_bias": float(rating.reg_bias),
                  "ranking_reg": float(ranking.reg), "ranking_threshold": float(ranking.threshold),
                  "ranking_confidence": float(ranking.confidence),
                  "unobserved_weight": ranking.unobserved_weight_}
        return state, FitReport(r.reg, r.reg_trials, r.history, r.best_epoch, r.summary, fitted)

    def _set_fitted(self, state, report) -> None:
        super()._set_fitted(state, report)
        self.reg_, self.reg_trials_ = report.reg, report.reg_trials

    def fold_in(self, ratings, strict: bool = False):
        """(user_vector, user_bias) for a new user: each part's own fold-in (the rating
        part's regularized least squares, the ranking part's exact row minimum), stacked."""
        from recsys.models.foldin import fold_in, ranking_fold_in, ratings_arrays

        state = self._fitted_state()
        fit = self.report_.fitted
        f, ka = state.factors, int(fit["rating_factors"])
        # files of format 2 stacked one set of scores: β was the weight itself, and mu was
        # shifted by β times the mean ranking score of the training pairs
        beta = float(fit.get("ranking_scale", self.ranking_weight))
        items, values = ratings_arrays(ratings)
        self._check_fold_in_ratings(items, values)
        idx = state.item_map.indices(items)
        if strict:
            raise_unknown(items[idx < 0], "item")
        known = idx >= 0
        idx, values = idx[known], values[known]
        m = len(idx)
        mu_rating = float(f.mu) + beta * float(fit.get("choice_offset", 0.0))
        p_a, b = fold_in(f.item_factors[:, :ka], f.item_bias, mu_rating, idx, values,
                         float(self.reg_) * m, float(fit["rating_reg_bias"]) * m)
        chosen = values >= float(fit["ranking_threshold"])
        conf = np.full(int(chosen.sum()), 1.0 + float(fit["ranking_confidence"]))
        w0 = float(fit["unobserved_weight"])
        penalty = float(fit["ranking_reg"]) * (float(conf.sum()) + w0 * state.n_items)
        p_b = ranking_fold_in(f.item_factors[:, ka:], idx[chosen], conf, w0, penalty)
        return np.concatenate([p_a, beta * p_b]).astype(state.dtype), state.dtype.type(b)


def rating_spread(values) -> float:
    """σ of the ratings, in float64 (1 where they do not vary: events without ratings)."""
    sd = float(np.std(np.asarray(values, dtype=np.float64))) if len(values) else 0.0
    return sd if np.isfinite(sd) and sd > 0 else 1.0
