"""How a delimited ratings file is laid out, and how its fields read.

``sniff`` works out the separator, the header, the column roles and the id types from the
head of a file; the names a header may give each role (``_NAMES``) are also how columns of
a DataFrame or Parquet file are found. ``_integer`` is the one rule for integer fields.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from recsys.data.readers.source import _SAMPLE_BYTES, _check_readable, _decode_sample, _read_head
from recsys.errors import DataError

_SEPARATORS = ("::", "\t", ",", ";", "|")
_INT_RE = re.compile(r"^\s*[+-]?\d+\s*$")
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
    quoted: bool = False  # fields wrapped in double quotes: let the parser unwrap them

    def describe(self) -> str:
        sep = {"\t": "tab", " ": "white space", None: "white space"}.get(self.sep, repr(self.sep))
        return f"{self.n_fields} fields separated by {sep}"


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
        sample = [_split(ln, sep) for ln in data_lines[:1]]
        values = [f[positions[role]] for f in sample if len(f) > positions[role]]
        int_ids[role] = bool(values) and all(_integer(v.strip()) is not None for v in values)
    if not data_lines:
        raise DataError("file has a header but no ratings", path, first_no, first)
    quoted = any('"' in ln for ln in data_lines[:1])
    return Layout(sep, first_no if header else first_no - 1, n_fields, positions, int_ids,
                  encoding, quoted)


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
