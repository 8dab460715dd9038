"""MovieLens-shaped synthetic ratings, for tests, benchmarks and ground-truth checks.

Users and items get Zipf-like activity and popularity, ratings come from a known low-rank
model plus Gaussian noise: r = mu + b_u + b_i + u·v + ε, ε ~ N(0, σ²). With
``scale=None`` the ratings are left continuous, so the best any model can reach on
held-out ratings is RMSE ≈ σ. Everything is vectorized: 25M ratings take seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys.data.ratings import IdMap, Ratings
from recsys.kernels.cpu.predict import predict_pairs
from recsys.kernels.cpu.sample import distinct_items

SCALES = {"1-5": (1.0, 5.0, 1.0), "half": (0.5, 5.0, 0.5), "none": None}

#: Shapes of the public MovieLens releases (users, items, ratings) and of Netflix.
SHAPES = {
    "ml-100k": (943, 1_682, 100_000),
    "ml-1m": (6_040, 3_706, 1_000_209),
    "ml-10m": (69_878, 10_677, 10_000_054),
    "ml-20m": (138_493, 26_744, 20_000_263),
    "ml-25m": (162_541, 59_047, 25_000_095),
    "netflix": (480_189, 17_770, 100_480_507),
}


@dataclass
class SynthSpec:
    n_users: int = 6_040
    n_items: int = 3_706
    n_ratings: int = 1_000_000
    rank: int = 10
    noise: float = 0.5
    scale: str = "1-5"  # '1-5', 'half' (0.5 steps) or 'none' (continuous: ground truth)
    user_skew: float = 0.6  # Zipf exponents of user activity and item popularity
    item_skew: float = 0.9
    seed: int = 0


def _zipf_weights(n: int, skew: float, rng) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** skew
    weights = weights[rng.permutation(n)]
    return weights / weights.sum()


class _Sampler:
    """Draws indices with given weights: inverse CDF with a guide table, so each draw costs
    O(1) on average instead of a binary search (same results as ``searchsorted``)."""

    def __init__(self, weights: np.ndarray):
        cdf = np.cumsum(weights)
        self.cdf = cdf / cdf[-1]
        self.guide = np.searchsorted(self.cdf, np.arange(4 * len(cdf)) / (4 * len(cdf)),
                                     side="right")

    def draw(self, size: int, rng) -> np.ndarray:
        u = rng.random(size)
        idx = self.guide[(u * len(self.guide)).astype(np.int64)]
        todo = np.flatnonzero(self.cdf[idx] <= u)
        while len(todo):  # walk to the first cdf entry above u
            idx[todo] += 1
            todo = todo[self.cdf[idx[todo]] <= u[todo]]
        return idx


def _user_counts(spec: SynthSpec, weights: np.ndarray, rng) -> np.ndarray:
    """Ratings per user: one each, the rest spread by activity, none above half the items."""
    cap = max(spec.n_items // 2, 1)
    counts = np.ones(spec.n_users, dtype=np.int64)
    left = spec.n_ratings - spec.n_users
    while left > 0:
        open_ = counts < cap
        w = np.where(open_, weights, 0.0)
        counts += rng.multinomial(left, w / w.sum())
        counts = np.minimum(counts, cap)
        left = spec.n_ratings - int(counts.sum())
    return counts


def _sample_pairs(spec: SynthSpec, rng) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (user, item) pairs drawn by activity x popularity, every user present."""
    n_cells = spec.n_users * spec.n_items
    if spec.n_ratings > 0.5 * n_cells:
        raise ValueError(f"{spec.n_ratings:,} ratings do not fit sparsely in "
                         f"{spec.n_users:,} x {spec.n_items:,}")
    if spec.n_ratings < spec.n_users:
        raise ValueError("need at least one rating per user")
    # every user rates at least one item (in MovieLens each has at least 20)
    counts = _user_counts(spec, _zipf_weights(spec.n_users, spec.user_skew, rng), rng)
    by_item = _Sampler(_zipf_weights(spec.n_items, spec.item_skew, rng))
    items = np.empty(spec.n_ratings, dtype=np.int32)
    distinct_items(counts, by_item.cdf, by_item.guide, rng, items)
    # rows come grouped by user, as in the MovieLens files
    return np.repeat(np.arange(spec.n_users, dtype=np.int32), counts), items


def generate(spec: SynthSpec | None = None, **overrides) -> tuple[Ratings, dict]:
    """Generate ratings; returns them and the true parameters (mu, biases, factors, σ)."""
    spec = spec or SynthSpec()
    for name, value in overrides.items():
        setattr(spec, name, value)
    rng = np.random.default_rng(spec.seed)
    users, items = _sample_pairs(spec, rng)
    mu = 3.5
    bu = rng.normal(0, 0.3, spec.n_users)
    bi = rng.normal(0, 0.4, spec.n_items)
    U = rng.normal(0, 1 / np.sqrt(np.sqrt(spec.rank)), (spec.n_users, spec.rank))
    V = rng.normal(0, 1 / np.sqrt(np.sqrt(spec.rank)), (spec.n_items, spec.rank))
    signal = np.empty(len(users), dtype=np.float64)
    # r = mu + b_u + b_i + (U_u·V_i) / 2: the prediction kernel, with P = U/√2 and Q = V/√2
    predict_pairs(users, items, mu, bu, bi, U * np.sqrt(0.5), V * np.sqrt(0.5), spec.rank,
                  -np.inf, np.inf, signal)
    values = rng.normal(0, spec.noise, len(users))
    values += signal
    scale = SCALES[spec.scale]
    if scale is not None:
        lo, hi, step_size = scale
        values /= step_size
        np.round(values, out=values)
        values *= step_size
        np.clip(values, lo, hi, out=values)
    start = 874_724_710  # MovieLens 100k's first timestamp (1997-09-20)
    stamps = start + rng.integers(0, 3 * 365 * 86_400, len(users))
    ratings = Ratings(users, items, values.astype(np.float32),
                      IdMap(np.arange(1, spec.n_users + 1)), IdMap(np.arange(1, spec.n_items + 1)),
                      stamps, source=f"synthetic {spec}")
    truth = {"mu": mu, "user_bias": bu, "item_bias": bi, "U": U * np.sqrt(0.5),
             "V": V * np.sqrt(0.5), "noise": spec.noise, "signal": signal}
    return ratings, truth


def write_csv(ratings: Ratings, path, header: bool = True) -> None:
    """Write ratings as ``user,item,rating,timestamp`` CSV, atomically.

    Integer ids and ratings on a half-star grid (the usual case) go through a compiled
    formatter, a million rows at a time; anything else through pandas.
    """
    from recsys.atomic import atomic_write

    halves = ratings.values.astype(np.float64) * 2
    exact = ratings.user_map.is_integer and ratings.item_map.is_integer and \
        bool(np.all(halves == np.round(halves)))
    if not exact:
        frame = ratings.to_dataframe()
        with atomic_write(path, "w", encoding="utf-8", newline="") as fh:
            frame.to_csv(fh, index=False, header=header, float_format="%g")
        return
    from recsys.kernels.cpu.text import empty_buffer, format_rows

    with_stamps = ratings.timestamps is not None
    stamps = ratings.timestamps if with_stamps else np.zeros(1, dtype=np.int64)
    step = 1 << 20
    buffer = empty_buffer(step)
    user_ids, item_ids = ratings.user_map.ids, ratings.item_map.ids
    with atomic_write(path, "wb") as fh:
        if header:
            fh.write(b"user,item,rating" + (b",timestamp" if with_stamps else b"") + b"\n")
        for s in range(0, len(ratings), step):
            rows = slice(s, s + step)
            used = format_rows(user_ids[ratings.users[rows]], item_ids[ratings.items[rows]],
                               halves[rows].astype(np.int64),
                               stamps[rows] if with_stamps else stamps, with_stamps, buffer)
            fh.write(memoryview(buffer)[:used])
