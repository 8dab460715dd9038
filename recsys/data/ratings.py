"""The Ratings container and the IdMap that turns raw ids into dense indices.

Raw ids (integers or strings, as the user's file has them) are used at every public
boundary; dense int32 indices are used inside. This module is the one place where one
becomes the other.

``Ratings.from_raw`` takes its columns as they are, without checks;
``recsys.data.readers.read_ratings`` reads a DataFrame with every check a file gets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # scipy.sparse costs 0.1 s of start-up; only to_csr needs it
    import scipy.sparse as sp


class IdMap:
    """A bijection between raw ids and indices 0..n-1, in the order ids were first seen."""

    __slots__ = ("_index",)

    def __init__(self, ids):
        ids = np.asarray(ids)
        if ids.dtype.kind == "O":
            ids = ids.astype(str)
        index = pd.Index(ids)
        if not index.is_unique:
            raise ValueError("IdMap ids must be unique")
        self._index = index

    @classmethod
    def from_values(cls, raw) -> tuple[IdMap, np.ndarray]:
        """Build a map from a column of raw ids; return it and the int32 codes of the column."""
        codes, uniques = pd.factorize(np.asarray(raw), sort=False)
        return cls(np.asarray(uniques)), codes.astype(np.int32, copy=False)

    @property
    def ids(self) -> np.ndarray:
        """Raw ids, position i holding the id of index i."""
        return self._index.to_numpy()

    @property
    def is_integer(self) -> bool:
        return self._index.dtype.kind in "iu"

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, raw) -> bool:
        return self.index_of(raw) >= 0

    def __eq__(self, other) -> bool:
        return isinstance(other, IdMap) and self._index.equals(other._index)

    def coerce(self, raw) -> np.ndarray:
        """Raw ids as this map's id type: text from a command line or URL becomes an int."""
        arr = np.atleast_1d(np.asarray(raw))
        if self.is_integer and arr.dtype.kind not in "iu":
            return np.array([_as_int(x) for x in arr.tolist()], dtype=object)
        if not self.is_integer and arr.dtype.kind != "U":
            return arr.astype(str)
        return arr

    def indices(self, raw) -> np.ndarray:
        """int64 indices for raw ids; -1 where an id is unknown."""
        return self._index.get_indexer(self.coerce(raw)).astype(np.int64, copy=False)

    def absent_id(self):
        """An id of this map's type that the map does not hold: the smallest int64 (or the
        next free one up) for integer ids, '' (else '\\ufffd0', ...) for text ids. Fills the
        slots of a top-N list that cannot be filled, where a real id would mislead."""
        if self.is_integer:
            candidate = np.iinfo(np.int64).min
            while candidate in self:
                candidate += 1
            return candidate
        candidate, n = "", 0
        while candidate in self:  # (NULs would not do: numpy strips trailing NULs)
            candidate, n = f"\ufffd{n}", n + 1
        return candidate

    def extended(self, raw) -> tuple[IdMap, np.ndarray]:
        """This map grown by the ids of ``raw`` it lacks (appended in the order of ``raw``),
        and the index of every id of ``raw`` in the grown map: known ids keep their
        indices, so a model's rows stay where they are."""
        raw = self.coerce(raw)
        known = self.indices(raw)
        fresh = raw[known < 0]
        if len(fresh) == 0:
            return self, known
        _, first = np.unique(fresh, return_index=True)
        added = fresh[np.sort(first)]
        if self.is_integer:
            added = added.astype(np.int64)
        grown = IdMap(np.concatenate([self.ids, added]) if len(self) else added)
        return grown, grown.indices(raw)

    def index_of(self, raw) -> int:
        return int(self.indices([raw])[0])

    def id_of(self, index: int):
        value = self._index[index]
        return value.item() if hasattr(value, "item") else value

    def to_list(self) -> list:
        return self._index.tolist()


class IdMapBuilder:
    """Builds an IdMap chunk by chunk: ``codes(chunk)`` gives int32 indices in first-seen order.

    The result equals ``IdMap.from_values`` on the whole column, without ever holding the
    whole column of raw ids. Non-negative integer ids up to a modest maximum go through a
    dense lookup table (one array index per id); other ids through a hash (``pd.factorize``
    of the chunk, then a lookup of its distinct ids among those already known).
    """

    _DENSE_LIMIT = 1 << 26  # at most 256 MiB of int32 table

    def __init__(self):
        self._table: np.ndarray | None = None
        self._index: pd.Index | None = None
        self._new: list[np.ndarray] = []  # distinct ids in index order, chunk by chunk
        self._n = 0
        self._rows = 0
        self._dense = True

    def codes(self, values) -> np.ndarray:
        values = np.asarray(values)
        self._rows += len(values)
        if len(values) == 0:
            return np.empty(0, dtype=np.int32)
        if self._dense and values.dtype.kind in "iu":
            lo, hi = int(values.min()), int(values.max())
            if lo >= 0 and hi < min(max(1 << 20, 4 * self._rows), self._DENSE_LIMIT):
                return self._dense_codes(values, hi)
        if self._dense:
            self._dense, self._table = False, None
            self._index = pd.Index(self._ids()) if self._n else None
        return self._hash_codes(values)

    def _dense_codes(self, values, hi: int) -> np.ndarray:
        table = self._table
        if table is None or len(table) <= hi:
            grown = np.full(max(hi + 1, 2 * (0 if table is None else len(table))), -1,
                            dtype=np.int32)
            if table is not None:
                grown[: len(table)] = table
            self._table = table = grown
        codes = table[values]
        missing = codes < 0
        if missing.any():
            _, fresh = pd.factorize(values[missing], sort=False)  # in first-seen order
            fresh = np.asarray(fresh)
            table[fresh] = np.arange(self._n, self._n + len(fresh), dtype=np.int32)
            self._new.append(fresh.astype(np.int64, copy=False))
            self._n += len(fresh)
            codes = table[values]
        return codes

    def _hash_codes(self, values) -> np.ndarray:
        local, uniques = pd.factorize(values, sort=False)
        uniques = np.asarray(uniques)
        if self._index is None:
            known = np.full(len(uniques), -1, dtype=np.int64)
        else:
            known = self._index.get_indexer(uniques).astype(np.int64, copy=False)
        fresh = known < 0
        if fresh.any():
            count = int(fresh.sum())
            known[fresh] = np.arange(self._n, self._n + count)
            added = uniques[fresh]
            self._new.append(added)
            self._index = pd.Index(added) if self._index is None else \
                self._index.append(pd.Index(added))
            self._n += count
        return known.astype(np.int32)[local]

    def _ids(self) -> np.ndarray:
        if not self._new:
            return np.empty(0, dtype=np.int64)
        kinds = {a.dtype.kind for a in self._new}
        if kinds <= {"i", "u"}:
            return np.concatenate(self._new).astype(np.int64, copy=False)
        return np.concatenate([a.astype(object) for a in self._new])

    def __len__(self) -> int:
        """Distinct ids coded so far."""
        return self._n

    def build(self) -> IdMap:
        return IdMap(self._ids())


def _as_int(value):
    """int(value) for ids like 12, '12' or 12.0; None (never found) for anything else."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    try:
        number = int(str(value).strip())
    except ValueError:
        try:
            as_float = float(value)
        except (TypeError, ValueError):
            return None
        return int(as_float) if as_float.is_integer() else None
    return number


@dataclass
class Ratings:
    """Known ratings as parallel arrays: int32 user and item indices, float32 values.

    ``timestamps`` (int64 seconds) is optional. ``user_map`` and ``item_map`` hold the raw ids;
    ``item_titles`` is filled by readers that find MovieLens item metadata.
    """

    users: np.ndarray
    items: np.ndarray
    values: np.ndarray
    user_map: IdMap
    item_map: IdMap
    timestamps: np.ndarray | None = None
    source: str | None = None
    item_titles: dict = field(default_factory=dict)

    def __post_init__(self):
        self.users = np.ascontiguousarray(self.users, dtype=np.int32)
        self.items = np.ascontiguousarray(self.items, dtype=np.int32)
        self.values = np.ascontiguousarray(self.values, dtype=np.float32)
        if self.timestamps is not None:
            self.timestamps = np.ascontiguousarray(self.timestamps, dtype=np.int64)
        n = len(self.values)
        if len(self.users) != n or len(self.items) != n:
            raise ValueError("users, items and values must have the same length")
        if self.timestamps is not None and len(self.timestamps) != n:
            raise ValueError("timestamps must have one entry per rating")

    @classmethod
    def from_raw(cls, users, items, values, timestamps=None, source=None) -> Ratings:
        """Build from raw id columns (any integers or strings) and rating values."""
        user_map, u = IdMap.from_values(users)
        item_map, i = IdMap.from_values(items)
        ts = None if timestamps is None else np.asarray(timestamps)
        return cls(u, i, np.asarray(values, dtype=np.float32), user_map, item_map, ts, source)

    def __len__(self) -> int:
        return len(self.values)

    @property
    def n_users(self) -> int:
        return len(self.user_map)

    @property
    def n_items(self) -> int:
        return len(self.item_map)

    @property
    def raw_users(self) -> np.ndarray:
        return self.user_map.ids[self.users]

    @property
    def raw_items(self) -> np.ndarray:
        return self.item_map.ids[self.items]

    def subset(self, rows) -> Ratings:
        """The ratings at ``rows`` (mask or indices), keeping both id maps unchanged."""
        ts = None if self.timestamps is None else self.timestamps[rows]
        return Ratings(self.users[rows], self.items[rows], self.values[rows], self.user_map,
                       self.item_map, ts, self.source, self.item_titles)

    def split(self, mask: np.ndarray) -> tuple[Ratings, Ratings]:
        """(the ratings where ``mask`` is False, those where it is True), both keeping the
        id maps: ``subset(~mask), subset(mask)``, each column read once."""
        mask = np.ascontiguousarray(mask, dtype=np.bool_)
        if mask.shape != (len(self),):
            raise ValueError(f"the mask has shape {mask.shape}, not ({len(self)},)")
        held = int(np.count_nonzero(mask))
        columns = (self.users, self.items, self.values, self.timestamps)
        rest, kept = zip(*[(None, None) if c is None else _split(c, mask, held)
                           for c in columns], strict=True)
        return (Ratings(*rest[:3], self.user_map, self.item_map, rest[3], self.source,
                        self.item_titles),
                Ratings(*kept[:3], self.user_map, self.item_map, kept[3], self.source,
                        self.item_titles))

    def onto(self, user_map: IdMap, item_map: IdMap) -> Ratings:
        """The same ratings indexed by other maps that hold all of their ids (grown maps of
        a model being continued)."""
        users = user_map.indices(self.user_map.ids)[self.users]
        items = item_map.indices(self.item_map.ids)[self.items]
        if (users < 0).any() or (items < 0).any():
            raise ValueError("the maps lack some ids of these ratings")
        return Ratings(users, items, self.values, user_map, item_map, self.timestamps,
                       self.source, self.item_titles)

    def compact(self) -> Ratings:
        """The same ratings with id maps trimmed to the users and items that occur."""
        ts = None if self.timestamps is None else self.timestamps
        out = Ratings.from_raw(self.raw_users, self.raw_items, self.values, ts, self.source)
        out.item_titles = self.item_titles
        return out

    def to_csr(self, dtype=np.float32) -> sp.csr_matrix:
        """Users x items sparse matrix of the ratings."""
        import scipy.sparse as sp

        return sp.csr_matrix((self.values.astype(dtype, copy=False), (self.users, self.items)),
                             shape=(self.n_users, self.n_items))

    def to_dataframe(self) -> pd.DataFrame:
        cols = {"user": self.raw_users, "item": self.raw_items, "rating": self.values}
        if self.timestamps is not None:
            cols["timestamp"] = self.timestamps
        return pd.DataFrame(cols)

    def digest(self) -> str:
        """SHA-256 of the ratings as a model sees them: the (user, item, rating) rows in
        order and the raw ids of both maps. Equal for equal data, whatever the source."""
        import hashlib

        h = hashlib.sha256()
        for array in (self.users, self.items, self.values):
            h.update(np.ascontiguousarray(array).data)
        for id_map in (self.user_map, self.item_map):
            ids = id_map.ids
            ids = ids.astype(np.int64) if id_map.is_integer else ids.astype(str)
            h.update(ids.dtype.str.encode())
            h.update(np.ascontiguousarray(ids).data)
        return h.hexdigest()

    def lineage_entry(self, digest: str | None = None) -> dict:
        """What a model's lineage records of the data it was trained on (``digest``: this
        data's ``digest()``, where it was computed already)."""
        return {"sha256": self.digest() if digest is None else digest,
                "ratings": int(len(self)),
                "users": int(self.n_users), "items": int(self.n_items),
                "source": self.source}

    def summary(self) -> dict:
        """Counts and scale, as stored in a model's manifest."""
        n = len(self)
        return {
            "ratings": int(n),
            "users": int(self.n_users),
            "items": int(self.n_items),
            "min_rating": float(self.values.min()) if n else None,
            "max_rating": float(self.values.max()) if n else None,
            "mean_rating": float(self.values.mean(dtype=np.float64)) if n else None,
            "source": self.source,
        }


def _split(column: np.ndarray, mask: np.ndarray, held: int):
    """(column[~mask], column[mask]) in one parallel pass, into arrays numpy allocates
    (``recsys.kernels.cpu.counting``)."""
    from recsys.kernels.cpu.counting import split_by_mask

    column = np.ascontiguousarray(column)
    rest = np.empty(len(column) - held, dtype=column.dtype)
    kept = np.empty(held, dtype=column.dtype)
    split_by_mask(column, mask, rest, kept)
    return rest, kept
