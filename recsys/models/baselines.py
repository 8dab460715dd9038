"""Baselines that any factor model must beat: the global mean and user + item biases.

``GlobalMean`` predicts mu, the mean training rating, for every pair.

``Biases`` predicts r̂_ui = mu + b_u + b_i, fitted one of two ways:

* ``method='damped'`` (Koren 2010, "Factor in the neighbors"): damped means, item biases
  first, then user biases on what the item biases leave,

      b_i = Σ_{u∈R(i)} (r_ui − mu) / (λ_i + |R(i)|)
      b_u = Σ_{i∈R(u)} (r_ui − mu − b_i) / (λ_u + |R(u)|)

  (λ pulls the bias of a rarely rated item or a light user towards 0);
* ``method='sgd'``: regularized least squares J = Σ e² + γ_b (b_u² + b_i²), minimized by
  the SGD kernel of ``recsys.kernels.cpu.sgd`` with zero latent features, i.e. the very
  update FunkSVD uses, restricted to the biases.

Both are factor models with k = 0 (float64), so they predict, recommend, fold in new
users, save and load like FunkSVD; they have no item factors, so no similar items.
"""

from __future__ import annotations

import numpy as np

from recsys.errors import TrainingError
from recsys.models import params as P
from recsys.models.base import FactorModel
from recsys.models.factorization import as_ratings
from recsys.models.fitted import new_state
from recsys.state import Factors, FitReport


class _Baseline(FactorModel):
    has_factors = False

    def _start(self, data):
        self.check_params()
        ratings = as_ratings(data)
        if len(ratings) == 0:
            raise TrainingError("no ratings to train on")
        mu = np.float64(ratings.values.mean(dtype=np.float64))
        factors = Factors(mu, np.zeros(ratings.n_users), np.zeros(ratings.n_items),
                          np.zeros((ratings.n_users, 0)), np.zeros((ratings.n_items, 0)))
        return ratings, factors

    def _finish(self, ratings, factors, history=()) -> None:
        self._set_fitted(new_state(ratings, factors),
                         FitReport(history=list(history), summary=ratings.summary()))


class GlobalMean(_Baseline):
    """r̂_ui = mu for every pair."""

    def fit(self, data, validation=None) -> GlobalMean:
        ratings, factors = self._start(data)
        self._finish(ratings, factors)
        return self

    def _fold_in_penalties(self, m: int):
        return None  # nothing is learned per user


class Biases(_Baseline):
    """r̂_ui = mu + b_u + b_i by damped means (``'damped'``) or SGD on J (``'sgd'``)."""

    _PARAMS = ("method", "user_damping", "item_damping", "reg_bias", "lr", "n_epochs", "seed")
    _PARAM_SPECS = {
        "method": P.PARAMS["method"].but(default="damped", choices=("damped", "sgd"),
                                         expects="'damped' or 'sgd'"),
        "reg_bias": P.PARAMS["reg_bias"].but(default=0.02, optional=False),
        "n_epochs": P.PARAMS["n_epochs"].but(default=20),
    }

    def __init__(self, method: str = "damped", user_damping: float = 15.0,
                 item_damping: float = 10.0, reg_bias: float = 0.02, lr: float = 0.005,
                 n_epochs: int = 20, seed: int = 0):
        self.method = method
        self.user_damping = user_damping
        self.item_damping = item_damping
        self.reg_bias = reg_bias
        self.lr = lr
        self.n_epochs = n_epochs
        self.seed = seed

    def fit(self, data, validation=None) -> Biases:
        ratings, factors = self._start(data)
        if self.method == "damped":
            self._fit_damped(ratings, factors)
            self._finish(ratings, factors)
        else:
            self._finish(ratings, factors, self._fit_sgd(ratings, factors))
        return self

    def _fold_in_penalties(self, m: int):
        if self.method == "damped":
            return 0.0, float(self.user_damping)
        return 0.0, float(self.reg_bias) * m

    def _fit_damped(self, ratings, factors) -> None:
        resid = ratings.values.astype(np.float64) - factors.mu
        n_i = np.bincount(ratings.items, minlength=ratings.n_items)
        factors.item_bias = np.bincount(ratings.items, resid, ratings.n_items) \
            / (self.item_damping + n_i)
        resid -= factors.item_bias[ratings.items]
        n_u = np.bincount(ratings.users, minlength=ratings.n_users)
        factors.user_bias = np.bincount(ratings.users, resid, ratings.n_users) \
            / (self.user_damping + n_u)

    def _fit_sgd(self, ratings, factors) -> list:
        from recsys.kernels.cpu.sgd import sgd_epoch

        rng = np.random.default_rng(self.seed)
        history = []
        for _ in range(int(self.n_epochs)):
            order = rng.permutation(len(ratings))
            sse = sgd_epoch(ratings.users[order], ratings.items[order],
                            ratings.values[order].astype(np.float64), factors.mu,
                            factors.user_bias, factors.item_bias, factors.user_factors,
                            factors.item_factors, float(self.lr), 0.0, float(self.reg_bias))
            history.append({"train_rmse": float(np.sqrt(sse / len(ratings)))})
        return history
