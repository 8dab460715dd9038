"""What every fitted model answers, over its FactorState: predict, recommend,
recommend_many, similar_items, fold-in, save and load.

Every model (FunkSVD, SVD++, the baselines) has the form r̂_ui = mu + b_u + b_i + p_u·q_i
(the baselines with zero latent features), so one implementation serves them all. Raw ids
come in and go out at every public method; indices are used only inside. A fitted model
keeps its learned state in ``state_`` (``recsys.state.FactorState``) and how the fit went
in ``report_``; the familiar attributes (``user_factors_``, ``item_bias_``, ``user_map_``,
``history_``, ...) read them.
"""

from __future__ import annotations

import numpy as np

from recsys.errors import ModelError, NotFittedError, UnknownIdError
from recsys.models.params import Params
from recsys.persist.modelfile import ModelRecord, read_model, write_model
from recsys.state import FactorState, FitReport


def _state_attribute(path: str, doc: str):
    def get(self):
        obj = self._fitted_state()
        for part in path.split("."):
            obj = getattr(obj, part)
        return obj

    return property(get, doc=doc)


def _report_attribute(name: str, doc: str):
    def get(self):
        self._fitted_state()
        return getattr(self.report_, name)

    return property(get, doc=doc)


class FactorModel(Params):
    """Base of the estimators: queries over a fitted ``FactorState``."""

    mu_ = _state_attribute("factors.mu", "the global mean rating")
    user_bias_ = _state_attribute("factors.user_bias", "b_u per user index")
    item_bias_ = _state_attribute("factors.item_bias", "b_i per item index")
    user_factors_ = _state_attribute("factors.user_factors", "P: user factors (rows)")
    item_factors_ = _state_attribute("factors.item_factors", "Q: item factors (rows)")
    user_map_ = _state_attribute("user_map", "IdMap of the training users")
    item_map_ = _state_attribute("item_map", "IdMap of the training items")
    seen_ = _state_attribute("seen", "(indptr, indices) of each user's training items")
    rating_scale_ = _state_attribute("rating_scale", "(lo, hi): predictions are clipped to it")
    item_titles_ = _state_attribute("item_titles", "{raw item id: title} where known")
    history_ = _report_attribute("history", "per epoch: train_rmse, valid_rmse, seconds, lr")
    best_epoch_ = _report_attribute("best_epoch", "the epoch whose arrays were kept")
    train_summary_ = _report_attribute("summary", "counts and scale of the training ratings")

    #: Whether the model has latent item factors (similar_items needs them).
    has_factors = True

    def _fitted_state(self) -> FactorState:
        state = self.__dict__.get("state_")
        if state is None:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; "
                                 "call fit() first")
        return state

    def _require_fitted(self) -> None:
        self._fitted_state()

    def _set_fitted(self, state: FactorState, report: FitReport) -> None:
        self.state_, self.report_ = state, report

    # ------------------------------------------------------------------ prediction

    def _predict_indexed(self, u_idx, i_idx) -> np.ndarray:
        return self._fitted_state().predict(u_idx, i_idx)

    def predict(self, users, items, strict: bool = False) -> np.ndarray:
        """Predicted ratings for raw (user, item) pairs, clipped to the training scale.

        An unknown user falls back to mu + b_i, an unknown item to mu + b_u, both unknown
        to mu; with ``strict`` they raise ``UnknownIdError`` naming them.
        """
        state = self._fitted_state()
        users = np.atleast_1d(np.asarray(users))
        items = np.atleast_1d(np.asarray(items))
        if users.shape != items.shape:
            raise ValueError("users and items must have the same length")
        u_idx = state.user_map.indices(users)
        i_idx = state.item_map.indices(items)
        if strict:
            raise_unknown(users[u_idx < 0], "user")
            raise_unknown(items[i_idx < 0], "item")
        return state.predict(u_idx, i_idx)

    def recommend(self, user, n: int = 10, exclude_seen: bool = True, strict: bool = False,
                  items=None, exclude=None):
        """Top-``n`` items for one raw user id: (item ids, scores), best first.

        An unknown user gets the items with the highest mu + b_i (popular and well liked;
        models with an ``unknown_user`` vector, the ranking objective's average user, add
        q_i·that), or ``UnknownIdError`` with ``strict``. ``items`` and ``exclude``: as in
        ``recommend_many``.
        """
        ids, scores = self.recommend_many([user], n=n, exclude_seen=exclude_seen, strict=strict,
                                          items=items, exclude=exclude)
        keep = np.isfinite(scores[0])
        return ids[0][keep], scores[0][keep]

    def recommend_many(self, users, n: int = 10, exclude_seen: bool = True,
                       strict: bool = False, chunk: int | None = None, items=None,
                       exclude=None):
        """Top-``n`` items for many users at once: (ids, scores) arrays of shape (len, n).

        Scores are the predicted ratings before clipping to the rating scale (clipped, the
        best items would tie at the top), so they can exceed it. They are computed by matrix
        products in chunks of users (by default as many as keep the score block near
        64 MiB). ``items``: only these raw item ids are candidates (unknown ones ignored,
        or ``UnknownIdError`` with ``strict``); ``exclude``: these are never recommended.
        Slots that cannot be filled (fewer candidates than n) hold the id
        ``item_map_.absent_id()``, never a real one, and the score -inf.
        """
        from recsys.kernels.cpu.predict import top_n_rows, top_n_rows_biased

        state = self._fitted_state()
        f = state.factors
        users = np.atleast_1d(np.asarray(users))
        n = check_n(n)
        u_idx = state.user_map.indices(users)
        if strict:
            raise_unknown(users[u_idx < 0], "user")
        n_items = state.n_items
        n_out = min(n, n_items)
        P, Q = f.user_factors, f.item_factors
        allowed = self._candidates(state, items, exclude, strict)
        if chunk is None:
            chunk = int(np.clip((64 << 20) // (n_items * P.itemsize), 1, 4096))
        out_idx = np.full((len(users), n_out), -1, dtype=np.int64)
        out_score = np.full((len(users), n_out), -np.inf, dtype=P.dtype)
        base = (f.item_bias + f.mu).astype(P.dtype)
        indptr, indices = state.seen
        for start in range(0, len(users), chunk):
            rows = u_idx[start:start + chunk]
            known = rows >= 0
            if known.all() and allowed is None:  # one product, biases added by the kernel
                top_n_rows_biased(P[rows] @ Q.T, f.user_bias[rows], base, n_out, rows,
                                  indptr, indices, exclude_seen,
                                  out_idx[start:start + chunk], out_score[start:start + chunk])
            else:
                scores = np.empty((len(rows), n_items), dtype=P.dtype)
                scores[:] = base
                if state.unknown_user is not None:
                    scores[~known] = state.unknown_user_scores()
                if known.any():
                    scores[known] += P[rows[known]] @ Q.T
                    scores[known] += f.user_bias[rows[known]][:, None]
                if allowed is not None:
                    scores[:, ~allowed] = np.nan  # skipped by the top-N kernel
                top_n_rows(scores, n_out, rows, indptr, indices, exclude_seen,
                           out_idx[start:start + chunk], out_score[start:start + chunk])
        item_ids = state.item_map.ids
        ids = item_ids[np.maximum(out_idx, 0)]
        if (out_idx < 0).any():
            ids = ids.astype(object) if ids.dtype.kind == "U" else ids
            ids[out_idx < 0] = state.item_map.absent_id()
        return ids, out_score

    @staticmethod
    def _candidates(state, items, exclude, strict):
        """Mask of the items that may be recommended (None: all)."""
        if items is None and exclude is None:
            return None
        allowed = np.ones(state.n_items, dtype=bool)
        if items is not None:
            items = np.atleast_1d(np.asarray(items))
            idx = state.item_map.indices(items)
            if strict:
                raise_unknown(items[idx < 0], "item")
            allowed[:] = False
            allowed[idx[idx >= 0]] = True
        if exclude is not None:
            idx = state.item_map.indices(np.atleast_1d(np.asarray(exclude)))
            allowed[idx[idx >= 0]] = False
        return allowed

    def recommend_frame(self, users, n: int = 10, exclude_seen: bool = True, items=None,
                        exclude=None, chunk: int | None = None):
        """Top-``n`` lists of many users as one long DataFrame: user, rank (from 1), item,
        score (and title where the model has titles), best first per user; a user with
        fewer candidates than ``n`` gets a shorter list (no padding rows)."""
        import pandas as pd

        users = np.atleast_1d(np.asarray(users))
        ids, scores = self.recommend_many(users, n=n, exclude_seen=exclude_seen, chunk=chunk,
                                          items=items, exclude=exclude)
        keep = np.isfinite(scores)
        rows, ranks = np.nonzero(keep)
        frame = pd.DataFrame({"user": users[rows], "rank": ranks + 1,
                              "item": ids[keep], "score": scores[keep]})
        titles = self._fitted_state().item_titles
        if titles:
            frame["title"] = [titles.get(i) for i in frame["item"].tolist()]
        return frame

    def similar_items(self, item, n: int = 10):
        """The ``n`` items whose factor vectors are closest in cosine: (item ids, similarity)."""
        from recsys.kernels.cpu.predict import top_n_rows

        state = self._fitted_state()
        if not self.has_factors:
            raise ValueError(f"{type(self).__name__} has no item factors: similar items need "
                             "a factor model")
        index = state.item_map.index_of(item)
        if index < 0:
            raise UnknownIdError(f"unknown item {item!r}: not in the training data")
        n = check_n(n)
        Q = state.factors.item_factors.astype(np.float64)
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
        return state.item_map.ids[out_idx[0][keep]], out_score[0][keep]

    def title_of(self, item) -> str | None:
        return self._fitted_state().item_titles.get(item)

    # ------------------------------------------------------------------ new users (fold-in)

    def _fold_in_penalties(self, m: int) -> tuple[float, float] | None:
        """(λ_p, λ_b) of the fold-in of a user with ``m`` ratings: the weights of ‖p_u‖² and
        b_u² in the user's share of the training loss; None: the model learns nothing per
        user."""
        raise NotImplementedError

    def fold_in_scale(self) -> tuple[float, float] | None:
        """(lo, hi): the range a new user's ratings must lie in, that of the training
        ratings (``train_summary_``; else the rating scale); None: no limits known."""
        summary = self.report_.summary or {}
        lo, hi = summary.get("min_rating"), summary.get("max_rating")
        if lo is None or hi is None:
            lo, hi = self.rating_scale_
        return float(lo), float(hi)

    def _check_fold_in_ratings(self, items, values) -> None:
        """ValueError naming the first rating outside ``fold_in_scale()``."""
        scale = self.fold_in_scale()
        if scale is None:
            return
        lo, hi = scale
        slack = 1e-6 * max(1.0, abs(lo), abs(hi))  # ratings stored as float32
        bad = (values < lo - slack) | (values > hi + slack)
        if bad.any():
            j = int(np.argmax(bad))
            raise ValueError(f"item {items[j].item()!r}: rating {values[j]:g} is outside the "
                             f"scale of the training ratings [{lo:g}, {hi:g}]")

    def fold_in(self, ratings, strict: bool = False):
        """(user_vector, user_bias) for a user not in the model, from their ratings.

        ``ratings``: a dict {item: rating} or a pair (items, values) of raw item ids and
        ratings. The item factors stay fixed; factors and bias are the regularized
        least-squares fit (``recsys.models.foldin``). Unknown items are ignored, or raise
        ``UnknownIdError`` with ``strict``. A rating outside the training ratings' range
        (``fold_in_scale``) raises ValueError naming it.
        """
        from recsys.models.foldin import fold_in, ratings_arrays

        state = self._fitted_state()
        f = state.factors
        items, values = ratings_arrays(ratings)
        self._check_fold_in_ratings(items, values)
        idx = state.item_map.indices(items)
        if strict:
            raise_unknown(items[idx < 0], "item")
        known = idx >= 0
        penalties = self._fold_in_penalties(int(known.sum()))
        if penalties is None:
            p, b = np.zeros(state.n_factors), 0.0
        else:
            p, b = fold_in(f.item_factors, f.item_bias, f.mu, idx[known], values[known],
                           *penalties)
        return p.astype(state.dtype), state.dtype.type(b)

    def recommend_for_ratings(self, ratings, n: int = 10, exclude_rated: bool = True,
                              strict: bool = False, items=None, exclude=None):
        """Top-``n`` (item ids, scores) for a new user given only their ratings, no retraining.

        The user is folded in (``fold_in``) and scored like a trained user; the items they
        rated are left out unless ``exclude_rated`` is False. ``items`` and ``exclude``: as
        in ``recommend_many`` (fewer candidates than ``n``: a shorter list).
        """
        from recsys.kernels.cpu.predict import top_n_rows
        from recsys.models.foldin import ratings_arrays

        n = check_n(n)
        p, b = self.fold_in(ratings, strict=strict)
        state = self._fitted_state()
        f = state.factors
        rated_items, _ = ratings_arrays(ratings)
        idx = state.item_map.indices(rated_items)
        rated = np.unique(idx[idx >= 0]).astype(np.int32)
        Q = f.item_factors
        scores = ((f.item_bias + f.mu).astype(Q.dtype) + Q @ p + b)[None, :]
        allowed = self._candidates(state, items, exclude, strict)
        if allowed is not None:
            scores[:, ~allowed] = np.nan  # skipped by the top-N kernel
        n_out = min(n, len(Q))
        out_idx = np.full((1, n_out), -1, dtype=np.int64)
        out_score = np.full((1, n_out), -np.inf, dtype=Q.dtype)
        top_n_rows(scores, n_out, np.zeros(1, dtype=np.int64),
                   np.array([0, len(rated)], dtype=np.int64), rated, exclude_rated,
                   out_idx, out_score)
        keep = out_idx[0] >= 0
        return state.item_map.ids[out_idx[0][keep]], out_score[0][keep]

    # ------------------------------------------------------------------ persistence

    def save(self, path) -> None:
        """Write the fitted model to ``path`` atomically (``recsys.persist.modelfile``)."""
        state = self._fitted_state()
        write_model(path, ModelRecord(type(self).__name__, self.get_params(), state,
                                      self.report_))

    @classmethod
    def load(cls, path):
        """Read a model of this class from ``path`` (``recsys.load`` reads any kind)."""
        record = read_model(path)
        if record.kind != cls.__name__:
            raise ModelError(f"{path}: holds a {record.kind} model, not a {cls.__name__}; "
                             "read it with recsys.load")
        return cls.from_record(record, path)

    @classmethod
    def from_record(cls, record, path=None):
        """The fitted model a model file describes (``recsys.persist.modelfile``)."""
        params = cls.params_from_file(dict(record.params), record.format_version)
        unknown = sorted(set(params) - set(cls._PARAMS))
        if unknown:
            raise ModelError(f"{path}: damaged model file: unknown parameter {unknown[0]!r}")
        try:
            model = cls(**params)
            model.check_params()
        except (TypeError, ValueError, OverflowError) as exc:
            raise ModelError(f"{path}: damaged model file: {str(exc)[:200]}") from None
        model._set_fitted(record.state, record.report)
        model.manifest_ = record.manifest
        return model

    @classmethod
    def params_from_file(cls, params: dict, format_version: int) -> dict:
        """Parameters as written in a model file, made current (older formats named some
        differently)."""
        return params


def check_n(n) -> int:
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1 or n > 10_000:
        raise ValueError(f"n must be an integer from 1 to 10000, not {n!r}")
    return int(n)


def raise_unknown(ids, kind: str) -> None:
    if len(ids):
        shown = ", ".join(str(x) for x in ids[:10]) + (" ..." if len(ids) > 10 else "")
        raise UnknownIdError(f"{len(ids)} unknown {kind}{'s' if len(ids) > 1 else ''}: {shown}")
