"""LIBMF's text model format (also read by cuMF_SGD): export and import.

The format is a header ``f <loss> / m <users> / n <items> / k <factors> / b <mean>`` and one
line per row, ``p<i> T v_1 ... v_k`` for users and ``q<j> T ...`` for items (``F`` and
zeros for a row without ratings). LIBMF predicts p_u·q_i for known rows and b otherwise,
with no biases, so recsys's mu + b_u + b_i + p_u·q_i is written with two more columns:
p' = [p_u, mu + b_u, 1], q' = [q_i, 1, b_i], b = mu (p'·q' is the same prediction, before
clipping). Row i is recsys's index i; the raw ids go beside the model, one a line, in
``<path>.user-ids`` and ``<path>.item-ids``. An imported model has those ids when the files
are there, else LIBMF's own 0-based indices; its factors are LIBMF's, with one more column
(−b for users, 1 for items) and mu = b, so known pairs get p·q and unknown ones b, as in
LIBMF. A model whose predictions use only its leading factor columns (HybridMF) is written
as those: LIBMF's predictions are its ratings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recsys.atomic import atomic_write_many
from recsys.data.ratings import IdMap
from recsys.errors import ModelError
from recsys.state import Factors, FactorState, Lineage

ID_SUFFIXES = (".user-ids", ".item-ids")


def write_libmf(state: FactorState, path) -> list[Path]:
    """Write ``state`` as a LIBMF model at ``path`` and its id files; returns the paths."""
    f = state.rating_part()
    mu = float(f.mu)
    P = np.hstack([f.user_factors, (f.user_bias + f.mu)[:, None],
                   np.ones((state.n_users, 1), dtype=f.user_factors.dtype)])
    Q = np.hstack([f.item_factors, np.ones((state.n_items, 1), dtype=f.item_factors.dtype),
                   f.item_bias[:, None]])
    path = Path(path)
    targets = [path, *(Path(f"{path}{suffix}") for suffix in ID_SUFFIXES)]
    with atomic_write_many(targets, "w", encoding="utf-8", newline="\n") as (model, users,
                                                                            items):
        model.write(f"f 0\nm {len(P)}\nn {len(Q)}\nk {P.shape[1]}\nb {mu!r}\n")
        for prefix, rows in (("p", P), ("q", Q)):
            for i, row in enumerate(rows):
                model.write(f"{prefix}{i} T " + " ".join(repr(float(v)) for v in row) + "\n")
        for handle, id_map in ((users, state.user_map), (items, state.item_map)):
            handle.writelines(f"{raw}\n" for raw in id_map.to_list())
    return targets


def read_libmf(path, rating_scale=(0.5, 5.0)) -> FactorState:
    """A FactorState from a LIBMF text model (float32 factors; ids from the id files beside
    it when present); raises ``ModelError`` naming the line for anything malformed."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            header = {}
            for key in ("f", "m", "n", "k", "b"):
                line = fh.readline().split()
                if len(line) != 2 or line[0] != key:
                    raise ModelError(f"{path}: not a LIBMF model (expected '{key} <value>' "
                                     f"in the header, found {' '.join(line)[:60]!r})")
                header[key] = line[1]
            m, n, k = int(header["m"]), int(header["n"]), int(header["k"])
            mu = float(header["b"])
            if not (0 < k <= 100_000 and 0 <= m and 0 <= n):
                raise ModelError(f"{path}: LIBMF header claims {m} x {n} x {k}")
            P = _rows(fh, "p", m, k, path, line_no=6)
            Q = _rows(fh, "q", n, k, path, line_no=6 + m)
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: cannot read a LIBMF model ({exc})") from None
    except ValueError as exc:
        raise ModelError(f"{path}: not a LIBMF model ({exc})") from None
    ids = []
    for suffix, count in zip(ID_SUFFIXES, (m, n), strict=True):
        beside = Path(f"{path}{suffix}")
        if beside.is_file():
            raw = beside.read_text(encoding="utf-8").splitlines()
            if len(raw) != count:
                raise ModelError(f"{beside}: {len(raw)} ids for {count} rows")
            ids.append(_ids(raw))
        else:
            ids.append(np.arange(count, dtype=np.int64))
    dtype = np.float32
    # LIBMF adds b only where a row is unknown: mu = b for recsys's fallbacks, and one more
    # column (−b on the users' side, 1 on the items') takes it back off the known pairs
    P = np.hstack([P, np.full((m, 1), -mu, dtype=dtype)])
    Q = np.hstack([Q, np.ones((n, 1), dtype=dtype)])
    factors = Factors(dtype(mu), np.zeros(m, dtype), np.zeros(n, dtype), P, Q)
    empty = (np.zeros(m + 1, dtype=np.int64), np.zeros(0, dtype=np.int32))
    return FactorState(factors, IdMap(ids[0]), IdMap(ids[1]), empty,
                       tuple(float(x) for x in rating_scale), {}, Lineage(None, [
                           {"source": str(path), "imported": "libmf"}]))


def _rows(fh, prefix: str, count: int, k: int, path, line_no: int) -> np.ndarray:
    out = np.zeros((count, k), dtype=np.float32)
    for i in range(count):
        fields = fh.readline().split()
        if len(fields) != k + 2 or fields[0] != f"{prefix}{i}" or fields[1] not in "TF":
            raise ModelError(f"{path}:{line_no + i}: expected '{prefix}{i} T' and {k} values")
        if fields[1] == "T":
            out[i] = np.array(fields[2:], dtype=np.float64)
    if not np.isfinite(out).all():
        raise ModelError(f"{path}: non-finite factors")
    return out


def _ids(raw: list) -> np.ndarray:
    try:
        return np.array([int(x) for x in raw], dtype=np.int64)
    except ValueError:
        return np.array(raw, dtype=str)
