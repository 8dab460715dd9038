"""What a fitted model is, apart from the estimator that fitted it.

``FactorState`` holds the learned model r̂_ui = mu + b_u + b_i + p_u·q_i with everything
needed to use it: the id maps (raw ids <-> indices), the seen-items index (for top-N
without the training items), the rating scale predictions are clipped to, item titles,
and the lineage (parent model, digests of the data trained on, recsys version). Every
model has this form: FunkSVD and SVD++ (whose implicit part is folded into P), and the
baselines (with zero latent features). ``FitReport`` says how the fit went.

It sits beneath the wings that share it: training produces its arrays, persist writes and
reads it, models answer queries over it, serving loads it; none of them needs another's
classes to do so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from recsys import aligned
from recsys.data.ratings import IdMap
from recsys.version import __version__


@dataclass
class Lineage:
    """Where a model comes from: the model it continued (SHA-256 of its file, or None),
    the data it was trained on (one entry per data set: SHA-256, counts) and the recsys
    version that wrote it."""

    parent: str | None = None
    data: list = field(default_factory=list)
    version: str = __version__

    def as_dict(self) -> dict:
        return {"parent": self.parent, "data": list(self.data), "version": self.version}

    @classmethod
    def from_dict(cls, raw: dict | None) -> Lineage:
        """Read back ``as_dict``; files written before lineage existed give an empty one."""
        if raw is None:
            return cls(None, [], None)
        if not isinstance(raw, dict) or not isinstance(raw.get("data", []), list):
            raise ValueError(f"bad lineage {raw!r}")
        parent, version = raw.get("parent"), raw.get("version")
        if not (parent is None or isinstance(parent, str)) or \
                not (version is None or isinstance(version, str)):
            raise ValueError(f"bad lineage {raw!r}")
        return cls(parent, list(raw.get("data", [])), version)


@dataclass
class FitReport:
    """How the fit went: the factor regularization trained with (None for models without
    one) and the trials of ``reg='auto'``, the per-epoch history, the best epoch kept,
    and a summary of the training ratings."""

    reg: float | None = None
    reg_trials: list = field(default_factory=list)
    history: list = field(default_factory=list)
    best_epoch: int | None = None
    summary: dict = field(default_factory=dict)
    fitted: dict = field(default_factory=dict)  # other values the fit chose (numbers only)


@dataclass
class Factors:
    """mu and the learned b_u, b_i, P (n_users × k), Q (n_items × k), indexed by dense
    indices; mu is a scalar of the factors' dtype. Trainers update the arrays in place."""

    mu: np.floating
    user_bias: np.ndarray
    item_bias: np.ndarray
    user_factors: np.ndarray
    item_factors: np.ndarray

    def arrays(self) -> tuple:
        return (self.user_bias, self.item_bias, self.user_factors, self.item_factors)

    def copy(self, into: Factors | None = None) -> Factors:
        """The same factors in arrays of their own, P and Q starting on a cache line
        (``recsys.aligned``: the SGD kernel's rows); or in the arrays of ``into`` (factors
        of the same shapes and dtype, overwritten), which saves allocating them again
        (``reg='auto'``'s trials, one after another: at 10M ratings a 36 MB copy into
        fresh memory took 5-121 ms on the shared VM, into used memory 2.3 ms)."""
        if into is None:
            return Factors(self.mu, self.user_bias.copy(), self.item_bias.copy(),
                           aligned.copy(self.user_factors), aligned.copy(self.item_factors))
        for source, target in zip(self.arrays(), into.arrays(), strict=True):
            if source.shape != target.shape or source.dtype != target.dtype:
                raise ValueError(f"cannot copy {source.dtype} {source.shape} factors into "
                                 f"{target.dtype} {target.shape} ones")
            np.copyto(target, source)
        return Factors(self.mu, *into.arrays())

    def predict(self, users, items, lo: float, hi: float, k: int | None = None) -> np.ndarray:
        """clip(mu + b_u + b_i + p_u·q_i, lo, hi) for index pairs, over the first ``k``
        factor columns (None: all); an index of -1 (unknown) contributes no bias and no
        factors. In the factors' dtype."""
        from recsys.kernels.cpu.predict import predict_pairs

        P = self.user_factors
        out = np.empty(len(users), dtype=P.dtype)
        dt = P.dtype.type
        predict_pairs(_indices(users), _indices(items), self.mu, self.user_bias,
                      self.item_bias, P, self.item_factors, P.shape[1] if k is None else k,
                      dt(lo), dt(hi), out)
        return out

    def rmse(self, users, items, values, lo: float, hi: float) -> float:
        """RMSE of the clipped predictions against ``values``, in float64."""
        pred = self.predict(users, items, lo, hi).astype(np.float64)
        return float(np.sqrt(np.mean((pred - values) ** 2)))


def _indices(a) -> np.ndarray:
    """``a`` as a contiguous int32 or int64 array, copied only where it is neither (a
    fit's held-out indices are int32: no 8-byte copies of them to score each trial)."""
    a = np.asarray(a)
    if a.dtype not in (np.int32, np.int64):
        a = a.astype(np.int64)
    return np.ascontiguousarray(a)


@dataclass
class FactorState:
    """The learned arrays of a model and what gives them meaning.

    ``factors`` are indexed by the dense indices of ``user_map`` and ``item_map``;
    ``seen`` is (indptr int64, indices int32 sorted per user) of each user's training
    items; predictions are clipped to ``rating_scale`` (lo, hi).
    """

    factors: Factors
    user_map: IdMap
    item_map: IdMap
    seen: tuple
    rating_scale: tuple
    item_titles: dict = field(default_factory=dict)
    lineage: Lineage = field(default_factory=Lineage)
    #: The factors an unknown user is scored with in recommendations (None: zeros, so
    #: unknown users get the items with the highest mu + b_i).
    unknown_user: np.ndarray | None = None
    #: Predictions use only the first this many columns of P and Q (the rating part of a
    #: model whose recommendations also score with the columns after them); None: all.
    rating_factors: int | None = None

    @property
    def n_users(self) -> int:
        return len(self.user_map)

    @property
    def n_items(self) -> int:
        return len(self.item_map)

    @property
    def n_factors(self) -> int:
        return int(self.factors.item_factors.shape[1])

    @property
    def dtype(self) -> np.dtype:
        return self.factors.user_factors.dtype

    def unknown_user_scores(self) -> np.ndarray:
        """Every item's score for an unknown user: mu + b_i (+ q_i·unknown_user)."""
        f = self.factors
        base = (f.item_bias + f.mu).astype(self.dtype)
        if self.unknown_user is not None:
            base = base + f.item_factors @ self.unknown_user
        return base

    def digest(self) -> str:
        """SHA-256 of what the model predicts with: the factors, biases, mu and id maps
        (a child model's lineage names its parent by it)."""
        import hashlib

        f = self.factors
        h = hashlib.sha256(np.asarray(f.mu).tobytes())
        for array in (f.user_bias, f.item_bias, f.user_factors, f.item_factors):
            h.update(np.ascontiguousarray(array).data)
        for id_map in (self.user_map, self.item_map):
            ids = id_map.ids
            h.update(np.ascontiguousarray(ids.astype(np.int64) if id_map.is_integer
                                          else ids.astype(str)).data)
        if self.rating_factors is not None:  # absent from older digests: they stay valid
            h.update(b"rating_factors %d" % self.rating_factors)
        return h.hexdigest()

    def rating_part(self) -> Factors:
        """The factors predictions are made with: all of them, or (``rating_factors``)
        views of the leading columns of P and Q."""
        f, k = self.factors, self.rating_factors
        if k is None:
            return f
        return Factors(f.mu, f.user_bias, f.item_bias, f.user_factors[:, :k],
                       f.item_factors[:, :k])

    def predict(self, users, items) -> np.ndarray:
        """Clipped predictions for index pairs (-1: unknown, falling back to biases), from
        the first ``rating_factors`` factor columns where the model says so."""
        return self.factors.predict(users, items, *self.rating_scale, k=self.rating_factors)

    def check(self) -> None:
        """Raise ValueError when the arrays disagree with each other (shapes, dtypes, the
        seen-items index), naming what disagrees."""
        f = self.factors
        P, Q = f.user_factors, f.item_factors
        n_users, n_items = self.n_users, self.n_items
        ptr, idx = self.seen
        u = self.unknown_user
        checks = (
            (lambda: P.ndim == 2 and Q.ndim == 2 and P.dtype.kind == "f" and P.dtype == Q.dtype
             and P.shape == (n_users, Q.shape[1]) and Q.shape[0] == n_items,
             "the factors do not fit the id maps"),
            (lambda: f.user_bias.dtype == P.dtype and f.item_bias.dtype == P.dtype
             and f.user_bias.shape == (n_users,) and f.item_bias.shape == (n_items,),
             "the biases do not fit the factors"),
            (lambda: ptr.shape == (n_users + 1,) and ptr.dtype == np.int64 and idx.ndim == 1
             and idx.dtype == np.int32, "the seen-items index does not fit the users"),
            (lambda: ptr[0] == 0 and ptr[-1] == len(idx) and bool(np.all(ptr[1:] >= ptr[:-1])),
             "seen_indptr does not rise from 0 to the number of seen items"),
            (lambda: len(idx) == 0 or (idx.min() >= 0 and idx.max() < n_items),
             "seen_indices holds items out of range"),
            (lambda: _sorted_per_row(ptr, idx), "seen_indices is not sorted within each user"),
            (lambda: u is None or (u.shape == (Q.shape[1],) and u.dtype == P.dtype),
             "unknown_user does not fit the factors"),
            (lambda: self.rating_factors is None or (
                isinstance(self.rating_factors, int) and not isinstance(self.rating_factors, bool)
                and 0 <= self.rating_factors <= Q.shape[1]),
             "rating_factors is not a number of factor columns"),
        )
        for ok, what in checks:
            if not ok():
                raise ValueError(f"arrays disagree with each other: {what}")


def _sorted_per_row(indptr: np.ndarray, indices: np.ndarray) -> bool:
    """Whether ``indices`` is sorted (ascending, ties allowed) within each CSR row."""
    if len(indices) < 2:
        return True
    down = indices[1:] < indices[:-1]
    starts = indptr[1:-1]
    starts = starts[(starts > 0) & (starts < len(indices))]
    down[starts - 1] = False  # a row may start below where the previous one ended
    return not down.any()
