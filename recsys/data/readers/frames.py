"""Validation of tables in memory: a pandas DataFrame, or a Parquet file once read.

A table gets every check a ratings file gets, with rows in place of lines: ids that are
empty or (for integer ids) not integers or past 64 bits, ratings that are not numbers, not
finite or outside the scale, timestamps that are not integers. Column types decide the id
type unless ``id_type`` forces it: integer columns (and float columns of whole numbers) are
integer ids, other columns text ids, kept as they are (where a file's fields lose the
spaces around them). Datetime timestamps become Unix seconds. Columns are found by name
with the same names a file's header may use, else by position, or are named by the
caller. Every check is one vectorized pass over a column; only the rows shown in a message
are looked at one by one. Errors name the source (``DataFrame`` or the file), the 1-based
row and the value. Duplicates are resolved afterwards by ``recsys.data.duplicates``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.data.readers.layout import (
    _INT64_MAX,
    FLOAT32_LIMIT,
    NUMBER_PATTERN,
    _default_roles,
    _missing_roles,
    _named_roles,
    _positions,
    _role_of,
)
from recsys.data.readers.lines import BadLines, _coded
from recsys.errors import DataError, shorten

#: The source a DataFrame's errors and ``Ratings.source`` name.
FRAME_SOURCE = "DataFrame"
ROLES = ("user", "item", "rating", "timestamp")
_HINT_STR = "(use --id-type str for text ids)"
_HINT_SCALE = "(set the scale with --scale MIN,MAX)"
_PLAIN_INT = r"[+-]?[0-9]+"  # what int() takes exactly; other numbers go through float


def find_columns(table: pd.DataFrame, source: str, *, columns=None, named=None,
                 need_rating: bool = True) -> dict:
    """role -> column position: the columns ``named`` by the caller ({role: column name}),
    then ``columns`` (a role for each column in order), else those found by name (as in a
    file's header), else the first columns by position (user, item, rating, timestamp)."""
    names = list(table.columns)
    roles = {}
    for role, name in (named or {}).items():
        hits = [pos for pos, n in enumerate(names) if n == name]
        if not hits:
            raise DataError(f"no column {shorten(name)!r} among {shorten(names, 200)}", source)
        roles[role] = hits[0]
    if columns is not None:
        for role, pos in _positions(list(columns)[: len(names)]).items():
            roles.setdefault(role, pos)
    elif roles:
        for pos, name in enumerate(names):
            role = _role_of(str(name))
            if role is not None and role not in roles and pos not in roles.values():
                roles[role] = pos
    else:
        roles = _positions(_named_roles(names) or _default_roles(len(names)))
    missing = _missing_roles(roles, need_rating)
    if missing:
        raise DataError(f"no {' or '.join(missing)} column found among {shorten(names, 200)}",
                        source)
    return roles


def read_table(table: pd.DataFrame, source: str, *, columns=None, named=None, scale,
               need_rating: bool, skip_bad_lines: bool, id_type, report: BadLines | None,
               what: str = "frame"):
    """Check and code a table: the frame of coded columns and id maps (as the file readers
    give it), and the 1-based row of each of its ratings."""
    roles = find_columns(table, source, columns=columns, named=named, need_rating=need_rating)
    n = len(table)
    if n == 0:
        raise DataError(f"{what} is empty: no ratings found", source)
    raw, rules = {}, []  # rules: (rows that break it, reason of a row), in the order checked
    for role in ROLES:
        if role not in roles:
            continue
        series = table.iloc[:, roles[role]]
        if role in ("user", "item"):
            raw[role], found = _ids(series, role, id_type)
        elif role == "rating":
            raw[role], found = _ratings(series, scale)
        else:
            raw[role], found = _timestamps(series)
        rules += found
    bad = np.zeros(n, dtype=bool)
    for mask, _ in rules:
        bad |= mask
    lines = BadLines()
    for row in np.flatnonzero(bad)[: 1 if not skip_bad_lines else 5]:
        reason = next(why(row) for mask, why in rules if mask[row])
        error = DataError(reason, source, row=int(row) + 1)
        if not skip_bad_lines:
            raise error
        lines.add(error)
    lines.count = int(bad.sum())
    if report is not None:
        report.count, report.examples = lines.count, lines.examples
    if lines.count == n:
        raise DataError(f"no valid ratings found ({lines.count} bad rows skipped)", source)
    if lines.count:
        rows = np.flatnonzero(~bad)
        raw = {k: v[rows] for k, v in raw.items()}
        return _coded(raw), lambda k: int(rows[k]) + 1
    return _coded(raw), lambda k: int(k) + 1


# --------------------------------------------------------------------------- columns


def _numpy(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """A column as a NumPy array, and where it is missing (None, NA, NaT; NaN in a float
    column is a value, shown as 'nan' as a file would hold it)."""
    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        return series.to_numpy(), np.zeros(len(series), dtype=bool)
    missing = series.isna().to_numpy(dtype=bool)
    if isinstance(dtype, np.dtype):
        return series.to_numpy(), missing
    if isinstance(dtype, pd.CategoricalDtype):
        target = dtype.categories.dtype
        if missing.any() and isinstance(target, np.dtype) and target.kind in "iub":
            target = np.dtype(np.float64)
        return _numpy(series.astype(target))
    base = getattr(dtype, "numpy_dtype", None)  # nullable Int64, Float64, boolean
    if isinstance(base, np.dtype) and base.kind in "iufb":
        fill = np.nan if base.kind == "f" else base.type(0)
        return series.to_numpy(dtype=base, na_value=fill), missing
    return series.to_numpy(dtype=object, na_value=None), missing


def _texts(values: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Each value as text (as a CSV file would hold it); '' where missing."""
    text = pd.Series(values, dtype=object if values.dtype.kind == "O" else None).astype(str)
    text = text.to_numpy(dtype=object)
    text[missing] = ""
    return text


def _shown(values: np.ndarray, missing: np.ndarray, row: int) -> str:
    """The value of one row as a message shows it (as the line of a file would), shortened."""
    return "" if missing[row] else shorten(str(values[row]).strip())


def _stripped(text: np.ndarray) -> pd.Series:
    return pd.Series(text, dtype=object).str.strip()


def _integers(text: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer values of text (as ``layout._integer`` reads a field: digits, or a number
    with no fraction): the values (0 where none), where the text is no integer, and where
    it is one past 64 bits."""
    n = len(text)
    out = np.zeros(n, dtype=np.int64)
    big = np.zeros(n, dtype=bool)
    stripped = _stripped(text)
    plain = stripped.str.fullmatch(_PLAIN_INT).to_numpy(dtype=bool, na_value=False)
    if plain.any():
        numbers = pd.to_numeric(stripped[plain]).to_numpy()
        if numbers.dtype.kind in "uO":
            fits = (numbers <= _INT64_MAX) & (numbers >= -_INT64_MAX - 1)
            fits = np.asarray(fits, dtype=bool)
        else:
            fits = np.ones(len(numbers), dtype=bool)
        where = np.flatnonzero(plain)
        big[where[~fits]] = True
        out[where[fits]] = numbers[fits].astype(np.int64)
    other = ~plain
    whole = np.zeros(n, dtype=bool)
    if other.any():
        floats = _numbers(stripped[other])
        ok, fits = _whole(floats)
        where = np.flatnonzero(other)
        whole[where[ok]] = True
        big[where[ok & ~fits]] = True
        out[where[ok & fits]] = floats[ok & fits].astype(np.int64)
    return out, ~(plain | whole), big


def _numbers(text: pd.Series) -> np.ndarray:
    """Text as numbers by the one grammar of every reader (``layout.NUMBER_PATTERN``: no
    '_', no hex, no words); NaN where it is not one."""
    grammatical = text.str.fullmatch(NUMBER_PATTERN).to_numpy(dtype=bool, na_value=False)
    out = np.full(len(text), np.nan)
    if grammatical.any():
        out[grammatical] = pd.to_numeric(text[grammatical]).to_numpy(dtype=np.float64)
    return out


def _whole(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where float values are whole numbers, and where those fit in 64 bits."""
    with np.errstate(invalid="ignore"):
        whole = np.isfinite(values) & (values == np.floor(values))
        fits = whole & (values >= -(2.0**63)) & (values < 2.0**63)
    return whole, fits


def _ids(series: pd.Series, role: str, id_type):
    """Raw ids of a column (int64, or text as objects) and the rules they must meet."""
    values, missing = _numpy(series)
    kind = values.dtype.kind
    if kind == "f":
        missing = missing | np.isnan(values)  # NaN in a float column of ids: a missing id
    as_int = id_type == "int" if id_type is not None else kind in "iuf"
    if not as_int:
        text = _texts(values, missing)
        stripped = _stripped(text)
        empty = missing | (stripped == "").to_numpy(dtype=bool)
        nul = stripped.str.contains("\x00", regex=False).to_numpy(dtype=bool, na_value=False)

        def shown_text(row):
            return shorten(stripped.iloc[row])

        return text, [(empty, lambda row: f"empty {role} id"),
                      (nul, lambda row: f"{role} id {shown_text(row)!r} holds a NUL character")]
    big = np.zeros(len(values), dtype=bool)
    if kind in "iu":
        not_int = np.zeros(len(values), dtype=bool)
        if kind == "u":
            big = values > _INT64_MAX
        ids = np.where(big, 0, values).astype(np.int64)
    elif kind == "f":
        whole, fits = _whole(values)
        not_int, big = ~whole & ~missing, whole & ~fits
        ids = np.where(fits, values, 0).astype(np.int64)
    else:
        text = _texts(values, missing)
        ids, not_int, big = _integers(text)
        missing = missing | (_stripped(text) == "").to_numpy(dtype=bool)
        not_int &= ~missing

    def shown(row):
        return _shown(values, missing, row)

    return ids, [
        (missing, lambda row: f"empty {role} id"),
        (not_int, lambda row: f"{role} id {shown(row)!r} is not an integer like the ids "
                              f"before it {_HINT_STR}"),
        (big, lambda row: f"{role} id {shown(row)} does not fit in a 64-bit integer"),
    ]


def _ratings(series: pd.Series, scale):
    """Ratings of a column (float64) and the rules they must meet."""
    values, missing = _numpy(series)
    kind = values.dtype.kind
    if kind in "iuf":
        numbers = values.astype(np.float64)
        not_number = missing  # NA in a nullable column
    else:
        text = _stripped(_texts(values, missing))
        numbers = _numbers(text)
        spelled = text.str.lower().str.lstrip("+-").isin(["nan", "inf", "infinity"])
        not_number = np.isnan(numbers) & ~spelled.to_numpy(dtype=bool)
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(numbers)
        big = finite & (np.abs(numbers) >= FLOAT32_LIMIT)
        finite &= ~big
        outside = np.zeros(len(values), dtype=bool) if scale is None else \
            finite & ((numbers < scale[0]) | (numbers > scale[1]))

    def shown(row):
        return _shown(values, missing, row)

    rules = [
        (not_number, lambda row: f"rating {shown(row)!r} is not a number"),
        (~finite & ~not_number & ~big,
         lambda row: f"rating {shown(row)!r} is not a finite number"),
        (big, lambda row: f"rating {shown(row)} does not fit in float32, the type ratings "
                          "are stored in"),
    ]
    if scale is not None:
        rules.append((outside, lambda row: f"rating {shown(row)} is outside the scale "
                                           f"{scale[0]:g}..{scale[1]:g} {_HINT_SCALE}"))
    return numbers, rules


def _timestamps(series: pd.Series):
    """Timestamps of a column (int64 seconds; datetimes as Unix seconds) and their rule."""
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        missing = series.isna().to_numpy(dtype=bool)
        if getattr(series.dtype, "tz", None) is not None:
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        stamps = series.to_numpy().astype("datetime64[s]").astype(np.int64)
        stamps[missing] = 0
        return stamps, [(missing, lambda row: "timestamp '' is not an integer")]
    values, missing = _numpy(series)
    kind = values.dtype.kind
    if kind in "iu":
        bad = values > _INT64_MAX if kind == "u" else np.zeros(len(values), dtype=bool)
        stamps = np.where(bad, 0, values).astype(np.int64)
    elif kind == "f":
        _, fits = _whole(values)
        bad, stamps = ~fits, np.where(fits, values, 0).astype(np.int64)
    else:
        stamps, not_int, big = _integers(_texts(values, missing))
        bad = not_int | big
    bad |= missing
    return stamps, [(bad, lambda row: f"timestamp {_shown(values, missing, row)!r} "
                                      "is not an integer")]
