"""A fitted model made ready to answer requests fast, and an atomically swappable holder.

``Served`` precomputes at load what every request would otherwise redo: contiguous factor
matrices, item base scores, the seen-items index, dicts from raw id to index, id lists
ready for JSON, the popularity order, item norms and (when cheap enough) every user's
top items; and it warms the numba kernels so that the first request does not pay for
compilation. Its answers equal the model's bit for bit (``recommend``, or
``recommend_many`` for precomputed top items, ``similar_items``, ``predict``), and come as
plain Python lists. ``ModelHolder`` keeps the model being served and replaces it by one
reference swap, so a request that took the old one finishes on it.
No web framework is imported here.
"""

from __future__ import annotations

import datetime as _dt
import gc
import os
import threading
import time
from pathlib import Path

import numpy as np

from recsys.data.ratings import _as_int
from recsys.errors import ModelError
from recsys.kernels.cpu.predict import top_n_rows


class Served:
    """One loaded model with everything a request needs, precomputed."""

    def __init__(self, model, path=None, cache_top: int = 0, cache_budget: float = 5e9,
                 ratings_log=None):
        self.model = model
        self.path = None if path is None else str(path)
        now = _dt.datetime.now(_dt.timezone.utc)
        self.loaded_at = now.isoformat(timespec="seconds")
        self.loaded_unix = now.timestamp()
        self.load_seconds = float("nan")  # reading and preparing it (``load_served`` sets it)
        self.manifest = dict(getattr(model, "manifest_", {}) or {})
        state = self.state = model.state_  # the FactorState answers come from
        f = state.factors
        P = np.ascontiguousarray(f.user_factors)
        Q = np.ascontiguousarray(f.item_factors)
        self.P, self.Q, self.QT = P, Q, Q.T
        self.user_bias = f.user_bias
        self.base = (f.item_bias + f.mu).astype(P.dtype)
        self.seen_ptr, self.seen_idx = state.seen
        self.n_users, self.n_items, self.n_factors = P.shape[0], Q.shape[0], Q.shape[1]
        self.user_ids = state.user_map.ids.tolist()
        self.item_ids = state.item_map.ids.tolist()
        self._user_index = {raw: i for i, raw in enumerate(self.user_ids)}
        self._item_index = {raw: i for i, raw in enumerate(self.item_ids)}
        self._int_users = state.user_map.is_integer
        self._int_items = state.item_map.is_integer
        scale = getattr(model, "fold_in_scale", lambda: state.rating_scale)()
        # the range of a new user's ratings (POST /recommendations)
        self.fold_in_scale = (-np.inf, np.inf) if scale is None else tuple(map(float, scale))
        titles = state.item_titles or {}
        self.titles = [titles.get(raw) for raw in self.item_ids] if titles else None
        # mu + b_i (+ q_i·unknown_user) descending, ties to the lower index: what recommend
        # gives unknown users
        self.unknown_scores = state.unknown_user_scores()
        self.popular = np.argsort(-self.unknown_scores, kind="stable")
        Q64 = Q.astype(np.float64)
        norms = np.linalg.norm(Q64, axis=1)
        norms[norms == 0] = 1.0
        self.Q64, self.norms = Q64, norms
        self._no_rows = np.array([-1], dtype=np.int64)
        self._empty_ptr = np.zeros(1, dtype=np.int64)
        self._empty_idx = np.zeros(1, dtype=np.int32)
        self.cache_top = self.similar_top = self._cache_rows = 0
        self.n_trained_users = self.n_users
        self.live = self.log = None  # live updates (``recsys.serving.live``), if enabled
        self._changed: set = set()  # users whose rows live ratings changed
        if cache_top > 0 and self.n_users * self.n_items * self.n_factors <= cache_budget:
            self._fill_cache(int(cache_top))
        if cache_top > 0 and self.n_items * self.n_items * self.n_factors <= cache_budget:
            self._fill_similar(int(cache_top))
        self.warm()
        if ratings_log is not None:
            from recsys.serving.live import start_live

            start_live(self, ratings_log)

    def _fill_cache(self, top: int) -> None:
        """Every known user's top items (seen ones excluded), by one batched recommend_many.

        Requests for at most ``top`` items then cost a slice. Scores equal those of
        ``FunkSVD.recommend_many``; they may differ from the one-user path in the last bit.
        """
        top = min(top, self.n_items)
        ids, scores = self.model.recommend_many(self.state.user_map.ids, n=top,
                                                exclude_seen=True)
        self._cache_ids, self._cache_scores = ids, scores
        self._cache_len = np.isfinite(scores).sum(axis=1).tolist()
        self.cache_top, self._cache_rows = top, self.n_users

    def _fill_similar(self, top: int, chunk: int = 1024) -> None:
        """Every item's most similar items, by blocks of the item-item cosine matrix.

        The similarities are the same quotients as ``similar``'s; only the dot products
        come from a matrix product, so they may differ from it in the last bit.
        """
        top = min(top, self.n_items - 1)
        if top < 1:
            return
        ids = np.empty((self.n_items, top), dtype=np.int64)
        sims = np.empty((self.n_items, top), dtype=np.float64)
        no_rows = np.full(chunk, -1, dtype=np.int64)
        for start in range(0, self.n_items, chunk):
            stop = min(start + chunk, self.n_items)
            block = (self.Q64[start:stop] @ self.Q64.T) / (self.norms[start:stop, None]
                                                           * self.norms[None, :])
            block[np.arange(stop - start), np.arange(start, stop)] = np.nan
            top_n_rows(block, top, no_rows[:stop - start], self._empty_ptr, self._empty_idx,
                       False, ids[start:stop], sims[start:stop])
        self._similar_len = (ids >= 0).sum(axis=1).tolist()
        self._similar_ids = np.asarray(self.item_ids, dtype=object)[np.maximum(ids, 0)]
        self._similar_sims = sims
        self.similar_top = top

    # ------------------------------------------------------------------ ids

    def user_index(self, raw) -> int:
        """Index of a raw user id (text from a URL is read as the map's id type); -1 if unknown."""
        return self._lookup(self._user_index, self._int_users, raw)

    def item_index(self, raw) -> int:
        return self._lookup(self._item_index, self._int_items, raw)

    @staticmethod
    def _lookup(table, integer, raw) -> int:
        if integer:
            if not isinstance(raw, int) or isinstance(raw, bool):
                raw = _as_int(raw)
        elif not isinstance(raw, str):
            raw = str(raw)
        return table.get(raw, -1)

    # ------------------------------------------------------------------ answers

    def warm(self) -> None:
        """Run every kernel once, so numba compiles (or loads its cache) now."""
        if self.n_users:
            self.recommend(0, 1, True)
        if self.n_items > 1:
            self.similar(0, 1)
        self.predict([0], [0])

    def recommend(self, u: int, n: int, exclude_seen: bool, allowed=None
                  ) -> tuple[list, list]:
        """Top-n (item ids, scores) for user index u (-1: unknown user, popular items).

        ``allowed``: a mask of the items that may be recommended (None: all); with one,
        the precomputed top items are never used, and fewer candidates than n give a
        shorter list.
        """
        n = min(n, self.n_items)
        if u < 0:
            top = self.popular if allowed is None else self.popular[allowed[self.popular]]
            top = top[:n]
            return [self.item_ids[i] for i in top.tolist()], self.unknown_scores[top].tolist()
        if (allowed is None and exclude_seen and n <= self.cache_top and u < self._cache_rows
                and u not in self._changed):
            n = min(n, self._cache_len[u])
            return self._cache_ids[u, :n].tolist(), self._cache_scores[u, :n].tolist()
        P, user_bias = self.P, self.user_bias  # one pair: live updates may swap them
        scores = np.empty((1, self.n_items), dtype=P.dtype)
        np.matmul(P[u:u + 1], self.QT, out=scores)
        scores += self.base  # (p·q + base) + b_u: the same sums as FunkSVD.recommend_many
        scores += user_bias[u]
        if exclude_seen:  # NaN scores are skipped by top_n_rows: cheaper than its search
            if u < self.n_trained_users:
                scores[0, self.seen_idx[self.seen_ptr[u]:self.seen_ptr[u + 1]]] = np.nan
            if u in self._changed:
                scores[0, self.live.seen_extra(u)] = np.nan
        if allowed is not None:
            scores[0, ~allowed] = np.nan
        return self._top(scores, n, self._no_rows, self._empty_ptr, self._empty_idx, False)

    def similar(self, i: int, n: int) -> tuple[list, list]:
        """The n items closest to item index i in cosine of the factors."""
        if n <= self.similar_top:
            n = min(n, self._similar_len[i])
            return self._similar_ids[i, :n].tolist(), self._similar_sims[i, :n].tolist()
        sims = (self.Q64 @ self.Q64[i]) / (self.norms * self.norms[i])
        sims[i] = np.nan
        return self._top(sims[None, :], min(n, self.n_items - 1), self._no_rows,
                         self._empty_ptr, self._empty_idx, False)

    def _top(self, scores, n, rows, ptr, idx, exclude) -> tuple[list, list]:
        out_idx = np.full((1, n), -1, dtype=np.int64)
        out_score = np.full((1, n), -np.inf, dtype=scores.dtype)
        top_n_rows(scores, n, rows, ptr, idx, exclude, out_idx, out_score)
        keep = out_idx[0] >= 0
        ids = self.item_ids
        return [ids[j] for j in out_idx[0][keep].tolist()], out_score[0][keep].tolist()

    def predict(self, u_idx, i_idx) -> list:
        """Predicted ratings for index pairs (-1 entries fall back to biases)."""
        from recsys.kernels.cpu.predict import predict_pairs

        f = self.state.factors
        P, user_bias = self.P, self.user_bias  # the live rows, where there are any
        k = self.state.rating_factors  # a hybrid predicts from its rating part's columns
        out = np.empty(len(u_idx), dtype=P.dtype)
        dt = P.dtype.type
        lo, hi = self.state.rating_scale
        predict_pairs(np.ascontiguousarray(u_idx, dtype=np.int64),
                      np.ascontiguousarray(i_idx, dtype=np.int64), f.mu, user_bias,
                      f.item_bias, P, f.item_factors, P.shape[1] if k is None else k,
                      dt(lo), dt(hi), out)
        return out.tolist()

    def title(self, i: int):
        return None if self.titles is None else self.titles[i]

    def describe(self) -> dict:
        """What GET /model reports: parameters, counts, training date, format version."""
        m = self.manifest
        return {
            "path": self.path,
            "loaded_at": self.loaded_at,
            "format": m.get("format"),
            "format_version": m.get("format_version"),
            "trained_at": m.get("created"),
            "params": self.model.get_params(),
            # the γ trained with (params may say 'auto'); None for models without one
            "reg": self.model.report_.reg,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "n_factors": self.n_factors,
            "mu": float(self.state.factors.mu),
            "rating_scale": list(self.state.rating_scale),
            "training": self.model.report_.summary or m.get("training", {}),
            "epochs": len(self.model.report_.history),
            "live": None if self.live is None else {
                "ratings": self.live.count, "through": self.live.through,
                "users_changed": len(self._changed), "new_users": len(self.live.new_users),
                "log": str(self.log.path)},
        }


def load_served(load, path, source=None, **options) -> Served:
    """``Served`` for the model file at ``path``, reported as ``source`` (default: path).

    Whatever goes wrong (a damaged file, an exception of any class from the loader or
    while precomputing) is raised as one ``ModelError`` with a one-line message.
    """
    source = path if source is None else source
    start = time.perf_counter()
    try:
        served = Served(load(path), source, **options)
        served.load_seconds = time.perf_counter() - start
        return served
    except ModelError as exc:  # name the model file, not the copy read (a snapshot)
        if str(path) == str(source):
            raise
        raise ModelError(str(exc).replace(str(path), str(source))) from exc
    except Exception as exc:  # not only RecsysError: a file must never crash a reload
        text = " ".join(str(exc).split()) or "no details"
        raise ModelError(f"{source}: does not load ({type(exc).__name__}: {text})") from exc


class ModelHolder:
    """The model being served; ``reload`` swaps in a new one or leaves the old one serving.

    Readers take ``holder.current`` once per request and use only that object. A reload
    loads and warms the new model completely, then replaces the reference in one
    assignment; a file that fails to load, whatever the exception, raises ``ModelError``
    and changes nothing. ``worker`` is this process's id, reported by /health.
    """

    shared = False  # one process; ``recsys.serving.generations.SharedHolder``: N workers

    def __init__(self, path, loader=None, **options):
        from recsys.models.registry import load

        self.path = Path(path)
        self._load = loader or load
        self._options = options  # passed on to Served: cache_top, cache_budget
        self._lock = threading.Lock()
        self.worker = os.getpid()
        self.generation = 1
        self.current = load_served(self._load, self.path, **options)

    def reload(self) -> Served:
        with self._lock:  # one reload at a time; readers never wait for it
            fresh = load_served(self._load, self.path, **self._options)
            self.current = fresh
            self.generation += 1
            settle()
            return fresh


def settle() -> None:
    """Keep a model just swapped in out of the cyclic garbage collector's passes (the
    server's app freezes what it loaded at startup likewise; refcounting still frees
    an old model once the last request holding it has finished)."""
    gc.freeze()
