"""One new user's ratings from a small text file (``recsys fold-in MODEL RATINGS``)."""

from __future__ import annotations

import re

import numpy as np

from recsys.errors import DataError


def read_user_ratings(path) -> tuple[np.ndarray, np.ndarray]:
    """One new user's ratings from a text file of ``item,rating`` lines.

    The separator may be a comma, a tab, a semicolon or spaces; a first line naming the
    columns and lines starting with ``#`` are skipped. Items are returned as text (the
    model reads them as its own id type). Raises ``DataError`` naming file, line and text.
    """
    items, values, first = [], [], True
    try:
        with open(path, encoding="utf-8") as fh:
            for line_no, line in enumerate(fh, 1):
                text = line.strip()
                if not text or text.startswith("#"):
                    continue
                fields = [f for f in re.split(r"[,\t;]|\s+", text) if f != ""]
                if len(fields) != 2:
                    raise DataError("expected two fields, item and rating", path, line_no, text)
                try:
                    value = float(fields[1])
                except ValueError:
                    if first and fields[1].isalpha():
                        first = False
                        continue  # a header line such as "item,rating"
                    raise DataError("rating is not a number", path, line_no, text) from None
                first = False
                if not np.isfinite(value):
                    raise DataError("rating is not a finite number", path, line_no, text)
                items.append(fields[0])
                values.append(value)
    except UnicodeDecodeError:
        raise DataError("not a UTF-8 text file", path) from None
    if len(set(items)) != len(items):
        seen = set()
        dup = next(i for i in items if i in seen or seen.add(i))
        raise DataError(f"item {dup!r} is rated more than once", path)
    return np.array(items, dtype=str), np.array(values, dtype=np.float64)
