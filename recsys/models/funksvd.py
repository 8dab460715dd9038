"""The FunkSVD estimator: biased matrix factorization trained by SGD, scikit-learn style.

Hyperparameters are stored verbatim by ``__init__`` and checked by ``fit``; learned state
lives in attributes with a trailing underscore. Raw ids are used at every public method;
indices only inside. The update rule itself is in ``recsys.kernels.cpu.sgd``.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.data.ratings import Ratings
from recsys.errors import ModelError, TrainingError, UnknownIdError
from recsys.models import defaults
from recsys.models.params import Params
from recsys.training.resources import ensure_memory, training_bytes

_DTYPES = {"float32": np.float32, "float64": np.float64}
#: Per-block factor rows are kept near this size so a block's rows stay in cache.
_BLOCK_BYTES = 1 << 20
#: An epoch whose training RMSE exceeds this multiple of the rating range has diverged.
_DIVERGED = 1e3


@dataclass
class EpochInfo:
    """What one epoch reports: passed to the ``callback`` of ``fit`` and kept in history_."""

    epoch: int
    train_rmse: float
    valid_rmse: float | None
    seconds: float
    lr: float | None = None

    def as_dict(self) -> dict:
        return {"epoch": self.epoch, "train_rmse": self.train_rmse,
                "valid_rmse": self.valid_rmse, "seconds": self.seconds, "lr": self.lr}


def as_ratings(data, **read_options) -> Ratings:
    """Accept a Ratings, a DataFrame (user, item, rating[, timestamp]) or a file path."""
    if isinstance(data, Ratings):
        return data
    if isinstance(data, pd.DataFrame):
        return Ratings.from_dataframe(data)
    if isinstance(data, (str, os.PathLike)):
        from recsys.data.readers import read_ratings

        return read_ratings(data, **read_options)
    raise TypeError(f"expected Ratings, a DataFrame or a path, not {type(data).__name__}")


def default_jobs() -> int:
    import numba

    return int(numba.config.NUMBA_NUM_THREADS)


class FunkSVD(Params):
    """Biased Funk-SVD: r̂_ui = mu + b_u + b_i + p_u·q_i, fitted by stochastic gradient descent.

    Parameters
    ----------
    n_factors : latent features k.
    n_epochs : passes over the training ratings.
    lr : learning rate λ.
    reg : regularization γ of the factors, or 'auto' (default): chosen on 10% of the
        training ratings held out, from a ladder around the MovieLens-tuned 0.065
        (``recsys.training.autoreg``); costs about 3.7 fits, so pass a number to skip it. The γ used
        is ``reg_`` after fitting, every trial in ``reg_trials_``.
    reg_bias : regularization of the biases (None: same as the factors' γ).
    init_std : standard deviation of the normal initial factors (biases start at 0).
    seed : seed of every random choice (initial factors, block assignment, visiting order).
    dtype : 'float32' (default) or 'float64' factors.
    n_jobs : threads (None: all cores). The model does not depend on it, bit for bit.
    grid : ratings are grouped into grid × grid blocks (None: chosen from the sizes).
    method : 'sgd' (blocked SGD, default), 'funk' (Funk's one feature at a time, n_epochs
        passes per feature, clipped predictions), 'gd' (full-batch gradient descent) or
        'svdpp' (SVD++ with implicit feedback, Koren 2008, whose implicit part is folded
        into the user factors after training, so the fitted model keeps the plain form);
        see ``recsys.training.trainers``.
    lr_schedule : 'constant', 'decay' (λ·lr_decay^epoch) or 'bold' (bold driver); see
        ``recsys.training.schedule``.
    lr_decay : factor per epoch of the 'decay' schedule.
    early_stopping : stop after this many epochs (features, for 'funk') without a better
        validation RMSE and restore the best epoch's parameters (0: off). Without a
        ``validation`` set, 5% of the training ratings are held out for it.
    reg_implicit : regularization γ_y of the implicit item factors of 'svdpp' (None: same
        as ``reg``); ignored by the other methods.

    Predictions are clipped to the rating scale seen in training. An unknown user falls
    back to mu + b_i, an unknown item to mu + b_u, and both unknown to mu (unless
    ``strict``).
    """

    def __init__(self, n_factors: int = defaults.N_FACTORS, n_epochs: int = defaults.N_EPOCHS,
                 lr: float = defaults.LR, reg: float | str = defaults.REG,
                 reg_bias: float | None = defaults.REG_BIAS, init_std: float = defaults.INIT_STD,
                 seed: int = defaults.SEED, dtype: str = defaults.DTYPE,
                 n_jobs: int | None = None, grid: int | None = None,
                 method: str = defaults.METHOD, lr_schedule: str = defaults.LR_SCHEDULE,
                 lr_decay: float = defaults.LR_DECAY,
                 early_stopping: int = defaults.EARLY_STOPPING,
                 reg_implicit: float | None = defaults.REG_IMPLICIT):
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.lr = lr
        self.reg = reg
        self.reg_bias = reg_bias
        self.init_std = init_std
        self.seed = seed
        self.dtype = dtype
        self.n_jobs = n_jobs
        self.grid = grid
        self.method = method
        self.lr_schedule = lr_schedule
        self.lr_decay = lr_decay
        self.early_stopping = early_stopping
        self.reg_implicit = reg_implicit

    # ------------------------------------------------------------------ sklearn protocol

    _PARAMS = ("n_factors", "n_epochs", "lr", "reg", "reg_bias", "init_std", "seed", "dtype",
               "n_jobs", "grid", "method", "lr_schedule", "lr_decay", "early_stopping",
               "reg_implicit")

    def _check_params(self) -> None:
        def need(ok, message):
            if not ok:
                raise ValueError(message)

        need(isinstance(self.n_factors, (int, np.integer)) and self.n_factors >= 1,
             f"n_factors must be a positive integer, not {self.n_factors!r}")
        need(isinstance(self.n_epochs, (int, np.integer)) and self.n_epochs >= 0,
             f"n_epochs must be a non-negative integer, not {self.n_epochs!r}")
        from recsys.training.autoreg import is_auto

        need(is_auto(self.reg) or (isinstance(self.reg, (int, float, np.floating))
                                   and not isinstance(self.reg, bool)
                                   and math.isfinite(self.reg) and self.reg >= 0),
             f"reg must be 'auto' or a finite number >= 0, not {self.reg!r}")
        for name in ("lr", "init_std"):
            value = getattr(self, name)
            need(isinstance(value, (int, float, np.floating)) and math.isfinite(value)
                 and value >= 0, f"{name} must be a finite number >= 0, not {value!r}")
        need(self.reg_bias is None or (math.isfinite(self.reg_bias) and self.reg_bias >= 0),
             f"reg_bias must be a finite number >= 0, not {self.reg_bias!r}")
        need(self.reg_implicit is None
             or (math.isfinite(self.reg_implicit) and self.reg_implicit >= 0),
             f"reg_implicit must be a finite number >= 0, not {self.reg_implicit!r}")
        need(self.dtype in _DTYPES, f"dtype must be 'float32' or 'float64', not {self.dtype!r}")
        need(self.n_jobs is None or (isinstance(self.n_jobs, (int, np.integer))
                                     and self.n_jobs >= 1),
             f"n_jobs must be a positive integer or None, not {self.n_jobs!r}")
        need(self.grid is None or (isinstance(self.grid, (int, np.integer)) and self.grid >= 1),
             f"grid must be a positive integer or None, not {self.grid!r}")
        need(isinstance(self.seed, (int, np.integer)) and self.seed >= 0,
             f"seed must be a non-negative integer, not {self.seed!r}")
        from recsys.training.schedule import SCHEDULES
        from recsys.training.trainers import METHODS

        need(self.method in METHODS,
             f"method must be one of {', '.join(METHODS)}, not {self.method!r}")
        need(self.lr_schedule in SCHEDULES,
             f"lr_schedule must be one of {', '.join(SCHEDULES)}, not {self.lr_schedule!r}")
        need(isinstance(self.lr_decay, (int, float, np.floating)) and 0 < self.lr_decay <= 1,
             f"lr_decay must be a number in (0, 1], not {self.lr_decay!r}")
        need(isinstance(self.early_stopping, (int, np.integer))
             and not isinstance(self.early_stopping, bool) and self.early_stopping >= 0,
             f"early_stopping must be a non-negative integer, not {self.early_stopping!r}")

    # ------------------------------------------------------------------ fitting

    def _choose_grid(self, n_users: int, n_items: int, n_ratings: int) -> int:
        if self.grid is not None:
            return int(self.grid)
        row_bytes = self.n_factors * np.dtype(_DTYPES[self.dtype]).itemsize
        by_cache = math.ceil(math.sqrt((n_users + n_items) * row_bytes / _BLOCK_BYTES))
        # the grid never depends on n_jobs, so neither does the model; 32 strata keep up
        # to 16 threads busy, and blocks stay large enough that their overhead is negligible
        grid = max(by_cache, 32)
        return int(max(1, min(grid, 64, int(math.sqrt(max(n_ratings, 1) / 2048)))))

    def fit(self, data, validation=None, callback=None, reg_callback=None) -> FunkSVD:
        """Learn biases and factors from ``data`` (Ratings, DataFrame or path).

        ``validation`` (same kinds) adds validation RMSE to each epoch's report; it is
        never used to choose ``reg='auto'``, which holds out training ratings instead.
        ``callback(EpochInfo)`` is called after every epoch of the final fit, and
        ``reg_callback(reg, held_out_rmse)`` after each trial of ``reg='auto'``.
        """
        import numba

        from recsys.kernels.cpu.sgd import group_into_blocks
        from recsys.training.strata import contiguous_blocks
        from recsys.training.trainers import FunkTrainer, GDTrainer, SGDTrainer, SVDppTrainer

        self._check_params()
        ratings = as_ratings(data)
        if len(ratings) == 0:
            raise TrainingError("no ratings to train on")
        self._resolve_reg(ratings, reg_callback)
        if self.early_stopping and validation is None:
            ratings, validation = split_off(ratings, _EARLY_STOP_HOLDOUT, self.seed)
        dtype = _DTYPES[self.dtype]
        k = int(self.n_factors)
        n_users, n_items, n = ratings.n_users, ratings.n_items, len(ratings)
        ensure_memory(training_bytes(n, n_users, n_items, k, np.dtype(dtype).itemsize),
                      f"training {n:,} ratings with {k} factors")
        n_jobs = int(self.n_jobs or default_jobs())
        valid = None if validation is None else as_ratings(validation)

        rng = np.random.default_rng(self.seed)
        values = ratings.values
        mu = dtype(values.mean(dtype=np.float64))
        P = rng.normal(0.0, self.init_std, (n_users, k)).astype(dtype)
        Q = rng.normal(0.0, self.init_std, (n_items, k)).astype(dtype)
        bu = np.zeros(n_users, dtype=dtype)
        bi = np.zeros(n_items, dtype=dtype)
        grid = self._choose_grid(n_users, n_items, n)
        user_block = contiguous_blocks(np.bincount(ratings.users, minlength=n_users), grid)
        item_block = contiguous_blocks(np.bincount(ratings.items, minlength=n_items), grid)
        users, items, vals, block_ptr = group_into_blocks(ratings.users, ratings.items, values,
                                                          user_block, item_block, grid)
        lo, hi = float(values.min()), float(values.max())
        scale_range = max(hi - lo, 1.0)

        self.mu_, self.user_bias_, self.item_bias_ = mu, bu, bi
        self.user_factors_, self.item_factors_ = P, Q
        self.user_map_, self.item_map_ = ratings.user_map, ratings.item_map
        self.rating_scale_ = (lo, hi)
        self.history_ = []
        valid_idx = None
        if valid is not None and len(valid):
            valid_idx = (self.user_map_.indices(valid.raw_users),
                         self.item_map_.indices(valid.raw_items), valid.values)

        args = (self, users, items, vals, mu, bu, bi, P, Q, rng, dtype)
        if self.method == "sgd":
            trainer = SGDTrainer(*args, grid=grid, block_ptr=block_ptr, seed=self.seed)
        elif self.method == "gd":
            trainer = GDTrainer(*args)
        elif self.method == "svdpp":
            trainer = SVDppTrainer(*args, seed=self.seed)
        else:
            trainer = FunkTrainer(*args, lo=lo, hi=hi)
        best_rmse, best_epoch, best_arrays = math.inf, 0, None

        previous = numba.get_num_threads()
        numba.set_num_threads(min(n_jobs, numba.config.NUMBA_NUM_THREADS))
        try:
            for epoch in range(trainer.n_units):
                start = time.perf_counter()
                lr_used = trainer.current_lr
                sse = trainer.run_unit(epoch)
                seconds = time.perf_counter() - start
                train_rmse = math.sqrt(sse / n)
                if not math.isfinite(train_rmse) or train_rmse > _DIVERGED * scale_range:
                    raise TrainingError(
                        f"training diverged in epoch {epoch + 1} (training RMSE "
                        f"{train_rmse:.3g}); use a smaller learning rate than {self.lr:g}")
                valid_rmse = None
                if valid_idx is not None:
                    valid_rmse = self._rmse_indexed(*valid_idx)
                info = EpochInfo(epoch + 1, train_rmse, valid_rmse, seconds, lr_used)
                self.history_.append(info.as_dict())
                if callback is not None:
                    callback(info)
                if self.early_stopping and valid_rmse is not None:
                    if valid_rmse < best_rmse:
                        best_rmse, best_epoch, best_arrays = valid_rmse, epoch + 1, \
                            trainer.snapshot()
                    elif epoch + 1 - best_epoch >= self.early_stopping:
                        break
        finally:
            numba.set_num_threads(previous)
        if best_arrays is not None:
            trainer.restore(best_arrays)
        self.best_epoch_ = best_epoch if best_arrays is not None else len(self.history_)

        self._check_finite()
        # free the grouped copy of the ratings before the seen-items index is built, so the
        # two never coexist (peak memory of large fits)
        del trainer, args, users, items, vals, block_ptr, best_arrays
        self.seen_ = _seen_index(ratings.users, ratings.items, n_users)
        self.item_titles_ = dict(ratings.item_titles)
        self.train_summary_ = ratings.summary()
        return self

    def _resolve_reg(self, ratings: Ratings, reg_callback) -> None:
        """Set ``reg_`` (the γ trained with) and ``reg_trials_`` ((γ, held-out RMSE) pairs)."""
        from recsys.training.autoreg import choose_reg, is_auto

        if is_auto(self.reg):
            self.reg_, self.reg_trials_ = choose_reg(self, ratings, reg_callback)
        else:
            self.reg_, self.reg_trials_ = float(self.reg), []

    def _check_finite(self) -> None:
        for name in ("user_bias_", "item_bias_", "user_factors_", "item_factors_"):
            if not np.isfinite(getattr(self, name)).all():
                raise TrainingError(f"training produced non-finite {name.rstrip('_')}; "
                                    f"use a smaller learning rate than {self.lr:g}")

    # ------------------------------------------------------------------ prediction

    def _require_fitted(self) -> None:
        if not hasattr(self, "user_factors_"):
            raise ModelError("this FunkSVD is not fitted yet; call fit() first")

    def _predict_indexed(self, u_idx, i_idx) -> np.ndarray:
        from recsys.kernels.cpu.predict import predict_pairs

        out = np.empty(len(u_idx), dtype=self.user_factors_.dtype)
        lo, hi = self.rating_scale_
        dt = self.user_factors_.dtype.type
        predict_pairs(np.ascontiguousarray(u_idx, dtype=np.int64),
                      np.ascontiguousarray(i_idx, dtype=np.int64), self.mu_, self.user_bias_,
                      self.item_bias_, self.user_factors_, self.item_factors_, dt(lo), dt(hi),
                      out)
        return out

    def _rmse_indexed(self, u_idx, i_idx, values) -> float:
        pred = self._predict_indexed(u_idx, i_idx).astype(np.float64)
        return float(np.sqrt(np.mean((pred - values) ** 2)))

    def predict(self, users, items, strict: bool = False) -> np.ndarray:
        """Predicted ratings for raw (user, item) pairs, clipped to the training scale.

        Unknown ids fall back to the biases and global mean; with ``strict`` they raise
        ``UnknownIdError`` naming them.
        """
        self._require_fitted()
        users = np.atleast_1d(np.asarray(users))
        items = np.atleast_1d(np.asarray(items))
        if users.shape != items.shape:
            raise ValueError("users and items must have the same length")
        u_idx = self.user_map_.indices(users)
        i_idx = self.item_map_.indices(items)
        if strict:
            _raise_unknown(users[u_idx < 0], "user")
            _raise_unknown(items[i_idx < 0], "item")
        return self._predict_indexed(u_idx, i_idx)

    def recommend(self, user, n: int = 10, exclude_seen: bool = True, strict: bool = False):
        """Top-``n`` items for one raw user id: (item ids, scores), best first.

        An unknown user gets the items with the highest mu + b_i (popular and well liked),
        or ``UnknownIdError`` with ``strict``.
        """
        ids, scores = self.recommend_many([user], n=n, exclude_seen=exclude_seen, strict=strict)
        keep = np.isfinite(scores[0])
        return ids[0][keep], scores[0][keep]

    def recommend_many(self, users, n: int = 10, exclude_seen: bool = True,
                       strict: bool = False, chunk: int | None = None):
        """Top-``n`` items for many users at once: (ids, scores) arrays of shape (len, n).

        Scores are the predicted ratings before clipping to the rating scale (clipped, the
        best items would tie at the top), so they can exceed it. They are computed by matrix
        products in chunks of users (by default as many as keep the score block near
        64 MiB); slots that cannot be filled (n larger than the unseen items) hold -inf.
        """
        from recsys.kernels.cpu.predict import top_n_rows, top_n_rows_biased

        self._require_fitted()
        users = np.atleast_1d(np.asarray(users))
        n = _check_n(n)
        u_idx = self.user_map_.indices(users)
        if strict:
            _raise_unknown(users[u_idx < 0], "user")
        n_items = len(self.item_map_)
        n_out = min(n, n_items)
        P, Q = self.user_factors_, self.item_factors_
        if chunk is None:
            chunk = int(np.clip((64 << 20) // (n_items * P.itemsize), 1, 4096))
        out_idx = np.full((len(users), n_out), -1, dtype=np.int64)
        out_score = np.full((len(users), n_out), -np.inf, dtype=P.dtype)
        base = (self.item_bias_ + self.mu_).astype(P.dtype)
        indptr, indices = self.seen_
        for start in range(0, len(users), chunk):
            rows = u_idx[start:start + chunk]
            known = rows >= 0
            if known.all():  # the common case: one product, biases added by the kernel
                top_n_rows_biased(P[rows] @ Q.T, self.user_bias_[rows], base, n_out, rows,
                                  indptr, indices, exclude_seen,
                                  out_idx[start:start + chunk], out_score[start:start + chunk])
            else:
                scores = np.empty((len(rows), n_items), dtype=P.dtype)
                scores[:] = base
                if known.any():
                    scores[known] += P[rows[known]] @ Q.T
                    scores[known] += self.user_bias_[rows[known]][:, None]
                top_n_rows(scores, n_out, rows, indptr, indices, exclude_seen,
                           out_idx[start:start + chunk], out_score[start:start + chunk])
        item_ids = self.item_map_.ids
        ids = np.where(out_idx >= 0, item_ids[np.maximum(out_idx, 0)], item_ids[0])
        return ids, out_score

    def similar_items(self, item, n: int = 10):
        """The ``n`` items whose factor vectors are closest in cosine: (item ids, similarity)."""
        from recsys.kernels.cpu.predict import top_n_rows

        self._require_fitted()
        index = self.item_map_.index_of(item)
        if index < 0:
            raise UnknownIdError(f"unknown item {item!r}: not in the training data")
        n = _check_n(n)
        Q = self.item_factors_.astype(np.float64)
        norms = np.linalg.norm(Q, axis=1)
        norms[norms == 0] = 1.0
        sims = (Q @ Q[index]) / (norms * norms[index])
        sims[index] = np.nan  # never similar to itself
        n_out = min(n, len(sims) - 1)
        out_idx = np.full((1, max(n_out, 0)), -1, dtype=np.int64)
        out_score = np.full((1, max(n_out, 0)), -np.inf, dtype=np.float64)
        empty = np.zeros(1, dtype=np.int64)
        top_n_rows(sims[None, :], n_out, np.array([-1], dtype=np.int64), empty,
                   empty.astype(np.int32), False, out_idx, out_score)
        keep = out_idx[0] >= 0
        return self.item_map_.ids[out_idx[0][keep]], out_score[0][keep]

    def title_of(self, item) -> str | None:
        return getattr(self, "item_titles_", {}).get(item)

    # ------------------------------------------------------------------ persistence

    def save(self, path) -> None:
        from recsys.persist.modelfile import save

        save(self, path)

    @classmethod
    def load(cls, path) -> FunkSVD:
        from recsys.persist.modelfile import load

        return load(path)

    # ------------------------------------------------------------------ new users (fold-in)

    def fold_in(self, ratings, strict: bool = False):
        """(user_vector, user_bias) for a user not in the model, from their ratings.

        ``ratings``: a dict {item: rating} or a pair (items, values) of raw item ids and
        ratings. The item factors stay fixed; factors and bias are the regularized
        least-squares fit (``recsys.models.foldin``). Unknown items are ignored, or raise
        ``UnknownIdError`` with ``strict``.
        """
        from recsys.models.foldin import fold_in, ratings_arrays

        self._require_fitted()
        items, values = ratings_arrays(ratings)
        idx = self.item_map_.indices(items)
        if strict:
            _raise_unknown(items[idx < 0], "item")
        known = idx >= 0
        reg_bias = self.reg_ if self.reg_bias is None else self.reg_bias
        p, b = fold_in(self.item_factors_, self.item_bias_, self.mu_, idx[known],
                       values[known], self.reg_, reg_bias)
        dtype = self.user_factors_.dtype.type
        return p.astype(self.user_factors_.dtype), dtype(b)

    def recommend_for_ratings(self, ratings, n: int = 10, exclude_rated: bool = True,
                              strict: bool = False):
        """Top-``n`` (item ids, scores) for a new user given only their ratings, no retraining.

        The user is folded in (``fold_in``) and scored like a trained user; the items they
        rated are left out unless ``exclude_rated`` is False.
        """
        from recsys.kernels.cpu.predict import top_n_rows
        from recsys.models.foldin import ratings_arrays

        n = _check_n(n)
        p, b = self.fold_in(ratings, strict=strict)
        items, _ = ratings_arrays(ratings)
        idx = self.item_map_.indices(items)
        rated = np.unique(idx[idx >= 0]).astype(np.int32)
        Q = self.item_factors_
        scores = ((self.item_bias_ + self.mu_).astype(Q.dtype) + Q @ p + b)[None, :]
        n_out = min(n, len(Q))
        out_idx = np.full((1, n_out), -1, dtype=np.int64)
        out_score = np.full((1, n_out), -np.inf, dtype=Q.dtype)
        top_n_rows(scores, n_out, np.zeros(1, dtype=np.int64),
                   np.array([0, len(rated)], dtype=np.int64), rated, exclude_rated,
                   out_idx, out_score)
        keep = out_idx[0] >= 0
        return self.item_map_.ids[out_idx[0][keep]], out_score[0][keep]


#: Share of the training ratings held out for early stopping when no validation set is given.
_EARLY_STOP_HOLDOUT = 0.05


def split_off(ratings: Ratings, fraction: float, seed: int, stream: int = 1):
    """(rest, held out) with ``fraction`` of the ratings held out, chosen by ``seed``;
    different ``stream`` values give independent choices for the same seed."""
    order = np.random.default_rng([seed, stream]).permutation(len(ratings))
    n_out = max(1, int(len(ratings) * fraction))
    return ratings.subset(np.sort(order[n_out:])), ratings.subset(np.sort(order[:n_out]))


def _seen_index(users, items, n_users):
    """CSR (indptr int64, indices int32 sorted per user) of each user's training items."""
    from recsys.kernels.cpu.predict import seen_csr

    return seen_csr(users, items, n_users)


def _check_n(n) -> int:
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1 or n > 10_000:
        raise ValueError(f"n must be an integer from 1 to 10000, not {n!r}")
    return int(n)


def _raise_unknown(ids, kind: str) -> None:
    if len(ids):
        shown = ", ".join(str(x) for x in ids[:10]) + (" ..." if len(ids) > 10 else "")
        raise UnknownIdError(f"{len(ids)} unknown {kind}{'s' if len(ids) > 1 else ''}: {shown}")
