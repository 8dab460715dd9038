"""The pandas pass: pandas' C parser reads a file in one vectorized pass, chunk by chunk.

Each chunk (a million lines) is checked, its ids coded at once into int32 indices
(``IdMapBuilder``) and its ratings stored as float32, so memory stays near the final
arrays: 12 bytes a rating, 8 more for timestamps. A chunk with anything off hands the file
to the line-by-line pass, which names the line. The output arrays (``_Column``) and the
row estimate are shared with the compiled pass.

pandas reads the file through ``source._open_binary`` (the bounds on lines and on gzip).
It takes quoted fields as RFC 4180 says when they are quoted as it says; the quoting of
every piece of the file with a double quote in it is checked on the way in
(``_QuoteCheck``), and a line quoted any other way hands the file to the line-by-line pass,
whose rules (``layout._split``) decide.
"""

from __future__ import annotations

import csv
import warnings
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.ratings import IdMapBuilder
from recsys.data.readers.layout import FLOAT32_LIMIT, Layout
from recsys.data.readers.source import LineTooLong, _is_gzip, _open_binary, _read_head
from recsys.errors import DataError

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
    if not head:
        return 1024
    lines = max(head.count(b"\n"), 1)
    return int(path.stat().st_size / (len(head) / lines) * 1.02) + 1024


class _Handoff(Exception):  # noqa: N818 - a signal: the line-by-line pass decides
    pass


class _QuoteCheck:
    """Checks the quoting of a file as pandas reads it (``on_data`` of ``_open_binary``):
    every double quote must be where RFC 4180 puts one, else ``_Handoff``.

    Counting the quotes of each line from its start, an even-numbered one (0, 2, ...)
    opens a field (after a separator or the line's start) or is the second of a doubled
    quote (after a quote); an odd-numbered one closes a field (before a separator or the
    line's end) or is the first of a doubled quote (before a quote); and every line holds
    an even number of them, so no field is open at a line's end. Lines quoted so are
    read by pandas exactly as ``layout._split`` reads them; any other line (blanks around
    a quoted field included) goes to the line-by-line pass. The check is a few vector
    operations on the pieces of the file with a quote in them; other pieces cost one scan
    for a quote. With no ``sep`` (a two-byte or white-space separator, which pandas does
    not quote here) any double quote hands off; so does a NUL byte anywhere.
    """

    def __init__(self, sep: str | None):
        self._sep = None if sep is None else ord(sep)
        self._edge = np.zeros(256, dtype=bool)  # what may stand beside a quote
        if sep is not None:
            self._edge[[self._sep, 10, 13, 34]] = True
        self._tail, self._start = b"", True  # the line begun, not yet ended

    def __call__(self, data: bytes | None) -> None:
        if data is None:  # the end: the last line, if it lacks its end
            self._check(self._tail + b"\n" if self._tail else b"")
            return
        if self._start:
            self._start = False
            if data.startswith(b"\xef\xbb\xbf"):  # a byte order mark is no field's text
                data = data[3:]
        if b"\x00" in data:  # the line-by-line pass says which text holds it
            raise _Handoff
        end = data.rfind(b"\n")
        end = max(end, data.rfind(b"\r", end + 1)) + 1  # '\r' ends a line too
        if end == 0:
            self._tail += data
            return
        if b'"' in data:
            self._check(self._tail + data[:end])
        elif b'"' in self._tail:
            self._check(self._tail + data[:end])
        self._tail = data[end:]

    def _check(self, text: bytes) -> None:
        """``text``: whole lines, each with its end."""
        if b'"' not in text:
            return
        if self._sep is None:
            raise _Handoff
        codes = np.frombuffer(text, dtype=np.uint8)
        quotes = np.flatnonzero(codes == 34)
        ends = np.flatnonzero((codes == 10) | (codes == 13) if b"\r" in text else codes == 10)
        # an even number of quotes before each line end: the count from a line's start
        # is the count from the text's start, and no field stays open past a line end
        if (np.searchsorted(quotes, ends) & 1).any():
            raise _Handoff
        opening, closing = quotes[0::2], quotes[1::2]
        edge = self._edge
        if not edge[codes[closing + 1]].all():
            raise _Handoff
        before = codes[np.maximum(opening - 1, 0)]
        if not (edge[before] | (opening == 0)).all():
            raise _Handoff


def _fast_read(path: Path, layout: Layout, scale, stop_at_duplicate: bool = False):
    """The pandas pass over a whole file; None when anything is off (the slow pass decides).
    With ``stop_at_duplicate`` it stops after the chunk that makes a duplicate certain
    (more ratings than users times items), marking the frame ``cut_short``."""
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
    quoting = sep in (",", "\t", ";", "|")  # one-byte separators: RFC 4180 quoting
    capacity = _estimate_rows(path)
    out = {"user": _Column(np.int32, capacity), "item": _Column(np.int32, capacity)}
    if "rating" in wanted:
        out["rating"] = _Column(np.float32, capacity)
    if "timestamp" in wanted:
        out["timestamp"] = _Column(np.int64, capacity)
    maps = {"user": IdMapBuilder(), "item": IdMapBuilder()}
    cut_short = False
    try:
        stream = _open_binary(path, on_data=_QuoteCheck(sep if quoting else None))
    except (OSError, EOFError, zlib.error):
        return None
    try:
        reader = pd.read_csv(
            stream, sep=sep, header=None, names=list(range(n_cols)), skiprows=layout.header_lines,
            dtype=dtype, engine="c", skip_blank_lines=False,
            # the C parser reads UTF-8 itself (and drops a BOM); other codecs decode in Python
            encoding="utf-8" if layout.encoding == "utf-8-sig" else layout.encoding,
            quotechar='"', quoting=csv.QUOTE_MINIMAL if quoting else csv.QUOTE_NONE,
            on_bad_lines="error", compression=None,
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
                if stop_at_duplicate and \
                        out["user"].n > len(maps["user"]) * len(maps["item"]):
                    cut_short = True
                    break
    except DataError:
        raise  # past a bound: no other pass would do better
    except (ValueError, OverflowError, UnicodeDecodeError, pd.errors.ParserError,
            pd.errors.EmptyDataError, OSError, EOFError, zlib.error, LineTooLong, _Handoff):
        return None
    finally:
        stream.close()
    if out["user"].n == 0:
        return None
    frame = {role: column.finish() for role, column in out.items()}
    frame["user_map"], frame["item_map"] = maps["user"].build(), maps["item"].build()
    if cut_short:
        frame["cut_short"] = True
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
        column = np.char.strip(column.astype(str))  # a file's text ids lose the blanks around
        if (np.char.str_len(column) == 0).any():
            return False
        columns[role] = column
    if "rating" in out:
        values = columns["rating"]
        # finite and within float32 (NaN fails the comparison too)
        if values.dtype.kind != "f" or not (np.abs(values) < FLOAT32_LIMIT).all():
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
