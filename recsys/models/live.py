"""Live updates: ratings that arrive after training re-solve their user's row at once.

The item factors Q, item biases and mu stay fixed, as in the fold-in
(``recsys.models.foldin``). For a user with m_0 training ratings of the items S (the
seen index), trained row x_0 = [p_u; b_u], and new ratings y_N of the items N, the row
becomes the minimiser of

    (x − x_0)ᵀ M_0 (x − x_0) + Σ_{j∈N} (y_j − a_j·x)² + xᵀ (D(m_0 + m_N) − D(m_0)) x,

    M_0 = A_Sᵀ A_S + D(m_0),   A = [Q | 1],   y_j = r_j − mu − b_j,

where D(m) = diag(λ_p, ..., λ_p, λ_b) holds the model's fold-in penalties for a user with
m ratings (``_fold_in_penalties``: reg·m and reg_bias·m for FunkSVD). The first term is
the user's training evidence, kept as the curvature of their share of the loss about
x_0; the ratings' own values are not stored in a model. Setting the gradient to zero:

    (M_0 + A_Nᵀ A_N + D(m_0 + m_N) − D(m_0)) x = M_0 x_0 + A_Nᵀ y_N.

If x_0 is the fold-in of the old ratings (M_0 x_0 = A_Sᵀ y_S), this is exactly the
fold-in of old and new ratings together (recursive least squares); for a new user
(m_0 = 0, x_0 = 0) it is the fold-in of the new ratings. Every solve starts again from
the trained x_0 with all the user's new ratings (the latest of a repeated item counts),
so the result does not depend on how the ratings were batched, and a replay of the log
gives the same rows bit for bit. A new rating of an item rated in training counts
beside the old one, whose value the model no longer has. Solved in float64.
"""

from __future__ import annotations

import math

import numpy as np

from recsys.models.foldin import fold_in
from recsys.state import Factors, FactorState

_GROWTH = 1024  # spare rows allocated for new users at a time (then doubling)


def supports_live_updates(model) -> bool:
    """Whether ``model`` re-solves rows by least squares (rating models and baselines)."""
    try:
        model._fold_in_penalties(1)
    except NotImplementedError:
        return False
    return True


def live_solve(Q, item_bias, mu, seen_items, x0, b0, penalties, items, values):
    """(p, b) minimising the module docstring's objective, for float64 inputs.

    ``penalties(m)`` gives (λ_p, λ_b) or None; ``seen_items`` are the training items."""
    m0, m = len(seen_items), len(items)
    total = penalties(m0 + m)
    if total is None:
        return np.zeros(Q.shape[1]), 0.0
    if m0 == 0:  # a new user: the fold-in itself
        return fold_in(Q, item_bias, mu, items, values, *total)
    k = Q.shape[1]
    before = penalties(m0)
    A0 = np.empty((m0, k + 1))
    A0[:, :k] = Q[seen_items]
    A0[:, k] = 1.0
    M0 = A0.T @ A0
    M0[np.arange(k), np.arange(k)] += before[0]
    M0[k, k] += before[1]
    x0 = np.append(np.asarray(x0, dtype=np.float64), float(b0))
    A = np.empty((m, k + 1))
    A[:, :k] = Q[items]
    A[:, k] = 1.0
    y = np.asarray(values, dtype=np.float64) - float(mu) - item_bias[items]
    M = M0 + A.T @ A
    M[np.arange(k), np.arange(k)] += total[0] - before[0]
    M[k, k] += total[1] - before[1]
    x = np.linalg.solve(M, M0 @ x0 + A.T @ y)
    if not np.isfinite(x).all():
        raise ValueError("the live update produced non-finite factors")
    return x[:k], float(x[k])


class LiveRows:
    """A fitted model's user rows as live ratings change them; the model stays untouched.

    ``P`` and ``user_bias`` are the current rows (the model's own arrays until the first
    change, then a copy with room for new users); ``user_ids`` grows by the new users;
    ``changed`` holds the indices of the users whose rows differ from the model's.
    """

    def __init__(self, model):
        if not supports_live_updates(model):
            raise TypeError(f"{type(model).__name__} models take no live updates (they are "
                            "not fitted per user by least squares): retrain them")
        self.model = model
        state = self.state = model.state_
        f = state.factors
        self.P, self.user_bias = f.user_factors, f.user_bias
        self._own = False
        self.n_users = state.n_users
        self.new_users: list = []            # raw ids of users the model does not know
        self._new_index: dict = {}           # raw id -> index, for those
        self.ratings: dict[int, dict] = {}   # user index -> {item index: rating}
        self.changed: set[int] = set()
        self.through = 0                     # last log sequence number applied
        self.count = 0                       # live ratings applied
        self._Q = f.item_factors.astype(np.float64)
        self._bi = f.item_bias.astype(np.float64)
        self._mu = float(f.mu)
        self._scale = model.fold_in_scale()
        self._int_users = state.user_map.is_integer

    # ------------------------------------------------------------------ ids

    def user_id(self, raw):
        """``raw`` as an id of the model's user type; ValueError if it cannot be one."""
        if self._int_users:
            if isinstance(raw, bool):
                raise ValueError(f"user ids of this model are integers, not {raw!r}")
            if isinstance(raw, int):
                return raw
            text = str(raw).strip()
            if text.lstrip("-").isdigit() and -(2**63) <= int(text) < 2**63:
                return int(text)
            raise ValueError(f"user ids of this model are integers, not {raw!r}")
        return raw if isinstance(raw, str) else str(raw)

    def user_index(self, raw, known: int = -2) -> int:
        """Index of a raw user id (``known``: its index in the model's map, if looked up
        already); -1 if neither the model nor the live ratings know it."""
        if known == -2:
            known = int(self.state.user_map.indices([raw])[0])
        return known if known >= 0 else self._new_index.get(raw, -1)

    # ------------------------------------------------------------------ ratings

    def check(self, rows, item_index) -> list[tuple]:
        """Rows (user, item, rating, ts) checked and normalised: user ids of the model's
        type, known items (``item_index(raw)`` >= 0), finite ratings within the training
        ratings' range. ValueError names the first bad row (``ratings.k: ...``)."""
        out = []
        lo, hi = self._scale if self._scale is not None else (-math.inf, math.inf)
        slack = 1e-6 * max(1.0, abs(lo) if math.isfinite(lo) else 1.0,
                           abs(hi) if math.isfinite(hi) else 1.0)
        for k, (user, item, rating, ts) in enumerate(rows):
            try:
                user = self.user_id(user)
            except ValueError as exc:
                raise ValueError(f"ratings.{k}: {exc}") from None
            j = item_index(item)
            if j < 0:
                raise ValueError(f"ratings.{k}: unknown item {item!r}: live ratings are for "
                                 "items the model knows (retrain to add items)")
            rating = float(rating)
            if not math.isfinite(rating):
                raise ValueError(f"ratings.{k}: rating must be a finite number, not {rating}")
            if not lo - slack <= rating <= hi + slack:
                raise ValueError(f"ratings.{k}: item {item!r}: rating {rating:g} is outside "
                                 f"the scale of the model's training ratings [{lo:g}, {hi:g}]")
            out.append((user, self.state.item_map.ids[j].item(), rating, ts))
        return out

    def apply(self, entries) -> list[int]:
        """Apply log entries (``recsys.persist.ratings_log.Entry``, in order, already
        checked) with seq > ``through``; returns the indices of the users re-solved."""
        entries = [e for e in entries if e.seq > self.through]
        if not entries:
            return []
        users = [self.user_id(e.user) for e in entries]
        known = self.state.user_map.indices(users)
        items = self.state.item_map.indices([e.item for e in entries])
        touched = []
        for e, user, u, j in zip(entries, users, known.tolist(), items.tolist(), strict=True):
            if j < 0:
                raise ValueError(f"log entry {e.seq}: unknown item {e.item!r}")
            if u < 0:
                u = self._new_index.get(user, -1)
                if u < 0:
                    u = self._add_user(user)
            self.ratings.setdefault(u, {})[j] = e.rating
            touched.append(u)
        solved = list(dict.fromkeys(touched))
        rows = [(u, *self._solve(u)) for u in solved]
        self._own_rows()
        for u, p, b in rows:  # a row of a few hundred floats is written under the GIL
            self.P[u] = p
            self.user_bias[u] = b
        self.changed.update(solved)
        self.through = entries[-1].seq
        self.count += len(entries)
        return solved

    def _solve(self, u: int) -> tuple[np.ndarray, float]:
        state, f = self.state, self.state.factors
        mine = self.ratings[u]
        items = np.fromiter(mine.keys(), dtype=np.int64, count=len(mine))
        values = np.fromiter(mine.values(), dtype=np.float64, count=len(mine))
        order = np.argsort(items, kind="stable")  # a fixed order: the same sums on replay
        items, values = items[order], values[order]
        if u < state.n_users:
            ptr, idx = state.seen
            seen = idx[ptr[u]:ptr[u + 1]].astype(np.int64)
            x0, b0 = f.user_factors[u].astype(np.float64), float(f.user_bias[u])
        else:
            seen, x0, b0 = np.zeros(0, dtype=np.int64), None, 0.0
        p, b = live_solve(self._Q, self._bi, self._mu, seen, x0, b0,
                          self.model._fold_in_penalties, items, values)
        dtype = state.dtype
        return p.astype(dtype), dtype.type(b)

    def _own_rows(self) -> None:
        """Copy the model's rows once (with spare room) before the first change."""
        if not self._own:
            self._grow(self.n_users + _GROWTH)
            self._own = True

    def _grow(self, capacity: int) -> None:
        k = self.P.shape[1]
        P = np.zeros((capacity, k), dtype=self.P.dtype)
        bu = np.zeros(capacity, dtype=self.user_bias.dtype)
        P[:self.n_users] = self.P[:self.n_users]
        bu[:self.n_users] = self.user_bias[:self.n_users]
        self._P_buf, self._bu_buf = P, bu
        self.P, self.user_bias = P[:self.n_users], bu[:self.n_users]

    def _add_user(self, raw) -> int:
        self._own_rows()
        if self.n_users == len(self._P_buf):
            self._grow(2 * len(self._P_buf))
        u = self.n_users
        self.n_users += 1
        # the new row is zero until solved; the views grow before the id is published
        self.P, self.user_bias = self._P_buf[:self.n_users], self._bu_buf[:self.n_users]
        self.new_users.append(raw)
        self._new_index[raw] = u
        return u

    def seen_extra(self, u: int) -> np.ndarray:
        """The items user ``u`` rated live (int32, sorted)."""
        mine = self.ratings.get(u)
        if not mine:
            return np.zeros(0, dtype=np.int32)
        return np.sort(np.fromiter(mine.keys(), dtype=np.int32, count=len(mine)))

    # ------------------------------------------------------------------ a new model

    def to_state(self) -> FactorState:
        """A FactorState with the live rows, the new users and their seen items (the
        lineage is the caller's to set)."""
        from recsys.kernels.cpu.predict import seen_csr

        state, f = self.state, self.state.factors
        user_map, _ = state.user_map.extended(np.asarray(self.new_users, dtype=object)
                                              if self.new_users else [])
        ptr, idx = state.seen
        users = np.repeat(np.arange(state.n_users, dtype=np.int64), np.diff(ptr))
        n_items = max(state.n_items, 1)
        keys = [users * n_items + idx]
        for u, mine in self.ratings.items():
            keys.append(u * n_items + np.fromiter(mine.keys(), dtype=np.int64))
        keys = np.unique(np.concatenate(keys))
        seen = seen_csr((keys // n_items).astype(np.int32), (keys % n_items).astype(np.int32),
                        self.n_users)
        factors = Factors(f.mu, self.user_bias[:self.n_users].copy(), f.item_bias,
                          self.P[:self.n_users].copy(), f.item_factors)
        return FactorState(factors, user_map, state.item_map, seen, state.rating_scale,
                           dict(state.item_titles), state.lineage,
                           unknown_user=state.unknown_user)


def log_entry(entries, source) -> dict:
    """What a model's lineage records of the ratings-log entries folded into it."""
    import hashlib

    digest = hashlib.sha256(b"".join(e.line() for e in entries)).hexdigest()
    return {"kind": "ratings log", "source": str(source), "sha256": digest,
            "ratings": len(entries), "through": entries[-1].seq if entries else 0}


def fold_log(model, entries, source):
    """``model`` with the log ``entries`` applied as the service applies them (each user's
    row re-solved, new users added), its lineage naming the parent and the entries; the
    model's other arrays are shared with the parent."""
    from recsys.state import Lineage

    parent = model.state_
    live = LiveRows(model)
    live.apply(entries)
    state = live.to_state()
    state.lineage = Lineage(parent.digest(), [*parent.lineage.data, log_entry(entries, source)])
    model._set_fitted(state, model.report_)
    return model
