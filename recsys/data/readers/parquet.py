"""Parquet files: read whole through pandas (pyarrow); rows play the part of lines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.readers.layout import _role_of
from recsys.data.readers.lines import BadLines, _coded
from recsys.data.readers.source import _check_readable
from recsys.errors import DataError


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
