"""Parquet files: read whole through pandas (pyarrow), then checked like a DataFrame."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from recsys.data.readers.frames import read_table
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


def _read_parquet(path: Path, *, columns, named, scale, need_rating, skip_bad_lines, id_type,
                  report):
    """Read a Parquet file (needs pyarrow); rows play the part of lines in messages."""
    _check_readable(path)
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        from recsys.version import DISTRIBUTION

        raise DataError(f"reading Parquet needs pyarrow: pip install '{DISTRIBUTION}[parquet]'",
                        path) from None
    try:
        table = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds
        raise DataError(f"cannot read Parquet file ({exc})", path) from None
    return read_table(table, str(path), columns=columns, named=named, scale=scale,
                      need_rating=need_rating, skip_bad_lines=skip_bad_lines, id_type=id_type,
                      report=report, what="file")
