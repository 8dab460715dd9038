"""How a delimited ratings file is laid out, and how its fields read.

``sniff`` works out the separator, the header, the column roles and the id types from the
head of a file; the names a header may give each role (``_NAMES``) are also how columns of
a DataFrame or Parquet file are found. ``_split`` is the one rule for the fields of a line
(RFC 4180 quoting), ``_number`` for numbers and ``_integer`` for integer fields.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from recsys.data.readers.source import _check_readable, _decode_sample, _head
from recsys.errors import DataError, shorten

_SEPARATORS = ("::", "\t", ",", ";", "|")
_INT_RE = re.compile(r"\s*[+-]?[0-9]+\s*")
#: The one grammar of numbers, in every pass: ASCII digits with an optional sign, fraction
#: and exponent. No '_' (which Python's float() takes), no hex, no words (inf, nan).
NUMBER_PATTERN = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"  # linear time
_NUMBER_RE = re.compile(NUMBER_PATTERN)
_NOT_FINITE = {"nan", "inf", "infinity"}
#: The smallest magnitude that rounds to infinity in float32 (ratings are stored so).
FLOAT32_LIMIT = float(2**128 - 2**103)
_QUOTED_RE = re.compile(r'"[^"]*(?:""[^"]*)*"?')
_SPACE_RE = re.compile(r"\s")
_NAMES = {
    "user": {"user", "userid", "user_id", "uid", "customer", "customerid", "customer_id"},
    "item": {"item", "itemid", "item_id", "movie", "movieid", "movie_id", "iid", "product",
             "productid", "product_id"},
    "rating": {"rating", "ratings", "score", "value", "stars", "count", "counts", "plays",
               "clicks", "weight"},
    "timestamp": {"timestamp", "time", "ts", "date", "datetime", "unixtime"},
}
_INT64_MAX = 2**63 - 1


@dataclass
class Layout:
    """How a delimited ratings file is laid out: what ``sniff`` found or the user declared."""

    sep: str
    header_lines: int
    n_fields: int
    columns: dict  # role -> 0-based field position (user, item, rating?, timestamp?)
    int_ids: dict = field(default_factory=lambda: {"user": True, "item": True})
    encoding: str = "utf-8-sig"
    quoted: bool = False  # double quotes in the head: fields may be quoted (RFC 4180)

    def describe(self) -> str:
        sep = {"\t": "tab", " ": "white space", None: "white space"}.get(self.sep, repr(self.sep))
        return f"{self.n_fields} fields separated by {sep}"


class FieldError(ValueError):
    """A line whose fields cannot be told apart (its quoting breaks RFC 4180)."""


def _split(line: str, sep: str | None) -> list[str]:
    """The fields of a line, separated by ``sep`` (None: runs of white space).

    Quoting follows RFC 4180: a field that starts with a double quote ends at the next
    lone one; inside it a separator is text and a doubled quote stands for one. Blanks
    (spaces, tabs that do not separate) around a quoted field are ignored. A quoted field
    left open at the line's end, text after the closing quote, or a quote inside a field
    that does not start with one raise ``FieldError``. Fields keep the blanks around them
    otherwise (the rules for each field strip them).
    """
    if '"' not in line:
        return line.split() if sep is None else line.split(sep)
    return _split_quoted(line, sep)


def _split_quoted(line: str, sep: str | None) -> list[str]:
    if sep is None:
        line = line.strip()
        blanks = ""
    else:
        blanks = "".join(c for c in " \t" if c not in sep)
    fields, i, n = [], 0, len(line)
    while True:
        j = i
        while j < n and line[j] in blanks:
            j += 1
        if j < n and line[j] == '"':
            parts, k = [], j + 1
            while True:
                q = line.find('"', k)
                if q < 0:
                    raise FieldError(f"field {len(fields) + 1} opens a double quote that is "
                                     "not closed on its line")
                parts.append(line[k:q])
                if not line.startswith('"', q + 1):
                    break
                parts.append('"')
                k = q + 2
            fields.append("".join(parts))
            i = q + 1
            while i < n and line[i] in blanks:
                i += 1
            if i == n:
                return fields
            if sep is None and line[i].isspace() or sep is not None and \
                    line.startswith(sep, i):
                pass
            else:
                raise FieldError(f"text after the closing quote of field {len(fields)} "
                                 "(a double quote inside a quoted field is written twice)")
        else:
            if sep is None:
                space = _SPACE_RE.search(line, i)
                end = n if space is None else space.start()
            else:
                end = line.find(sep, i)
                end = n if end < 0 else end
            if '"' in line[i:end]:
                raise FieldError(f"double quote inside field {len(fields) + 1}, which does "
                                 "not start with one (quote the whole field and write the "
                                 "quote twice)")
            fields.append(line[i:end])
            i = end
            if i == n:
                return fields
        if sep is None:
            while i < n and line[i].isspace():
                i += 1
        else:
            i += len(sep)


def _detect_sep(line: str) -> str | None:
    line = _QUOTED_RE.sub("", line)  # a separator inside a quoted field does not count
    for sep in _SEPARATORS:
        if sep in line:
            return sep
    return None  # white space


def _number(text: str) -> float | None:
    """A number field (stripped) in the one grammar (``NUMBER_PATTERN``); None otherwise.
    Its value is Python's correctly rounded ``float`` of it (inf past float64's range)."""
    return float(text) if _NUMBER_RE.fullmatch(text) else None


def _is_number(text: str) -> bool:
    return _number(text.strip()) is not None


def _not_finite_word(text: str) -> bool:
    """'nan', 'inf', 'infinity' with any case or sign: a number, but not a finite one."""
    return text.lower().lstrip("+-") in _NOT_FINITE


def _role_of(name: str) -> str | None:
    key = name.strip().strip('"').lower()
    for role, names in _NAMES.items():
        if key in names:
            return role
    return None


def _named_roles(names) -> list | None:
    """The role of each column by its name; None unless both a user and an item are named."""
    found = [_role_of(str(name)) for name in names]
    return found if {"user", "item"} <= set(found) else None


def _default_roles(n: int) -> list:
    """Roles by position: user, item, rating, timestamp; further columns unused."""
    return ["user", "item", "rating", "timestamp"][:n] + [None] * (n - 4)


def _positions(roles) -> dict:
    """role -> position of the first column with that role."""
    positions = {}
    for pos, role in enumerate(roles):
        if role is not None and role not in positions:
            positions[role] = pos
    return positions


def _missing_roles(found, need_rating: bool) -> list[str]:
    return [r for r in ("user", "item") + (("rating",) if need_rating else ())
            if r not in found]


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
            raise DataError(f"unknown column name {shorten(name)!r} in --columns "
                            "(use user, item, rating, timestamp or - to skip)")
        roles.append(role)
    return roles


def sniff(path, *, sep: str | None = None, columns: list | None = None,
          header: bool | None = None, need_rating: bool = True,
          id_type: str | None = None) -> Layout:
    """Work out separator, header, column roles and id types from the head of a file."""
    path = Path(path)
    _check_readable(path)
    raw, whole = _head(path)
    text, encoding = _decode_sample(raw)
    lines = text.splitlines()
    if not whole and len(lines) > 1:
        lines = lines[:-1]  # the head may end mid-line
    first_no, first = next(((n, ln) for n, ln in enumerate(lines, 1) if ln.strip()), (0, ""))
    if not first.strip():
        raise DataError("file is empty: no ratings found", path)
    if sep is None:
        sep = _detect_sep(first)
    elif sep in ("\\t", "tab"):
        sep = "\t"
    elif sep in (" ", "space", "whitespace"):
        sep = None
    try:
        fields = _split(first, sep)
    except FieldError as exc:
        raise DataError(str(exc), path, first_no, first) from None
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
        roles = _named_roles(fields)
    if roles is None:
        roles = _default_roles(len(fields))
    positions = _positions(roles)
    missing = _missing_roles(positions, need_rating)
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
        try:
            sample = [_split(ln, sep) for ln in data_lines[:1]]
        except FieldError:
            sample = []  # the passes name the line
        values = [f[positions[role]] for f in sample if len(f) > positions[role]]
        int_ids[role] = bool(values) and all(_integer(v.strip()) is not None for v in values)
    if not data_lines:
        raise DataError("file has a header but no ratings", path, first_no, first)
    quoted = '"' in first or any('"' in ln for ln in data_lines[:1])
    return Layout(sep, first_no if header else first_no - 1, n_fields, positions, int_ids,
                  encoding, quoted)


def _integer(text: str) -> int | None:
    """An integer field as pandas' C parser reads it: ASCII digits (with a sign), or a
    number (``_number``) with no fraction ('12.0', '1e3'); None for anything else. One of
    more than 19 digits comes back as a number past 64 bits, whatever its value."""
    if _INT_RE.fullmatch(text):
        digits = text.strip().lstrip("+-").lstrip("0")
        if len(digits) > 19:  # past 64 bits (and int() refuses thousands of digits)
            return _INT64_MAX + 1
        return int(text)
    number = _number(text.strip())
    if number is None or not math.isfinite(number) or not number.is_integer():
        return None
    return int(number)
