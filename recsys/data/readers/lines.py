"""The line-by-line pass: the exact rules every data line must meet.

It reads any file the faster passes cannot take as it is, finds the first bad line and says
what is wrong with it (or, with ``skip_bad_lines``, drops the bad lines and reports them in
``BadLines``). The faster passes accept and reject the same lines.
"""

from __future__ import annotations

import io
import math
import zlib
from array import array
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recsys.data.ratings import IdMap
from recsys.data.readers.layout import (
    _INT64_MAX,
    FLOAT32_LIMIT,
    FieldError,
    Layout,
    _integer,
    _not_finite_word,
    _number,
    _split,
)
from recsys.data.readers.source import LineTooLong, _open_binary, line_too_long_reason
from recsys.errors import DataError, shorten


@dataclass
class BadLines:
    """Lines dropped by a lenient read: how many, and the first few with their reasons."""

    count: int = 0
    examples: list = field(default_factory=list)

    def add(self, error: DataError, keep: int = 5) -> None:
        self.count += 1
        if len(self.examples) < keep:
            self.examples.append(str(error))



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
            if "\x00" in value:  # NumPy's text arrays would drop it, merging two ids
                self._fail(f"{role} id {shorten(value)!r} holds a NUL character", line_no,
                           text)
            return value
        number = _integer(value)
        if number is None:
            self._fail(f"{role} id {shorten(value)!r} is not an integer like the ids before "
                       "it (use --id-type str for text ids)", line_no, text)
        if not -_INT64_MAX - 1 <= number <= _INT64_MAX:
            self._fail(f"{role} id {shorten(value)} does not fit in a 64-bit integer",
                       line_no, text)
        return number

    def parse(self, line: str, line_no: int):
        layout = self.layout
        try:
            fields = _split(line, layout.sep)
        except FieldError as exc:
            self._fail(str(exc), line_no, line)
        if len(fields) != layout.n_fields:
            self._fail(f"expected {layout.describe()}, found {len(fields)}", line_no, line)
        cols = layout.columns
        user = self._id("user", fields[cols["user"]], line_no, line)
        item = self._id("item", fields[cols["item"]], line_no, line)
        rating = math.nan
        if self.has_rating:
            raw = fields[cols["rating"]].strip()
            rating = _number(raw)
            if rating is None:
                self._fail(f"rating {shorten(raw)!r} is not "
                           + ("a finite number" if _not_finite_word(raw) else "a number"),
                           line_no, line)
            if not abs(rating) < FLOAT32_LIMIT:
                self._fail(f"rating {shorten(raw)} does not fit in float32, the type ratings "
                           "are stored in", line_no, line)
            if self.scale is not None and not self.scale[0] <= rating <= self.scale[1]:
                self._fail(f"rating {shorten(raw)} is outside the scale "
                           f"{self.scale[0]:g}..{self.scale[1]:g} (set the scale with --scale "
                           "MIN,MAX)", line_no, line)
        ts = 0
        if "timestamp" in cols:
            raw = fields[cols["timestamp"]].strip()
            ts = _integer(raw)
            if ts is None or not -_INT64_MAX - 1 <= ts <= _INT64_MAX:
                self._fail(f"timestamp {shorten(raw)!r} is not an integer", line_no, line)
        return user, item, rating, ts


def _lines(path: Path, encoding: str):
    """Yield (line number, text) with universal newlines; Latin-1 if UTF-8 fails midway
    (from the line it failed on: the lines before it are not given twice). A line past
    the limit (``source.MAX_LINE_BYTES``) is a DataError, even when bad lines are skipped:
    reading on would mean holding it."""
    done = 0
    try:
        with _open_binary(path) as raw:
            stream = io.TextIOWrapper(io.BufferedReader(raw), encoding=encoding,
                                      errors="strict", newline=None)
            try:
                for n, line in enumerate(stream, 1):
                    yield n, line.rstrip("\n")
                    done = n
            except UnicodeDecodeError:
                pass
            else:
                return
    except LineTooLong as exc:
        raise DataError(line_too_long_reason(), path, done + 1,
                        exc.head.decode(encoding, "replace")) from None
    yield from ((n, ln) for n, ln in _lines(path, "latin-1") if n > done)


#: With ``stop_at_duplicate``, how often (in ratings) the line-by-line pass looks.
_DUPLICATE_CHECK = 1 << 20


def _slow_read(path: Path, layout: Layout, scale, skip_bad_lines, stop_at_duplicate=False):
    """Read every line by the rules. Integer ids, ratings, timestamps and line numbers are
    kept in typed arrays (8 bytes a value, where lists would hold objects), so this pass
    too stays near the final arrays; text ids are kept as the strings. With
    ``stop_at_duplicate`` it stops once the ratings read must hold a duplicate (more of
    them than users times items), marking the frame ``cut_short``."""
    parser = _LineParser(path, layout, scale)
    id_kind = {r: "q" if layout.int_ids[r] else None for r in ("user", "item")}
    users = array("q") if id_kind["user"] else []
    items = array("q") if id_kind["item"] else []
    values, stamps, line_nos = array("d"), array("q"), array("q")
    has_ts = "timestamp" in layout.columns
    bad = BadLines()
    seen_users, seen_items, checked, cut_short = set(), set(), 0, False
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
            if has_ts:
                stamps.append(t)
            line_nos.append(line_no)
            if stop_at_duplicate and len(line_nos) - checked >= _DUPLICATE_CHECK:
                seen_users.update(users[checked:])
                seen_items.update(items[checked:])
                checked = len(line_nos)
                if checked > len(seen_users) * len(seen_items):
                    cut_short = True
                    break
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"file is damaged or truncated ({exc})", path) from None

    def column(values, dtype):
        return np.frombuffer(values, dtype=dtype) if isinstance(values, array) and \
            len(values) else np.array(values, dtype=dtype)

    frame = {
        "user": column(users, np.int64 if id_kind["user"] else object),
        "item": column(items, np.int64 if id_kind["item"] else object),
        "rating": column(values, np.float64),
    }
    if has_ts:
        frame["timestamp"] = column(stamps, np.int64)
    if cut_short:
        frame["cut_short"] = True
    return frame, column(line_nos, np.int64), bad


def _coded(raw: dict) -> dict:
    """Raw id columns -> int32 codes and id maps; values as float32."""
    frame = dict(raw)
    frame["user_map"], frame["user"] = IdMap.from_values(raw["user"])
    frame["item_map"], frame["item"] = IdMap.from_values(raw["item"])
    if "rating" in frame:
        frame["rating"] = np.asarray(frame["rating"], dtype=np.float32)
    return frame
