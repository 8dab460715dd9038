"""Baselines that any factor model must beat: the global mean and user + item biases.

``GlobalMean`` predicts mu, the mean training rating, for every pair.

``Biases`` predicts r̂_ui = mu + b_u + b_i, fitted one of two ways:

* ``method='damped'`` (Koren 2010, "Factor in the neighbors"): damped means, item biases
  first, then user biases on what the item biases leave,

      b_i = Σ_{u∈R(i)} (r_ui − mu) / (λ_i + |R(i)|)
      b_u = Σ_{i∈R(u)} (r_ui − mu − b_i) / (λ_u + |R(u)|)

  (λ pulls the bias of a rarely rated item or a light user towards 0);
* ``method='sgd'``: regularized least squares J = Σ e² + γ_b (b_u² + b_i²), minimized by
  the SGD kernel of ``recsys.kernels.cpu.sgd`` with zero latent features, i.e. the very update
  FunkSVD uses, restricted to the biases.

Both share FunkSVD's interface where evaluation needs it: ``fit``, ``predict`` (raw ids,
clipped to the training scale, unknown ids fall back to 0 bias), ``recommend_many``,
``get_params``, ``user_map_`` and ``item_map_``.
"""

from __future__ import annotations

import numpy as np

from recsys.models.funksvd import _seen_index, as_ratings
from recsys.models.params import Params


class _Baseline(Params):
    def _start(self, data):
        ratings = as_ratings(data)
        if len(ratings) == 0:
            raise ValueError("no ratings to train on")
        self.mu_ = float(ratings.values.mean(dtype=np.float64))
        self.user_bias_ = np.zeros(ratings.n_users)
        self.item_bias_ = np.zeros(ratings.n_items)
        self.user_map_, self.item_map_ = ratings.user_map, ratings.item_map
        self.rating_scale_ = (float(ratings.values.min()), float(ratings.values.max()))
        self.seen_ = _seen_index(ratings.users, ratings.items, ratings.n_users)
        return ratings

    def _require_fitted(self) -> None:
        if not hasattr(self, "mu_"):
            from recsys.errors import ModelError

            raise ModelError(f"this {type(self).__name__} is not fitted yet; call fit() first")

    def predict(self, users, items) -> np.ndarray:
        """mu + b_u + b_i for raw ids (0 for an unknown id's bias), clipped to the scale."""
        self._require_fitted()
        u = self.user_map_.indices(np.atleast_1d(np.asarray(users)))
        i = self.item_map_.indices(np.atleast_1d(np.asarray(items)))
        if u.shape != i.shape:
            raise ValueError("users and items must have the same length")
        pred = self.mu_ + np.where(u >= 0, self.user_bias_[np.maximum(u, 0)], 0.0) \
            + np.where(i >= 0, self.item_bias_[np.maximum(i, 0)], 0.0)
        return np.clip(pred, *self.rating_scale_)

    def recommend_many(self, users, n: int = 10, exclude_seen: bool = True):
        """Top-``n`` items per raw user by mu + b_u + b_i: (ids, scores) of shape (len, n)."""
        from recsys.kernels.cpu.predict import top_n_rows

        self._require_fitted()
        rows = self.user_map_.indices(np.atleast_1d(np.asarray(users)))
        n_items = len(self.item_map_)
        n_out = min(int(n), n_items)
        scores = np.empty((len(rows), n_items))
        scores[:] = self.mu_ + self.item_bias_
        scores += np.where(rows >= 0, self.user_bias_[np.maximum(rows, 0)], 0.0)[:, None]
        out_idx = np.full((len(rows), n_out), -1, dtype=np.int64)
        out_score = np.full((len(rows), n_out), -np.inf)
        indptr, indices = self.seen_
        top_n_rows(scores, n_out, rows, indptr, indices, exclude_seen, out_idx, out_score)
        ids = self.item_map_.ids
        return np.where(out_idx >= 0, ids[np.maximum(out_idx, 0)], ids[0]), out_score


class GlobalMean(_Baseline):
    """r̂_ui = mu for every pair."""

    def fit(self, data, validation=None) -> GlobalMean:
        self._start(data)
        return self


class Biases(_Baseline):
    """r̂_ui = mu + b_u + b_i by damped means (``'damped'``) or SGD on J (``'sgd'``)."""

    _PARAMS = ("method", "user_damping", "item_damping", "reg_bias", "lr", "n_epochs", "seed")

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
        if self.method not in ("damped", "sgd"):
            raise ValueError(f"method must be 'damped' or 'sgd', not {self.method!r}")
        ratings = self._start(data)
        if self.method == "damped":
            self._fit_damped(ratings)
        else:
            self._fit_sgd(ratings)
        return self

    def _fit_damped(self, ratings) -> None:
        resid = ratings.values.astype(np.float64) - self.mu_
        n_i = np.bincount(ratings.items, minlength=ratings.n_items)
        self.item_bias_ = np.bincount(ratings.items, resid, ratings.n_items) \
            / (self.item_damping + n_i)
        resid -= self.item_bias_[ratings.items]
        n_u = np.bincount(ratings.users, minlength=ratings.n_users)
        self.user_bias_ = np.bincount(ratings.users, resid, ratings.n_users) \
            / (self.user_damping + n_u)

    def _fit_sgd(self, ratings) -> None:
        from recsys.kernels.cpu.sgd import sgd_epoch

        rng = np.random.default_rng(self.seed)
        bu, bi = self.user_bias_, self.item_bias_
        none_u = np.zeros((ratings.n_users, 0))
        none_i = np.zeros((ratings.n_items, 0))
        self.history_ = []
        for _ in range(int(self.n_epochs)):
            order = rng.permutation(len(ratings))
            sse = sgd_epoch(ratings.users[order], ratings.items[order],
                            ratings.values[order].astype(np.float64), self.mu_, bu, bi,
                            none_u, none_i, float(self.lr), 0.0, float(self.reg_bias))
            self.history_.append({"train_rmse": float(np.sqrt(sse / len(ratings)))})
