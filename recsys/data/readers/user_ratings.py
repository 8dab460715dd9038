"""One new user's ratings from a small text file (``recsys fold-in MODEL RATINGS``)."""

from __future__ import annotations

import io
import re
import zlib
from pathlib import Path

import numpy as np

from recsys.data.readers.layout import FLOAT32_LIMIT, _not_finite_word, _number
from recsys.data.readers.source import (
    LineTooLong,
    _check_readable,
    _open_binary,
    line_too_long_reason,
)
from recsys.errors import DataError, shorten


def read_user_ratings(path) -> tuple[np.ndarray, np.ndarray]:
    """One new user's ratings from a text file of ``item,rating`` lines.

    The separator may be a comma, a tab, a semicolon or spaces; a first line naming the
    columns and lines starting with ``#`` are skipped. Items are returned as text (the
    model reads them as its own id type). Ratings follow the grammar of every reader (no
    '_', hex or words) and must fit in float32; a line may hold at most
    ``source.MAX_LINE_BYTES``. Raises ``DataError`` naming file, line and text.
    """
    items, values, first, line_no = [], [], True, 0
    _check_readable(Path(path))
    try:
        with _open_binary(path) as raw, \
                io.TextIOWrapper(io.BufferedReader(raw), encoding="utf-8") as fh:
            for line_no, line in enumerate(fh, 1):
                text = line.strip()
                if not text or text.startswith("#"):
                    continue
                fields = [f for f in re.split(r"[,\t;]|\s+", text) if f != ""]
                if len(fields) != 2:
                    raise DataError("expected two fields, item and rating", path, line_no, text)
                value = _number(fields[1])
                if value is None:
                    if first and fields[1].isalpha() and not _not_finite_word(fields[1]):
                        first = False
                        continue  # a header line such as "item,rating"
                    raise DataError("rating is not a "
                                    + ("finite number" if _not_finite_word(fields[1])
                                       else "number"), path, line_no, text)
                first = False
                if not abs(value) < FLOAT32_LIMIT:
                    raise DataError("rating does not fit in float32", path, line_no, text)
                items.append(fields[0])
                values.append(value)
    except UnicodeDecodeError:
        raise DataError("not a UTF-8 text file", path) from None
    except LineTooLong as exc:
        raise DataError(line_too_long_reason(), path, line_no + 1,
                        exc.head.decode("utf-8", "replace")) from None
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read the file ({shorten(exc)})", path) from None
    if len(set(items)) != len(items):
        seen = set()
        dup = next(i for i in items if i in seen or seen.add(i))
        raise DataError(f"item {shorten(dup)!r} is rated more than once", path)
    return np.array(items, dtype=str), np.array(values, dtype=np.float64)
