"""The pandas pass: pandas' C parser reads a file in one vectorized pass, chunk by chunk.

Each chunk (a million lines) is checked, its ids coded at once into int32 indices
(``IdMapBuilder``) and its ratings stored as float32, so memory stays near the final
arrays: 12 bytes a rating, 8 more for timestamps. A chunk with anything off hands the file
to the line-by-line pass, which names the line. The output arrays (``_Column``) and the
row estimate are shared with the compiled pass.
"""

from __future__ import annotations

import csv
import warnings
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.ratings import IdMapBuilder
from recsys.data.readers.layout import Layout
from recsys.data.readers.source import _is_gzip, _read_head

_CHUNK_ROWS = 1 << 20


class _Column:
    """An output array filled chunk by chunk; grows in place (realloc), trimmed at the end."""

    def __init__(self, dtype, capacity: int):
        self.array = np.empty(max(capacity, 1), dtype=dtype)
        self.n = 0

    def extend(self, values) -> None:
        end = self.n + len(values)
        if end > len(self.array):
            self.array.resize(max(end, len(self.array) * 3 // 2), refcheck=False)
        self.array[self.n:end] = values
        self.n = end

    def finish(self) -> np.ndarray:
        self.array.resize(self.n, refcheck=False)
        return self.array


def _estimate_rows(path: Path) -> int:
    """Rows in a file, from its size and the length of its first lines (a guess for sizing)."""
    if _is_gzip(path):
        return _CHUNK_ROWS
    head = _read_head(path)
    lines = max(head.count(b"\n"), 1)
    return int(path.stat().st_size / (len(head) / lines) * 1.02) + 1024


def _fast_read(path: Path, layout: Layout, scale):
    """The pandas pass over a whole file; None when anything is off (the slow pass decides)."""
    cols = layout.columns
    wanted = [r for r in ("user", "item", "rating", "timestamp") if r in cols]
    sep, scale_pos = layout.sep, 1
    if sep == "::":  # one-char separator keeps the C parser; fields land at even positions
        sep, scale_pos = ":", 2
    elif sep is None:
        sep = r"\s+"
    dtypes = {"rating": np.float64, "timestamp": np.int64,
              "user": np.int64 if layout.int_ids["user"] else str,
              "item": np.int64 if layout.int_ids["item"] else str}
    names_by_pos = {cols[r] * scale_pos: r for r in wanted}
    # every field is read (pandas lets lines with extra fields through when given usecols);
    # between '::' halves the fields must be empty, other unused fields present
    n_cols = (layout.n_fields - 1) * scale_pos + 1
    dtype, na_values, spacers, unused = {}, {}, [], []
    for pos in range(n_cols):
        if pos in names_by_pos:
            dtype[pos], na_values[pos] = dtypes[names_by_pos[pos]], [""]
        elif scale_pos == 2 and pos % 2:
            dtype[pos], na_values[pos] = np.float64, [""]
            spacers.append(pos)
        else:  # a missing field and an empty one both read as NaN: the slow pass decides
            dtype[pos], na_values[pos] = str, [""]
            unused.append(pos)
    capacity = _estimate_rows(path)
    out = {"user": _Column(np.int32, capacity), "item": _Column(np.int32, capacity)}
    if "rating" in wanted:
        out["rating"] = _Column(np.float32, capacity)
    if "timestamp" in wanted:
        out["timestamp"] = _Column(np.int64, capacity)
    maps = {"user": IdMapBuilder(), "item": IdMapBuilder()}
    try:
        reader = pd.read_csv(
            path, sep=sep, header=None, names=list(range(n_cols)), skiprows=layout.header_lines,
            dtype=dtype, engine="c", skip_blank_lines=False,
            # the C parser reads UTF-8 itself (and drops a BOM); other codecs decode in Python
            encoding="utf-8" if layout.encoding == "utf-8-sig" else layout.encoding,
            quotechar='"', quoting=csv.QUOTE_MINIMAL if layout.quoted else csv.QUOTE_NONE,
            on_bad_lines="error",
            compression="gzip" if _is_gzip(path) else None,
            # without NA filtering (a quarter faster) an empty or missing number fails to
            # convert; text fields need it to tell a missing field from an empty one
            na_filter=bool(spacers or unused), keep_default_na=False, na_values=na_values,
            chunksize=_CHUNK_ROWS,
        )
        with reader, warnings.catch_warnings(), np.errstate(invalid="ignore"):
            warnings.simplefilter("ignore")  # what pandas warns about, the slow pass explains
            for chunk in reader:
                if len(chunk.columns) != n_cols:
                    return None
                if any(chunk[p].notna().any() for p in spacers) or \
                        any(chunk[p].isna().any() for p in unused):
                    return None
                if not _take_chunk(chunk, names_by_pos, out, maps, scale):
                    return None
    except (ValueError, OverflowError, UnicodeDecodeError, pd.errors.ParserError,
            pd.errors.EmptyDataError, OSError, EOFError, zlib.error):
        return None
    if out["user"].n == 0:
        return None
    frame = {role: column.finish() for role, column in out.items()}
    frame["user_map"], frame["item_map"] = maps["user"].build(), maps["item"].build()
    return frame


def _take_chunk(chunk, names_by_pos, out, maps, scale) -> bool:
    """Check one chunk and append it to the output; False when the slow pass must decide."""
    columns = {role: chunk[p].to_numpy() for p, role in names_by_pos.items()}
    # fewer fields than declared leave NaN (or None) in the last columns
    for role in ("user", "item"):
        column = columns[role]
        if column.dtype.kind in "iu":
            continue
        if column.dtype.kind != "O" or pd.isna(column).any():
            return False
        column = column.astype(str)
        if (np.char.str_len(np.char.strip(column)) == 0).any():
            return False
        columns[role] = column
    if "rating" in out:
        values = columns["rating"]
        if values.dtype.kind != "f" or not np.isfinite(values).all():
            return False
        if scale is not None and ((values < scale[0]) | (values > scale[1])).any():
            return False  # the slow pass names the line (or skips it)
        out["rating"].extend(values)
    if "timestamp" in out:
        if columns["timestamp"].dtype.kind not in "iu":
            return False
        out["timestamp"].extend(columns["timestamp"])
    for role in ("user", "item"):
        out[role].extend(maps[role].codes(columns[role]))
    return True
