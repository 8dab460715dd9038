"""Every train/test split, one implementation each: random holdout, k-fold, per user, by
time, ml-100k's own, and the held-out shares that training itself takes (early stopping,
``reg='auto'``).

Every split works on row indices and returns ``(train, test)`` pairs of ``Ratings``. The
test side keeps the full id maps (``Ratings.subset``), so the same raw id has the same
index on both sides; ``compact_train=True`` trims the training side's maps to the ids it
holds, so a user or item seen only in the test part is unknown to a model, as it would be
in use (cross-validation does this). All randomness comes from
``np.random.default_rng(seed)``: the same seed and data give the same split, whichever
command or function asks for it (``recsys split -m kfold`` and ``recsys cv`` use the same
folds).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recsys.data.ratings import Ratings
from recsys.errors import DataError, RecsysError

ML100K_FOLDS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")
#: The five disjoint 80/20 folds of ml-100k.
UFOLDS = ML100K_FOLDS[:5]


def _rng(seed):
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _check_fraction(fraction: float) -> None:
    if not 0 < fraction < 1:
        raise RecsysError(f"the test fraction must be between 0 and 1, not {fraction}")


def _pair(ratings: Ratings, test_mask: np.ndarray, compact_train: bool = False
          ) -> tuple[Ratings, Ratings]:
    train = ratings.subset(np.flatnonzero(~test_mask))
    return (train.compact() if compact_train else train), \
        ratings.subset(np.flatnonzero(test_mask))


def holdout(ratings: Ratings, fraction: float = 0.2, seed=0, compact_train: bool = False
            ) -> tuple[Ratings, Ratings]:
    """A random ``fraction`` of the ratings (rounded, at least one) for testing, the rest
    for training."""
    _check_fraction(fraction)
    n = len(ratings)
    mask = np.zeros(n, dtype=bool)
    mask[_rng(seed).permutation(n)[: max(1, int(round(n * fraction)))]] = True
    return _pair(ratings, mask, compact_train)


def fold_ids(n: int, k: int, seed=0) -> np.ndarray:
    """Fold number (0..k-1) of each of ``n`` rows: a random permutation of the rows cut
    into k consecutive parts (``np.array_split``), so fold sizes differ by at most one."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 2 <= k <= max(n, 2):
        raise RecsysError(f"k-fold needs 2 <= k <= number of ratings ({n}), not {k!r}")
    if n < k:
        raise RecsysError(f"{n} ratings cannot make {k} folds")
    order = _rng(seed).permutation(n)
    folds = np.empty(n, dtype=np.int32)
    for f, part in enumerate(np.array_split(order, k)):
        folds[part] = f
    return folds


def kfold(ratings: Ratings, k: int = 5, seed=0, compact_train: bool = False
          ) -> list[tuple[Ratings, Ratings]]:
    """k (train, test) pairs; the test sets are disjoint and together hold every rating."""
    folds = fold_ids(len(ratings), k, seed)
    return [_pair(ratings, folds == f, compact_train) for f in range(k)]


def split_off(ratings: Ratings, fraction: float, seed: int, stream: int = 1
              ) -> tuple[Ratings, Ratings]:
    """(rest, held out) with ``fraction`` of the ratings (truncated, at least one) held
    out, for training's own use: early stopping takes stream 1, ``reg='auto'`` stream 2,
    so the two never take the same share for a seed. Both sides keep the id maps."""
    from recsys.kernels.cpu.rng import stream_seed
    from recsys.kernels.cpu.sample import held_out_mask

    n = len(ratings)
    n_out = min(n, max(1, int(n * fraction)))
    held = held_out_mask(n_out, np.uint64(stream_seed(int(seed), int(stream), 0)),
                         np.empty(n, dtype=np.bool_))
    return ratings.split(held)


def _user_rank(ratings: Ratings, tiebreak: np.ndarray):
    """Rows sorted by (user, tiebreak, row); each row's rank within its user from the end,
    and its user's rating count."""
    order = np.lexsort((tiebreak, ratings.users))
    counts = np.bincount(ratings.users, minlength=ratings.n_users)
    ends = np.cumsum(counts)
    rank_from_end = np.empty(len(ratings), dtype=np.int64)
    rank_from_end[order] = ends[ratings.users[order]] - 1 - np.arange(len(ratings))
    return rank_from_end, counts


def per_user(ratings: Ratings, fraction: float | None = None, last_n: int | None = None,
             seed=0) -> tuple[Ratings, Ratings]:
    """Per-user holdout: each user's ``fraction`` of ratings (random) or ``last_n`` latest
    ratings (by timestamp, file order among equal times) go to the test set.

    Every user keeps at least one rating in training: a user with c ratings gives at most
    c - 1 to the test set, so no test user is unknown to the model.
    """
    if (fraction is None) == (last_n is None):
        raise RecsysError("give either a test fraction or a number of latest ratings per user")
    if last_n is not None:
        if last_n < 1:
            raise RecsysError(f"the number of latest ratings must be at least 1, not {last_n}")
        if ratings.timestamps is None:
            raise DataError("a split by time needs timestamps; the file has none",
                            ratings.source)
        rank, counts = _user_rank(ratings, ratings.timestamps)
        n_test = np.minimum(last_n, counts - 1)
    else:
        _check_fraction(fraction)
        rank, counts = _user_rank(ratings, _rng(seed).random(len(ratings)))
        n_test = np.minimum(np.floor(counts * fraction + 0.5).astype(np.int64), counts - 1)
    mask = rank < n_test[ratings.users]
    return _pair(ratings, mask)


def temporal(ratings: Ratings, fraction: float | None = None, at: int | None = None
             ) -> tuple[Ratings, Ratings]:
    """A global cut in time: ratings at or after ``at`` (a Unix time) are the test set; or,
    with ``fraction``, the latest ``fraction`` of all ratings (file order among equal times).
    """
    if ratings.timestamps is None:
        raise DataError("a split by time needs timestamps; the file has none", ratings.source)
    if (fraction is None) == (at is None):
        raise RecsysError("give either a test fraction or a cut time")
    if at is not None:
        return _pair(ratings, ratings.timestamps >= at)
    _check_fraction(fraction)
    n = len(ratings)
    order = np.argsort(ratings.timestamps, kind="stable")
    mask = np.zeros(n, dtype=bool)
    mask[order[n - int(round(n * fraction)):]] = True
    return _pair(ratings, mask)


@dataclass
class Dropped:
    """What ``keep_known`` removed from a test set."""

    ratings: int = 0
    users: int = 0
    items: int = 0

    def __str__(self) -> str:
        return (f"dropped {self.ratings:,} test ratings of {self.users:,} users and "
                f"{self.items:,} items that do not appear in training")


def _present(test_ids: np.ndarray, train_codes: np.ndarray, id_map) -> np.ndarray:
    """For each of ``test_ids``, whether it occurs among ``train_codes`` (indices of
    ``id_map``)."""
    seen = np.bincount(train_codes, minlength=len(id_map)) > 0
    idx = id_map.indices(test_ids)
    return (idx >= 0) & seen[np.maximum(idx, 0)]


def keep_known(train: Ratings, test: Ratings) -> tuple[Ratings, Dropped]:
    """The test ratings whose user and item both occur in training, and what was dropped."""
    user_ok = _present(test.user_map.ids, train.users, train.user_map)
    item_ok = _present(test.item_map.ids, train.items, train.item_map)
    keep = user_ok[test.users] & item_ok[test.items]
    test_users_seen = np.bincount(test.users, minlength=test.n_users) > 0
    test_items_seen = np.bincount(test.items, minlength=test.n_items) > 0
    dropped = Dropped(int((~keep).sum()), int((test_users_seen & ~user_ok).sum()),
                      int((test_items_seen & ~item_ok).sum()))
    return test.subset(np.flatnonzero(keep)), dropped


def ml100k_folds(folder, names=ML100K_FOLDS) -> dict[str, tuple[Ratings, Ratings]]:
    """The official ml-100k splits: u1..u5 (five disjoint 80/20 folds) and ua, ub (ten
    ratings per user in test), read from ``<name>.base`` and ``<name>.test`` in ``folder``."""
    from recsys.data.readers import read_ratings

    folder = Path(folder)
    if folder.is_file():
        folder = folder.parent
    out = {}
    for name in names:
        if name not in ML100K_FOLDS:
            raise RecsysError(f"unknown ml-100k fold {name!r}; known: {', '.join(ML100K_FOLDS)}")
        base, test = folder / f"{name}.base", folder / f"{name}.test"
        if not base.is_file():
            raise DataError("ml-100k fold file not found (is this the ml-100k folder?)", base)
        out[name] = (read_ratings(base), read_ratings(test))
    return out


def write_split(ratings: Ratings, path) -> None:
    """Write ratings as ``user,item,rating[,timestamp]`` CSV, atomically."""
    write_splits([(ratings, path)])


def write_splits(parts) -> None:
    """Write each (ratings, path) of ``parts`` as CSV: all the files or none (a full disk
    on the last file leaves every earlier target as it was)."""
    from recsys.atomic import atomic_write_many

    parts = list(parts)
    with atomic_write_many([path for _, path in parts], "w", encoding="utf-8",
                           newline="") as handles:
        for (ratings, _), fh in zip(parts, handles, strict=True):
            ratings.to_dataframe().to_csv(fh, index=False, float_format="%g")
