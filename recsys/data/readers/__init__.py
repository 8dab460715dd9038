"""Readers for ratings files: MovieLens formats, delimited text of any kind, gzip.

The format is detected from the content: the separator (``::``, tab, comma, semicolon,
``|`` or white space), whether the first line is a header, and whether ids are integers or
strings. Big files with integer ids in plain form (digits, ``digits.digits`` ratings, no
quotes or spaces) are parsed, checked and coded straight from their bytes by a compiled
kernel (``kernels/parse.py``), block by block. Other files, and any file where the kernel
meets a line not in that form, are read by pandas' C parser in one vectorized pass, a
million lines at a time: each chunk is checked, its ids coded into int32 indices at once
(``IdMapBuilder``) and its ratings stored as float32. Either way memory stays near the
final arrays. When a pass meets a line it cannot take as it is, a line-by-line pass with
the same rules finds the exact line and says what is wrong with it (or, with
``skip_bad_lines``, drops the bad lines and reports them). All passes accept and reject
the same lines (property tests hold them to it). Parquet files are read whole through
pandas (pyarrow).
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import os
import re
import sys
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.ratings import IdMap, IdMapBuilder, Ratings
from recsys.errors import DataError

#: Ratings outside this closed interval are rejected unless the caller declares another.
DEFAULT_SCALE = (0.5, 5.0)
DUPLICATE_POLICIES = ("error", "last", "mean")

_SEPARATORS = ("::", "\t", ",", ";", "|")
_INT_RE = re.compile(r"^\s*[+-]?\d+\s*$")
_NAMES = {
    "user": {"user", "userid", "user_id", "uid", "customer", "customerid", "customer_id"},
    "item": {"item", "itemid", "item_id", "movie", "movieid", "movie_id", "iid", "product",
             "productid", "product_id"},
    "rating": {"rating", "ratings", "score", "value", "stars"},
    "timestamp": {"timestamp", "time", "ts", "date", "datetime", "unixtime"},
}
_INT64_MAX = 2**63 - 1
_SAMPLE_BYTES = 1 << 16


@dataclass
class Layout:
    """How a delimited ratings file is laid out: what ``sniff`` found or the user declared."""

    sep: str
    header_lines: int
    n_fields: int
    columns: dict  # role -> 0-based field position (user, item, rating?, timestamp?)
    int_ids: dict = field(default_factory=lambda: {"user": True, "item": True})
    encoding: str = "utf-8-sig"
    quoted: bool = False  # fields wrapped in double quotes: let the parser unwrap them

    def describe(self) -> str:
        sep = {"\t": "tab", " ": "white space", None: "white space"}.get(self.sep, repr(self.sep))
        return f"{self.n_fields} fields separated by {sep}"


@dataclass
class BadLines:
    """Lines dropped by a lenient read: how many, and the first few with their reasons."""

    count: int = 0
    examples: list = field(default_factory=list)

    def add(self, error: DataError, keep: int = 5) -> None:
        self.count += 1
        if len(self.examples) < keep:
            self.examples.append(str(error))


# --------------------------------------------------------------------------- opening files


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise DataError("file not found", path)
    if path.is_dir():
        raise DataError("is a directory, not a ratings file", path)
    if not os.access(path, os.R_OK):
        raise DataError("permission denied", path)


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _open_binary(path: Path):
    return gzip.open(path, "rb") if _is_gzip(path) else open(path, "rb")


def _read_head(path: Path) -> bytes:
    try:
        with _open_binary(path) as fh:
            return fh.read(_SAMPLE_BYTES)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read compressed file ({exc})", path) from None


def _decode_sample(raw: bytes) -> tuple[str, str]:
    """Decode the head of a file: UTF-8 (with or without BOM), else Latin-1."""
    try:
        return raw.decode("utf-8-sig"), "utf-8-sig"
    except UnicodeDecodeError as exc:
        if exc.start >= len(raw) - 3:  # a multi-byte character cut by the sample's end
            return raw[: exc.start].decode("utf-8-sig"), "utf-8-sig"
        return raw.decode("latin-1"), "latin-1"


# --------------------------------------------------------------------------- sniffing


def _split(line: str, sep: str | None) -> list[str]:
    """Fields of a line; a field wrapped in double quotes (as some exports write) is unwrapped."""
    fields = line.split() if sep is None else line.split(sep)
    return [f.strip()[1:-1] if len(f.strip()) > 1 and f.strip()[0] == f.strip()[-1] == '"'
            else f for f in fields]


def _detect_sep(line: str) -> str | None:
    for sep in _SEPARATORS:
        if sep in line:
            return sep
    return None  # white space


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _role_of(name: str) -> str | None:
    key = name.strip().strip('"').lower()
    for role, names in _NAMES.items():
        if key in names:
            return role
    return None


def parse_columns(spec: str) -> list[str | None]:
    """Parse ``--columns user,item,rating,timestamp``; ``-`` (or ``skip``) ignores a field."""
    roles = []
    for name in spec.split(","):
        name = name.strip().lower()
        if name in ("-", "skip", "_", ""):
            roles.append(None)
            continue
        role = _role_of(name)
        if role is None:
            raise DataError(f"unknown column name {name!r} in --columns "
                            "(use user, item, rating, timestamp or - to skip)")
        roles.append(role)
    return roles


def sniff(path, *, sep: str | None = None, columns: list | None = None,
          header: bool | None = None, need_rating: bool = True,
          id_type: str | None = None) -> Layout:
    """Work out separator, header, column roles and id types from the head of a file."""
    path = Path(path)
    _check_readable(path)
    text, encoding = _decode_sample(_read_head(path))
    lines = text.splitlines()
    if len(text) == _SAMPLE_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the sample may end mid-line
    first_no, first = next(((n, ln) for n, ln in enumerate(lines, 1) if ln.strip()), (0, ""))
    if not first.strip():
        raise DataError("file is empty: no ratings found", path)
    if sep is None:
        sep = _detect_sep(first)
    elif sep in ("\\t", "tab"):
        sep = "\t"
    elif sep in (" ", "space", "whitespace"):
        sep = None
    fields = _split(first, sep)
    if len(fields) < 2:
        raise DataError("cannot detect the separator: expected user, item and rating fields "
                        "separated by '::', tab, ',', ';', '|' or spaces", path, first_no, first)

    if header is None:
        probe = 2 if len(fields) > 2 else 1
        header = not _is_number(fields[probe]) and _role_of(fields[probe]) is not None \
            or all(_role_of(f) is not None for f in fields[:2])
    roles: list | None = None
    if columns is not None:
        roles = list(columns)
    elif header:
        found = [_role_of(f) for f in fields]
        if {"user", "item"} <= set(found):
            roles = found
    if roles is None:
        roles = ["user", "item", "rating", "timestamp"][: len(fields)] + [None] * (len(fields) - 4)
    positions = {}
    for pos, role in enumerate(roles):
        if role is not None and role not in positions:
            positions[role] = pos
    missing = [r for r in ("user", "item") + (("rating",) if need_rating else ())
               if r not in positions]
    if missing:
        raise DataError(f"no {' or '.join(missing)} column found", path, first_no, first)

    n_fields = len(fields)
    data_lines = [ln for ln in lines[first_no:] if ln.strip()] if header else \
        [ln for ln in lines[first_no - 1:] if ln.strip()]
    int_ids = {}
    for role in ("user", "item"):
        if id_type is not None:
            int_ids[role] = id_type == "int"
            continue
        sample = [_split(ln, sep) for ln in data_lines[:1]]
        values = [f[positions[role]] for f in sample if len(f) > positions[role]]
        int_ids[role] = bool(values) and all(_integer(v.strip()) is not None for v in values)
    if not data_lines:
        raise DataError("file has a header but no ratings", path, first_no, first)
    quoted = any('"' in ln for ln in data_lines[:1])
    return Layout(sep, first_no if header else first_no - 1, n_fields, positions, int_ids,
                  encoding, quoted)


# --------------------------------------------------------------------------- line checks


def _integer(text: str) -> int | None:
    """An integer field as pandas' C parser reads it: digits, or a float with no fraction
    ('12.0', '1e3'); None for anything else."""
    if _INT_RE.match(text):
        return int(text)
    try:
        number = float(text)
    except ValueError:
        return None
    if "_" in text or not math.isfinite(number) or not number.is_integer():
        return None
    return int(number)


class _LineParser:
    """The rules every data line must meet; used by the line-by-line pass."""

    def __init__(self, path, layout: Layout, scale):
        self.path, self.layout, self.scale = path, layout, scale
        self.has_rating = "rating" in layout.columns

    def _fail(self, reason, line_no, text):
        raise DataError(reason, self.path, line_no, text)

    def _id(self, role, value, line_no, text):
        value = value.strip()
        if not value:
            self._fail(f"empty {role} id", line_no, text)
        if not self.layout.int_ids[role]:
            return value
        number = _integer(value)
        if number is None:
            self._fail(f"{role} id {value!r} is not an integer like the ids before it "
                       "(use --id-type str for text ids)", line_no, text)
        if not -_INT64_MAX - 1 <= number <= _INT64_MAX:
            self._fail(f"{role} id {value} does not fit in a 64-bit integer", line_no, text)
        return number

    def parse(self, line: str, line_no: int):
        layout = self.layout
        fields = _split(line, layout.sep)
        if len(fields) != layout.n_fields:
            self._fail(f"expected {layout.describe()}, found {len(fields)}", line_no, line)
        cols = layout.columns
        user = self._id("user", fields[cols["user"]], line_no, line)
        item = self._id("item", fields[cols["item"]], line_no, line)
        rating = math.nan
        if self.has_rating:
            raw = fields[cols["rating"]].strip()
            try:
                rating = float(raw)
            except ValueError:
                self._fail(f"rating {raw!r} is not a number", line_no, line)
            if not math.isfinite(rating):
                self._fail(f"rating {raw!r} is not a finite number", line_no, line)
            if self.scale is not None and not self.scale[0] <= rating <= self.scale[1]:
                self._fail(f"rating {raw} is outside the scale {self.scale[0]:g}..{self.scale[1]:g}"
                           " (set the scale with --scale MIN,MAX)", line_no, line)
        ts = 0
        if "timestamp" in cols:
            raw = fields[cols["timestamp"]].strip()
            ts = _integer(raw)
            if ts is None or not -_INT64_MAX - 1 <= ts <= _INT64_MAX:
                self._fail(f"timestamp {raw!r} is not an integer", line_no, line)
        return user, item, rating, ts


def _lines(path: Path, encoding: str):
    """Yield (line number, text) with universal newlines; Latin-1 if UTF-8 fails midway
    (from the line it failed on: the lines before it are not given twice)."""
    done = 0
    with _open_binary(path) as raw:
        stream = io.TextIOWrapper(raw, encoding=encoding, errors="strict", newline=None)
        try:
            for n, line in enumerate(stream, 1):
                yield n, line.rstrip("\n")
                done = n
        except UnicodeDecodeError:
            pass
        else:
            return
    yield from ((n, ln) for n, ln in _lines(path, "latin-1") if n > done)


def _slow_read(path: Path, layout: Layout, scale, skip_bad_lines):
    parser = _LineParser(path, layout, scale)
    users, items, values, stamps, line_nos = [], [], [], [], []
    bad = BadLines()
    try:
        for line_no, line in _lines(path, layout.encoding):
            if line_no <= layout.header_lines or not line.strip():
                continue
            try:
                u, i, r, t = parser.parse(line, line_no)
            except DataError as exc:
                if not skip_bad_lines:
                    raise
                bad.add(exc)
                continue
            users.append(u)
            items.append(i)
            values.append(r)
            stamps.append(t)
            line_nos.append(line_no)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"file is damaged or truncated ({exc})", path) from None
    id_dtype = {r: (np.int64 if layout.int_ids[r] else object) for r in ("user", "item")}
    frame = {
        "user": np.array(users, dtype=id_dtype["user"]),
        "item": np.array(items, dtype=id_dtype["item"]),
        "rating": np.array(values, dtype=np.float64),
    }
    if "timestamp" in layout.columns:
        frame["timestamp"] = np.array(stamps, dtype=np.int64)
    return frame, np.array(line_nos, dtype=np.int64), bad


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
    """Vectorized pass (the compiled kernel for big plain files, else pandas, chunk by chunk);
    None when anything is off (the slow pass decides).

    Each chunk is checked, its ids coded at once (``IdMapBuilder``) and its values stored as
    float32, so memory stays near the final arrays: 12 bytes a rating, 8 more for timestamps.
    """
    if _kernel_applies(path, layout):
        frame = _kernel_read(path, layout, scale)
        if frame is not _ODD:
            return frame
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


#: Files from this size on are parsed by the compiled kernel: importing numba and loading
#: the kernel costs about a second, which pandas' slower parse makes up by about 45 MiB
#: (and training loads numba anyway).
_KERNEL_BYTES = 32 << 20
_KERNEL_BLOCK = 1 << 24
_ODD = object()  # the kernel met a line it does not take: the pandas pass decides


def _kernel_applies(path: Path, layout: Layout) -> bool:
    if not (layout.int_ids["user"] and layout.int_ids["item"]) or layout.quoted or \
            layout.sep not in (",", "\t", ";", "|", "::"):
        return False
    try:
        size = path.stat().st_size
    except OSError:
        return False
    return size >= _KERNEL_BYTES


def _kernel_read(path: Path, layout: Layout, scale):
    """Parse, check and code the file in one compiled pass over its bytes, block by block.

    Returns the frame (with ``blank_rows``, the rows that empty lines came before, when the
    file has any); None when a line breaks a rule (the slow pass names it); ``_ODD``
    when a line is not in the plain form the kernel takes (the pandas pass decides).
    A big uncompressed file is cut in two at a line end and two threads parse the halves
    at once into the same output arrays (the second half from an estimated row on), each
    with its own id tables; the second half's rows then move up to follow the first's and
    its ids are renumbered after the first's: the same result as one pass.
    Memory: the output arrays, the id tables and one block of the file per thread.
    """
    from recsys.kernels.cpu import parse as kp

    cols = layout.columns
    size = path.stat().st_size
    capacity = _estimate_rows(path)
    table_limit = min(max(1 << 20, 4 * capacity), IdMapBuilder._DENSE_LIMIT)
    cut = _cut_point(path, size) if size >= _SPLIT_BYTES and not _is_gzip(path) else None
    if cut is not None:  # room for each half's estimate and some
        second = int(capacity * cut / size * 1.05) + 1024
        capacity = second + int(capacity * (size - cut) / size * 1.05) + 1024
    out = {role: _Column(dtype, capacity if role in cols else 1) for role, dtype in
           (("user", np.int32), ("item", np.int32), ("rating", np.float32),
            ("timestamp", np.int64))}
    args = (path, layout, scale, table_limit, out)
    parts = None
    if cut is not None:
        from concurrent.futures import ThreadPoolExecutor
        from threading import Event

        stop = Event()  # one half giving up stops the other
        with ThreadPoolExecutor(2) as pool:
            jobs = [pool.submit(_parse_range, *args, 0, cut, 0, second, stop),
                    pool.submit(_parse_range, *args, cut, None, second, capacity, stop)]
            parts = [job.result() for job in jobs]
        if any(part["status"] == kp.FULL for part in parts):
            parts = None  # a half had more rows than estimated: parse it all in one
    if parts is None:
        parts = [_parse_range(*args, 0, None, 0, None, None)]
    for status in (kp.BAD, kp.ODD):
        if any(part["status"] == status for part in parts):
            return None if status == kp.BAD else _ODD
    return _join_parts(parts, out, cols)


#: From this size on, two threads parse the two halves of a file.
_SPLIT_BYTES = 64 << 20


def _cut_point(path: Path, size: int) -> int | None:
    """The start of the first line after the middle of the file (None if not found)."""
    with open(path, "rb") as fh:
        fh.seek(size // 2)
        tail = fh.read(1 << 20)
    end = tail.find(b"\n")
    return None if end < 0 or size // 2 + end + 1 >= size else size // 2 + end + 1


def _parse_range(path: Path, layout: Layout, scale, table_limit: int, out: dict,
                 begin: int, stop_at: int | None, first_row: int, row_limit: int | None,
                 stop) -> dict:
    """Run the parse kernel over bytes ``begin:stop_at`` of a file (whole lines; the header
    is skipped when ``begin`` is 0) into output rows ``first_row:row_limit``; with no row
    limit the outputs grow as needed. Returns its row count, id tables and status."""
    from recsys.kernels.cpu import parse as kp

    cols = layout.columns
    sep = layout.sep.encode()
    tables = {kp.USER_TABLE: np.full(1 << 16, -1, dtype=np.int32),
              kp.ITEM_TABLE: np.full(1 << 16, -1, dtype=np.int32)}
    seen = np.zeros(3, dtype=np.int64)
    blanks = np.empty(64, dtype=np.int64)
    lo, hi = (float(scale[0]), float(scale[1])) if scale is not None else (0.0, 0.0)
    raw = bytearray(_KERNEL_BLOCK + 1)  # room to end the last line
    buf = np.frombuffer(raw, dtype=np.uint8)  # the same bytes, for the kernel
    row, filled, skip = 0, 0, layout.header_lines if begin == 0 else 0
    left = None if stop_at is None else stop_at - begin

    def views():
        return [out[role].array[first_row:row_limit] for role in
                ("user", "item", "rating", "timestamp")]

    def result(status):
        return {"status": status, "tables": tables, "seen": seen, "blanks": blanks,
                "rows": row, "first_row": first_row}

    arrays = views()
    try:
        with _open_binary(path) as fh:
            if begin:
                fh.seek(begin)
            view = memoryview(raw)[:_KERNEL_BLOCK]
            while True:
                if stop is not None and stop.is_set():
                    return result(kp.ODD)
                while filled < _KERNEL_BLOCK and left != 0:
                    want = _KERNEL_BLOCK if left is None else \
                        filled + min(left, _KERNEL_BLOCK - filled)
                    got = fh.readinto(view[filled:want])
                    if not got:
                        break
                    filled += got
                    if left is not None:
                        left -= got
                final = filled < _KERNEL_BLOCK or left == 0
                if final and filled == 0:
                    break
                if final:  # the last line may lack its end; '\r' then '\n' ends it the same
                    if buf[filled - 1] != 10:
                        buf[filled] = 10
                        filled += 1
                    end = filled
                else:
                    end = raw.rfind(b"\n", 0, filled) + 1
                if end == 0:
                    return result(kp.ODD)  # a line longer than a block
                start = 0
                if skip:  # header lines: \n or \r\n ends, as the line-by-line pass counts
                    head = bytes(raw[:end])
                    for _ in range(skip):
                        stop_pos = head.find(b"\n", start)
                        if stop_pos < 0 or b"\r" in head[start:stop_pos].removesuffix(b"\r"):
                            return result(kp.ODD)
                        start = stop_pos + 1
                    skip = 0
                while True:
                    start, row, status, detail = kp.parse_lines(
                        buf, start, end, sep[0], sep[1] if len(sep) > 1 else -1,
                        layout.n_fields, cols["user"], cols["item"], cols.get("rating", -1),
                        cols.get("timestamp", -1), lo, hi, scale is not None and "rating" in cols,
                        tables[kp.USER_TABLE], tables[kp.ITEM_TABLE], seen, blanks, *arrays,
                        row)
                    if status == kp.DONE:
                        break
                    if status in (kp.BAD, kp.ODD) or detail >= table_limit:
                        if stop is not None:
                            stop.set()
                        return result(kp.BAD if status == kp.BAD else kp.ODD)
                    if status == kp.BLANKS:
                        blanks = np.resize(blanks, 2 * len(blanks))
                    elif status == kp.FULL:
                        if row_limit is not None:
                            return result(kp.FULL)
                        del arrays
                        for role, column in out.items():
                            if role in cols:
                                column.array.resize(len(column.array) * 3 // 2 + 1024,
                                                    refcheck=False)
                        arrays = views()
                    else:
                        old = tables[status]
                        grown = np.full(min(max(2 * len(old), detail + 1), table_limit), -1,
                                        dtype=np.int32)
                        grown[: len(old)] = old
                        tables[status] = grown
                if final:
                    break
                buf[: filled - end] = buf[end:filled]
                filled -= end
    except (OSError, EOFError, zlib.error):
        return result(kp.BAD)  # the line-by-line pass says what is wrong with the file
    return result(kp.DONE)


def _join_parts(parts: list, out: dict, cols: dict) -> dict | None:
    """The frame of a file parsed in parts: each later part's rows moved up to follow the
    earlier ones and its ids renumbered after theirs (first-seen order over the file)."""
    from recsys.kernels.cpu import parse as kp

    frame, remaps = {}, []
    for k, status in enumerate((kp.USER_TABLE, kp.ITEM_TABLE)):
        known = _table_ids(parts[0]["tables"][status], int(parts[0]["seen"][k]))
        remaps.append([None])
        for part in parts[1:]:
            own = _table_ids(part["tables"][status], int(part["seen"][k]))
            index = pd.Index(known).get_indexer(own) if len(known) else \
                np.full(len(own), -1, dtype=np.intp)
            fresh = index < 0
            index[fresh] = len(known) + np.arange(int(fresh.sum()))
            known = np.concatenate([known, own[fresh]])
            remaps[k].append(index.astype(np.int32))
        frame[("user_map", "item_map")[k]] = IdMap(known)
    blank, at = [], 0
    for p, part in enumerate(parts):
        n, src = part["rows"], part["first_row"]
        for k, role in enumerate(("user", "item", "rating", "timestamp")):
            if role not in cols or (src == at and not (k < 2 and p)):
                continue
            array = out[role].array
            for a in range(0, n, _CHUNK_ROWS):  # forward, a chunk at a time: moves up safely
                b = min(a + _CHUNK_ROWS, n)
                piece = array[src + a:src + b]
                array[at + a:at + b] = remaps[k][p][piece] if k < 2 and p else piece
        blank.append(part["blanks"][: part["seen"][2]] + at)
        at += n
    if at == 0:
        return None
    for role, column in out.items():
        if role in cols:
            column.n = at
            frame[role] = column.finish()
    blank = np.concatenate(blank)
    if len(blank):
        frame["blank_rows"] = blank
    return frame


def _table_ids(table: np.ndarray, n: int) -> np.ndarray:
    """Raw ids of a dense id table (raw id -> index, -1 where unseen), in index order."""
    ids = np.flatnonzero(table >= 0)
    raw = np.empty(n, dtype=np.int64)
    raw[table[ids]] = ids
    return raw


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


_KERNEL_ROWS = 1 << 20


def _has_duplicates(users, items, n_users: int, n_items: int) -> bool:
    """Whether any (user, item) pair occurs twice; little scratch memory either way.

    Large inputs use the O(n) compiled check when numba is loaded already (training loads
    it); importing numba just for this costs about what sorting the keys does.
    """
    if len(users) < 2:
        return False
    if len(users) >= _KERNEL_ROWS and "numba" in sys.modules:
        from recsys.kernels.cpu.pairs import has_duplicate_pairs

        return bool(has_duplicate_pairs(users, items, n_users, n_items))
    if _grouped(users):  # as in MovieLens files: check one user-aligned slice at a time
        starts = np.searchsorted(users, users[::_CHUNK_ROWS], side="left")
        bounds = np.unique(np.r_[starts, len(users)])
        return any(_sorted_keys_repeat(users[a:b], items[a:b], n_items)
                   for a, b in zip(bounds[:-1], bounds[1:], strict=True))
    return _sorted_keys_repeat(users, items, n_items)


def _grouped(users) -> bool:
    """Whether user indices never decrease (each user's ratings are contiguous)."""
    step = _CHUNK_ROWS
    return all(not (users[a + 1:a + step + 1] < users[a:a + step][: len(users) - a - 1]).any()
               for a in range(0, len(users) - 1, step))


def _sorted_keys_repeat(users, items, n_items: int) -> bool:
    key = users.astype(np.int64)
    key *= max(n_items, 1)
    key += items
    key.sort()
    return bool((key[1:] == key[:-1]).any())


def _resolve_duplicates(users, items, values, stamps, policy, n_users, n_items, line_of,
                        path):
    """Apply the duplicate (user, item) policy; returns the kept rows' arrays."""
    if not _has_duplicates(users, items, n_users, n_items):
        return users, items, values, stamps
    key = users.astype(np.int64) * max(n_items, 1) + items
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    dup = np.flatnonzero(sorted_key[1:] == sorted_key[:-1])
    if policy == "error":
        j = int(np.argmin(order[dup + 1]))  # the earliest line that repeats a pair
        first, second = int(order[dup[j]]), int(order[dup[j] + 1])
        raise DataError(f"duplicate rating for the same user and item (first on line "
                        f"{line_of(first)}; use --duplicates last or mean to allow them)",
                        path, int(line_of(second)))
    starts = np.r_[0, np.flatnonzero(sorted_key[1:] != sorted_key[:-1]) + 1]
    last_rows = order[np.r_[starts[1:] - 1, len(order) - 1]]
    keep = np.sort(last_rows)  # the last occurrence in file order survives, in file order
    if policy == "mean":
        group_sum = np.add.reduceat(values[order].astype(np.float64), starts)
        group_n = np.diff(np.r_[starts, len(order)])
        by_row = np.empty(len(order), dtype=np.float64)
        by_row[last_rows] = group_sum / group_n
        values = values.copy()
        values[keep] = by_row[keep]
    st = None if stamps is None else stamps[keep]
    return users[keep], items[keep], values[keep], st


def read_ratings(path, *, sep: str | None = None, columns=None, header: bool | None = None,
                 scale=DEFAULT_SCALE, skip_bad_lines: bool = False, duplicates: str = "error",
                 id_type: str | None = None, report: BadLines | None = None) -> Ratings:
    """Read a ratings file into ``Ratings``.

    ``sep``, ``columns`` (a list of roles or a ``--columns`` string), ``header`` and
    ``id_type`` ('int' or 'str') override detection. ``scale`` is the closed interval valid
    ratings lie in (None: any finite number). ``duplicates`` says what to do with a second
    rating of the same (user, item): 'error' (default), keep the 'last', or take the 'mean'.
    With ``skip_bad_lines`` bad lines are dropped and counted in ``report``.
    """
    return _read(path, sep=sep, columns=columns, header=header, scale=scale,
                 skip_bad_lines=skip_bad_lines, duplicates=duplicates, id_type=id_type,
                 report=report, need_rating=True)


def read_pairs(path, *, sep=None, columns=None, header=None, id_type=None,
               scale=DEFAULT_SCALE, skip_bad_lines=False, report=None) -> pd.DataFrame:
    """Read (user, item) pairs to predict, in any format ``read_ratings`` takes.

    A rating column, if present, is read and checked like training input (so a ratings
    file can be used as it is); repeated pairs are allowed.
    """
    return _read(path, sep=sep, columns=columns, header=header, scale=scale,
                 skip_bad_lines=skip_bad_lines, duplicates="allow", id_type=id_type,
                 report=report, need_rating=False, as_frame=True)


def _read(path, *, sep, columns, header, scale, skip_bad_lines, duplicates, id_type, report,
          need_rating, as_frame=False):
    if duplicates not in DUPLICATE_POLICIES + ("allow",):
        raise ValueError(f"duplicates must be one of {DUPLICATE_POLICIES}")
    path = Path(path)
    if isinstance(columns, str):
        columns = parse_columns(columns)
    if _is_parquet(path):
        frame, line_of = _read_parquet(path, columns, scale, need_rating, skip_bad_lines,
                                       report)
    else:
        frame, line_of = _read_delimited(path, sep, columns, header, scale, need_rating,
                                         skip_bad_lines, id_type, report)
    user_map, item_map = frame.pop("user_map"), frame.pop("item_map")
    users, items = frame["user"], frame["item"]
    if as_frame:
        out = {"user": user_map.ids[users], "item": item_map.ids[items]}
        out.update({k: v for k, v in frame.items() if k not in ("user", "item")})
        return pd.DataFrame(out)

    stamps = frame.get("timestamp")
    values = frame["rating"]
    n_read = len(values)
    if duplicates != "allow":
        users, items, values, stamps = _resolve_duplicates(
            users, items, values, stamps, duplicates, len(user_map), len(item_map), line_of,
            path)
    ratings = Ratings(users, items, values, user_map, item_map, stamps, source=str(path))
    if len(ratings) < n_read:
        ratings = ratings.compact()
    ratings.item_titles = read_item_titles(path, ratings.item_map)
    return ratings


def _read_delimited(path, sep, columns, header, scale, need_rating, skip_bad_lines, id_type,
                    report):
    layout = sniff(path, sep=sep, columns=columns, header=header, need_rating=need_rating,
                   id_type=id_type)
    frame = _fast_read(path, layout, scale)
    if frame is not None:
        blank = frame.pop("blank_rows", np.empty(0, dtype=np.int64))  # rows after empty lines
        return frame, lambda row: layout.header_lines + row + 1 + \
            int(np.searchsorted(blank, row, side="right"))

    raw, line_nos, bad = _slow_read(path, layout, scale, skip_bad_lines)
    if report is not None:
        report.count, report.examples = bad.count, bad.examples
    if len(raw["user"]) == 0:
        raise DataError("no valid ratings found" + (f" ({bad.count} bad lines skipped)"
                                                    if bad.count else ""), path)
    return _coded(raw), lambda row: int(line_nos[row])


def _coded(raw: dict) -> dict:
    """Raw id columns -> int32 codes and id maps; values as float32."""
    frame = dict(raw)
    frame["user_map"], frame["user"] = IdMap.from_values(raw["user"])
    frame["item_map"], frame["item"] = IdMap.from_values(raw["item"])
    if "rating" in frame:
        frame["rating"] = np.asarray(frame["rating"], dtype=np.float32)
    return frame


# --------------------------------------------------------------------------- Parquet


def _is_parquet(path: Path) -> bool:
    if path.suffix.lower() in (".parquet", ".pq"):
        return True
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"PAR1"
    except OSError:
        return False


def _parquet_ids(column: pd.Series, role: str, path: Path):
    """Ids from a Parquet column: integers stay integers (also whole floats), else text."""
    values = column.to_numpy()
    if values.dtype.kind in "iu":
        return values.astype(np.int64, copy=False)
    if values.dtype.kind == "f":
        finite = np.isfinite(values)
        if finite.all() and (values == np.round(values)).all():
            return values.astype(np.int64)
    return column.astype(object).where(column.notna(), None).to_numpy()


def _read_parquet(path, columns, scale, need_rating, skip_bad_lines, report):
    """Read a Parquet file (needs pyarrow); rows play the part of lines in messages."""
    _check_readable(path)
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise DataError("reading Parquet needs pyarrow: pip install 'recsys[parquet]'",
                        path) from None
    try:
        table = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds
        raise DataError(f"cannot read Parquet file ({exc})", path) from None
    names = list(table.columns)
    if columns is not None:
        roles = {r: names[i] for i, r in enumerate(columns) if r is not None and i < len(names)}
    else:
        roles = {}
        for name in names:
            role = _role_of(str(name))
            if role is not None and role not in roles:
                roles[role] = name
        if not {"user", "item"} <= set(roles) and len(names) >= 2:
            roles = dict(zip(("user", "item", "rating", "timestamp"), names, strict=False))
    missing = [r for r in ("user", "item") + (("rating",) if need_rating else ())
               if r not in roles]
    if missing:
        raise DataError(f"no {' or '.join(missing)} column found among {names}", path)
    n = len(table)
    if n == 0:
        raise DataError("file is empty: no ratings found", path)
    raw = {r: _parquet_ids(table[roles[r]], r, path) for r in ("user", "item")}
    problems = []  # (mask of bad rows, reason)
    for r in ("user", "item"):
        if raw[r].dtype.kind == "O":
            empty = pd.isna(raw[r]) | (pd.Series(raw[r]).astype(str).str.strip() == "")
            problems.append((np.asarray(empty), f"empty {r} id"))
    if "rating" in roles:
        values = pd.to_numeric(table[roles["rating"]], errors="coerce").to_numpy(np.float64)
        problems.append((~np.isfinite(values), "rating is missing or not a finite number"))
        if scale is not None:
            with np.errstate(invalid="ignore"):
                out = (values < scale[0]) | (values > scale[1])
            problems.append((out, f"rating is outside the scale {scale[0]:g}..{scale[1]:g} "
                                  "(set the scale with --scale MIN,MAX)"))
        raw["rating"] = values
    if "timestamp" in roles:
        ts = table[roles["timestamp"]]
        if pd.api.types.is_datetime64_any_dtype(ts):
            ts = ts.astype("datetime64[s]").astype(np.int64)
        raw["timestamp"] = pd.to_numeric(ts, errors="coerce").to_numpy()
        problems.append((np.isnan(raw["timestamp"].astype(np.float64)),
                         "timestamp is not a number"))
        raw["timestamp"] = np.nan_to_num(raw["timestamp"]).astype(np.int64)
    bad = np.zeros(n, dtype=bool)
    lines = BadLines()
    for mask, reason in problems:
        for row in np.flatnonzero(mask & ~bad):
            error = DataError(f"row {row + 1}: {reason}", path)
            if not skip_bad_lines:
                raise error
            lines.add(error)
            if len(lines.examples) >= 5:
                break
        bad |= mask
    lines.count = int(bad.sum())
    if report is not None:
        report.count, report.examples = lines.count, lines.examples
    rows = np.flatnonzero(~bad)
    if len(rows) == 0:
        raise DataError(f"no valid ratings found ({lines.count} bad rows skipped)", path)
    if lines.count:
        raw = {k: v[rows] for k, v in raw.items()}
    return _coded(raw), lambda row: int(rows[row]) + 1


# --------------------------------------------------------------------------- item metadata


def read_item_titles(ratings_path, item_map: IdMap | None = None) -> dict:
    """Titles of MovieLens items from the metadata file beside a ratings file, if any.

    ml-100k keeps them in ``u.item`` (``|``-separated, Latin-1), ml-1m and ml-10m in
    ``movies.dat`` (``::``-separated; Latin-1 in ml-1m, UTF-8 in ml-10m), later releases in
    ``movies.csv`` (UTF-8, quoted titles). Returns {raw item id: title}; {} when none is found.
    """
    folder = Path(ratings_path).parent
    frame = read_item_metadata(folder)
    if frame is None:
        return {}
    titles = dict(zip(frame["item"].tolist(), frame["title"].tolist(), strict=False))
    if item_map is not None:
        if not item_map.is_integer:
            titles = {str(k): v for k, v in titles.items()}
        known = set(item_map.to_list())
        titles = {k: v for k, v in titles.items() if k in known}
    return titles


def read_item_metadata(folder) -> pd.DataFrame | None:
    """Item id, title and genres from a MovieLens folder; None when there is no such file."""
    folder = Path(folder)
    try:
        if (folder / "u.item").is_file():
            raw = pd.read_csv(folder / "u.item", sep="|", header=None, encoding="latin-1",
                              quoting=csv.QUOTE_NONE, dtype=str)
            genre_names = _ml100k_genres(folder)
            flags = raw.iloc[:, 5:].astype(int).to_numpy()
            genres = ["|".join(g for g, f in zip(genre_names, row, strict=False) if f)
                      for row in flags]
            return pd.DataFrame({"item": raw[0].astype(np.int64), "title": raw[1],
                                 "genres": genres})
        if (folder / "movies.dat").is_file():
            rows = []
            with open(folder / "movies.dat", "rb") as fh:
                data = fh.read()
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = data.decode("latin-1")
            for line in text.splitlines():
                if line.strip():
                    movie, rest = line.split("::", 1)
                    title, _, genres = rest.rpartition("::")
                    rows.append((int(movie), title, genres))
            return pd.DataFrame(rows, columns=["item", "title", "genres"])
        if (folder / "movies.csv").is_file():
            raw = pd.read_csv(folder / "movies.csv", encoding="utf-8", dtype={"title": str})
            return pd.DataFrame({"item": raw["movieId"].astype(np.int64), "title": raw["title"],
                                 "genres": raw.get("genres", "")})
    except (ValueError, KeyError, OSError, pd.errors.ParserError):
        return None  # metadata is a nicety: a damaged file never blocks training
    return None


def _ml100k_genres(folder: Path) -> list[str]:
    path = folder / "u.genre"
    if path.is_file():
        text = path.read_text(encoding="latin-1")
        return [ln.split("|")[0] for ln in text.splitlines() if ln.strip()]
    return ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
            "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
            "Romance", "Sci-Fi", "Thriller", "War", "Western"]
