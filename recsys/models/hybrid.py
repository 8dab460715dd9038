"""HybridMF: one model that predicts ratings and ranks, from the rating and the ranking
objectives side by side.

    s_ui = mu + b_u + b_i + p_u·q_i  +  β (p'_u·q'_i − c̄)

The first part is FunkSVD fitted to the observed ratings (``n_factors`` features, ``reg``);
the second is RankingMF fitted to the chosen pairs (``ranking_factors`` features); β is
``ranking_weight`` and c̄ the mean ranking score of the training ratings. Stacked as
P = [P_rating, β P_ranking], Q = [Q_rating, Q_ranking] and mu − β c̄, this is again the one
model form, so predict, recommend, save, load and serve need nothing new. On a rated pair
the ranking part scores about c̄, so the rating predictions move little; across the items
a user has not rated it lifts the ones the user is likely to choose.

Why this shape: pulling every unobserved pair toward a low rating in one set of factors
(Steck, KDD 2010) was measured too, with the same loss machinery; its frontier was worse
at every weight (MovieLens 100k u1..u5: NDCG@10 0.129 at RMSE 0.927, where the stacked
model reaches 0.23 at 0.920; docs/results.md, "Ranking").
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

#: Bytes of the float64 ranking user factors gathered at a time when stacking the parts.
_CHUNK_BYTES = 4 << 20


def _chunk_rows(k: int) -> int:
    return max(1, _CHUNK_BYTES // (8 * max(k, 1)))


class HybridMF(FactorModel):
    """Rating predictions and top-N lists from one model (see the module docstring).

    ``n_factors``, ``reg``: the rating part's (FunkSVD's other parameters at their
    defaults); ``ranking_factors``: the ranking part's (RankingMF's other parameters at
    their defaults); ``ranking_weight``: β, the weight of the ranking part (0: FunkSVD).
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
        factors, the ranking scores of the training pairs in float64, chunk by chunk)."""
        rating, ranking = self._parts()
        n, u, i = len(ratings), ratings.n_users, ratings.n_items
        itemsize = np.dtype(self.dtype).itemsize
        ka, kb = int(self.n_factors), int(self.ranking_factors)
        seen = 4 * n + 8 * u
        a = factor_bytes(u, i, ka, itemsize) + seen
        b = factor_bytes(u, i, kb, itemsize) + seen
        rows = min(n, _chunk_rows(kb))  # gathered in the dtype and in float64, each side
        stack = factor_bytes(u, i, ka + kb, itemsize) + 8 * n + rows * (kb * (2 * itemsize + 8)
                                                                         + 8)
        return max(rating.memory_estimate(ratings, has_validation),
                   a + ranking.memory_estimate(ratings), with_margin(a + b + stack))

    def _stack(self, rating: FunkSVD, ranking: RankingMF, ratings):
        a, b = rating.state_, ranking.state_
        beta = float(self.ranking_weight)
        fa, fb = a.factors, b.factors
        dots = np.empty(len(ratings), dtype=np.float64)  # p_u·q_i of the ranking part
        step = _chunk_rows(fb.user_factors.shape[1])
        for start in range(0, len(ratings), step):
            rows = slice(start, start + step)
            dots[rows] = np.einsum("nk,nk->n", fb.user_factors[ratings.users[rows]].astype(
                np.float64), fb.item_factors[ratings.items[rows]])
        choice = float(np.mean(dots))
        del dots
        dtype = fa.user_factors.dtype
        factors = Factors(dtype.type(float(fa.mu) - beta * choice), fa.user_bias, fa.item_bias,
                          np.hstack([fa.user_factors, (beta * fb.user_factors).astype(dtype)]),
                          np.hstack([fa.item_factors, fb.item_factors.astype(dtype)]))
        unknown = np.concatenate([np.zeros(fa.user_factors.shape[1], dtype=dtype),
                                  (beta * b.unknown_user).astype(dtype)])
        state = FactorState(factors, a.user_map, a.item_map, a.seen, a.rating_scale,
                            a.item_titles, a.lineage, unknown)
        r = rating.report_
        fitted = {"rating_factors": int(fa.user_factors.shape[1]), "choice_offset": choice,
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
        f, ka, beta = state.factors, int(fit["rating_factors"]), float(self.ranking_weight)
        items, values = ratings_arrays(ratings)
        self._check_fold_in_ratings(items, values)
        idx = state.item_map.indices(items)
        if strict:
            raise_unknown(items[idx < 0], "item")
        known = idx >= 0
        idx, values = idx[known], values[known]
        m = len(idx)
        mu_rating = float(f.mu) + beta * float(fit["choice_offset"])
        p_a, b = fold_in(f.item_factors[:, :ka], f.item_bias, mu_rating, idx, values,
                         float(self.reg_) * m, float(fit["rating_reg_bias"]) * m)
        chosen = values >= float(fit["ranking_threshold"])
        conf = np.full(int(chosen.sum()), 1.0 + float(fit["ranking_confidence"]))
        w0 = float(fit["unobserved_weight"])
        penalty = float(fit["ranking_reg"]) * (float(conf.sum()) + w0 * state.n_items)
        p_b = ranking_fold_in(f.item_factors[:, ka:], idx[chosen], conf, w0, penalty)
        return np.concatenate([p_a, beta * p_b]).astype(state.dtype), state.dtype.type(b)
