"""The line-by-line pass: the exact rules every data line must meet.

It reads any file the faster passes cannot take as it is, finds the first bad line and says
what is wrong with it (or, with ``skip_bad_lines``, drops the bad lines and reports them in
``BadLines``). The faster passes accept and reject the same lines.
"""

from __future__ import annotations

import io
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recsys.data.ratings import IdMap
from recsys.data.readers.layout import _INT64_MAX, Layout, _integer, _split
from recsys.data.readers.source import _open_binary
from recsys.errors import DataError


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



def _coded(raw: dict) -> dict:
    """Raw id columns -> int32 codes and id maps; values as float32."""
    frame = dict(raw)
    frame["user_map"], frame["user"] = IdMap.from_values(raw["user"])
    frame["item_map"], frame["item"] = IdMap.from_values(raw["item"])
    if "rating" in frame:
        frame["rating"] = np.asarray(frame["rating"], dtype=np.float32)
    return frame
