"""Readers for ratings files: MovieLens formats, delimited text of any kind, gzip.

The format is detected from the content: the separator (``::``, tab, comma, semicolon,
``|`` or white space), whether the first line is a header, and whether ids are integers or
strings. Reading is done by pandas' C parser in one vectorized pass; when that pass meets
anything it cannot take as it is, a line-by-line pass with the same rules finds the exact
line and says what is wrong with it (or, with ``skip_bad_lines``, drops the bad lines and
reports them). Both passes accept and reject the same lines.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import os
import re
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError
from .ratings import IdMap, Ratings

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
    required = ("user", "item", "rating") if need_rating else ("user", "item")
    missing = [r for r in required if r not in positions]
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
        int_ids[role] = bool(values) and all(_INT_RE.match(v) for v in values)
    if not data_lines:
        raise DataError("file has a header but no ratings", path, first_no, first)
    quoted = any('"' in ln for ln in data_lines[:1])
    return Layout(sep, first_no if header else first_no - 1, n_fields, positions, int_ids,
                  encoding, quoted)


# --------------------------------------------------------------------------- line checks


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
        if not _INT_RE.match(value):
            self._fail(f"{role} id {value!r} is not an integer like the ids before it "
                       "(use --id-type str for text ids)", line_no, text)
        number = int(value)
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
            if not _INT_RE.match(raw) or abs(int(raw)) > _INT64_MAX:
                self._fail(f"timestamp {raw!r} is not an integer", line_no, line)
            ts = int(raw)
        return user, item, rating, ts


def _lines(path: Path, encoding: str):
    """Yield (line number, text) with universal newlines; Latin-1 if UTF-8 fails midway."""
    with _open_binary(path) as raw:
        stream = io.TextIOWrapper(raw, encoding=encoding, errors="strict", newline=None)
        try:
            for n, line in enumerate(stream, 1):
                yield n, line.rstrip("\n")
        except UnicodeDecodeError:
            pass
        else:
            return
    yield from ((n, ln) for n, ln in _lines(path, "latin-1"))


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


def _fast_read(path: Path, layout: Layout):
    """One vectorized pandas pass; returns None when anything is off (the slow pass decides)."""
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
    # Every field is read (no usecols), so a line with too many fields is an error rather
    # than silently cut; with "::" the odd positions must be empty (float NaN) or the line
    # held a stray ":".
    n_total = layout.n_fields * scale_pos - (scale_pos - 1)
    names_by_pos = {cols[r] * scale_pos: r for r in wanted}
    usecols = sorted(names_by_pos)
    column_dtypes = {p: (dtypes[names_by_pos[p]] if p in names_by_pos
                         else np.float64 if p % scale_pos else object) for p in range(n_total)}
    try:
        with warnings.catch_warnings():  # NaN cast warnings: such files go to the exact pass
            warnings.simplefilter("ignore", RuntimeWarning)
            frame = pd.read_csv(
                path, sep=sep, header=None, names=list(range(n_total)),
                skiprows=layout.header_lines, dtype=column_dtypes, engine="c",
                encoding=layout.encoding, skip_blank_lines=False, quotechar='"',
                quoting=csv.QUOTE_MINIMAL if layout.quoted else csv.QUOTE_NONE,
                on_bad_lines="error", compression="gzip" if _is_gzip(path) else None,
                na_filter=True, keep_default_na=False, na_values=[""], low_memory=False,
            )
    except (ValueError, OverflowError, UnicodeDecodeError, pd.errors.ParserError,
            pd.errors.EmptyDataError, OSError, EOFError, zlib.error):
        return None
    if scale_pos == 2 and frame[[p for p in range(1, n_total, 2)]].notna().to_numpy().any():
        return None
    if len(frame.columns) != n_total:
        return None
    # more fields than declared on a line fail above; fewer leave NaN or None below
    out = {names_by_pos[p]: frame[p].to_numpy() for p in usecols}
    for role in ("user", "item"):
        column = out[role]
        if column.dtype.kind == "O":
            if pd.isna(column).any():
                return None
            column = column.astype(str)
            if (np.char.str_len(np.char.strip(column)) == 0).any():
                return None
            out[role] = column
    if "rating" in out:
        if not np.isfinite(out["rating"]).all():
            return None
    return out


def _check_scale(values, scale, line_of, path):
    if scale is None or len(values) == 0:
        return
    bad = np.flatnonzero((values < scale[0]) | (values > scale[1]))
    if len(bad):
        i = int(bad[0])
        raise DataError(f"rating {values[i]:g} is outside the scale {scale[0]:g}..{scale[1]:g}"
                        " (set the scale with --scale MIN,MAX)", path, int(line_of(i)))


def _resolve_duplicates(users, items, values, stamps, policy, line_of, path):
    """Apply the duplicate (user, item) policy; returns the kept rows' arrays."""
    key = users.astype(np.int64) * (int(items.max()) + 1 if len(items) else 1) + items
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    dup = np.flatnonzero(sorted_key[1:] == sorted_key[:-1])
    if len(dup) == 0:
        return users, items, values, stamps
    if policy == "error":
        first, second = sorted((int(order[dup[0]]), int(order[dup[0] + 1])))
        raise DataError(f"duplicate rating for the same user and item (first on line "
                        f"{line_of(first)}; use --duplicates last or mean to allow them)",
                        path, int(line_of(second)))
    starts = np.r_[0, np.flatnonzero(sorted_key[1:] != sorted_key[:-1]) + 1]
    last_rows = order[np.r_[starts[1:] - 1, len(order) - 1]]
    keep = np.sort(last_rows)  # the last occurrence in file order survives, in file order
    if policy == "mean":
        group_sum = np.add.reduceat(values[order], starts)
        group_n = np.diff(np.r_[starts, len(order)])
        mean = group_sum / group_n
        by_row = np.empty(len(order), dtype=np.float64)
        by_row[last_rows] = mean
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
    layout = sniff(path, sep=sep, columns=columns, header=header, need_rating=need_rating,
                   id_type=id_type)
    frame = _fast_read(path, layout)
    line_nos = None
    if frame is None:
        frame, line_nos, bad = _slow_read(path, layout, scale, skip_bad_lines)
        if report is not None:
            report.count, report.examples = bad.count, bad.examples
        if len(frame["user"]) == 0:
            raise DataError("no valid ratings found" + (f" ({bad.count} bad lines skipped)"
                                                        if bad.count else ""), path)

    def line_of(row: int) -> int:
        return int(line_nos[row]) if line_nos is not None else layout.header_lines + row + 1

    if "rating" in frame:
        _check_scale(frame["rating"], scale, line_of, path)
    if as_frame:
        return pd.DataFrame(frame)

    stamps = frame.get("timestamp")
    user_map, users = IdMap.from_values(frame["user"])
    item_map, items = IdMap.from_values(frame["item"])
    values = frame["rating"]
    if duplicates != "allow":
        users, items, values, stamps = _resolve_duplicates(users, items, values, stamps,
                                                           duplicates, line_of, path)
    ratings = Ratings(users, items, values, user_map, item_map, stamps, source=str(path))
    if duplicates != "allow" and len(ratings) < len(frame["user"]):
        ratings = ratings.compact()
    ratings.item_titles = read_item_titles(path, item_map)
    return ratings


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
    titles = dict(zip(frame["item"].tolist(), frame["title"].tolist()))
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
            genres = ["|".join(g for g, f in zip(genre_names, row) if f) for row in flags]
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
