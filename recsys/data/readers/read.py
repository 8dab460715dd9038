"""The entry points: ``read_ratings`` and ``read_pairs`` of a file or a DataFrame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.duplicates import DUPLICATE_POLICIES, resolve_duplicates
from recsys.data.movielens import read_item_titles
from recsys.data.ratings import Ratings
from recsys.data.readers import chunked, compiled, lines
from recsys.data.readers.frames import FRAME_SOURCE, read_table
from recsys.data.readers.layout import parse_columns, sniff
from recsys.data.readers.lines import BadLines
from recsys.data.readers.parquet import _is_parquet, _read_parquet
from recsys.data.readers.source import local_file
from recsys.errors import DataError

#: Ratings outside this closed interval are rejected unless the caller declares another.
DEFAULT_SCALE = (0.5, 5.0)


def read_ratings(source, *, sep: str | None = None, columns=None, header: bool | None = None,
                 scale=DEFAULT_SCALE, skip_bad_lines: bool = False, duplicates: str = "error",
                 id_type: str | None = None, report: BadLines | None = None,
                 user_col=None, item_col=None, rating_col=None, timestamp_col=None) -> Ratings:
    """Read ratings from a file (a path) or a pandas DataFrame into ``Ratings``.

    ``sep``, ``columns`` (a list of roles or a ``--columns`` string), ``header`` and
    ``id_type`` ('int' or 'str') override detection. ``scale`` is the closed interval valid
    ratings lie in (None: any finite number). ``duplicates`` says what to do with a second
    rating of the same (user, item): 'error' (default), keep the 'last', or take the 'mean'.
    With ``skip_bad_lines`` bad lines (rows of a table) are dropped and counted in
    ``report``. ``user_col``, ``item_col``, ``rating_col`` and ``timestamp_col`` name the
    columns of a DataFrame or Parquet file (by default they are found by name, else taken
    by position). A DataFrame gets the same checks as a file; its errors name the row.
    """
    return _read(source, sep=sep, columns=columns, header=header, scale=scale,
                 skip_bad_lines=skip_bad_lines, duplicates=duplicates, id_type=id_type,
                 report=report, need_rating=True,
                 named={"user": user_col, "item": item_col, "rating": rating_col,
                        "timestamp": timestamp_col})


def read_pairs(source, *, sep=None, columns=None, header=None, id_type=None,
               scale=DEFAULT_SCALE, skip_bad_lines=False, report=None, user_col=None,
               item_col=None, rating_col=None, timestamp_col=None) -> pd.DataFrame:
    """Read (user, item) pairs to predict, from anything ``read_ratings`` takes.

    A rating column, if present, is read and checked like training input (so a ratings
    file can be used as it is); repeated pairs are allowed.
    """
    return _read(source, sep=sep, columns=columns, header=header, scale=scale,
                 skip_bad_lines=skip_bad_lines, duplicates="allow", id_type=id_type,
                 report=report, need_rating=False, as_frame=True,
                 named={"user": user_col, "item": item_col, "rating": rating_col,
                        "timestamp": timestamp_col})


def read_events(source, *, sep=None, columns=None, header=None, id_type=None,
                skip_bad_lines=False, report=None, user_col=None, item_col=None,
                count_col=None, timestamp_col=None) -> Ratings:
    """Read implicit feedback (plays, clicks, purchases) into ``Ratings`` of counts.

    Each line (row) is one event of a (user, item) pair, or as many as its count column
    says (any number >= 0; a column found by name like a rating column, or ``count_col``);
    repeated pairs add up. For the ranking objective with ``threshold=None``
    (``recsys train --implicit``), which weighs each pair by its count.
    """
    return _read(source, sep=sep, columns=columns, header=header,
                 scale=(0.0, float("inf")), skip_bad_lines=skip_bad_lines, duplicates="sum",
                 id_type=id_type, report=report, need_rating=False,
                 named={"user": user_col, "item": item_col, "rating": count_col,
                        "timestamp": timestamp_col})


def _read(source, *, sep, columns, header, scale, skip_bad_lines, duplicates, id_type, report,
          need_rating, as_frame=False, named=None):
    if duplicates not in DUPLICATE_POLICIES + ("allow",):
        raise ValueError(f"duplicates must be one of {DUPLICATE_POLICIES}")
    if isinstance(columns, str):
        columns = parse_columns(columns)
    named = {role: name for role, name in (named or {}).items() if name is not None}
    table = dict(columns=columns, named=named, scale=scale, need_rating=need_rating,
                 skip_bad_lines=skip_bad_lines, id_type=id_type, report=report)
    item_titles_of, unit = None, "row"
    if isinstance(source, pd.DataFrame):
        if sep is not None or header is not None:
            raise ValueError("sep and header apply to delimited files, not to a DataFrame")
        name = FRAME_SOURCE
        frame, line_of = read_table(source, name, **table)
    else:
        with local_file(source) as (path, name):
            try:
                frame, line_of, unit = _read_file(path, sep, columns, header, table, report,
                                                  duplicates == "error")
            except DataError as exc:
                if str(exc.path) == str(path) and name != str(path):
                    raise exc.renamed(name) from None
                raise
            if report is not None and name != str(path):
                report.examples = [_renamed(text, path, name) for text in report.examples]
            if name == str(path):  # a copy has no files beside it
                item_titles_of = path
    user_map, item_map = frame.pop("user_map"), frame.pop("item_map")
    users, items = frame["user"], frame["item"]
    if as_frame:
        out = {"user": user_map.ids[users], "item": item_map.ids[items]}
        out.update({k: v for k, v in frame.items() if k not in ("user", "item")})
        return pd.DataFrame(out)

    cut_short = frame.pop("cut_short", False)
    stamps = frame.get("timestamp")
    values = frame["rating"] if "rating" in frame else np.ones(len(users), dtype=np.float32)
    n_read = len(values)
    if duplicates != "allow":
        users, items, values, stamps = resolve_duplicates(
            users, items, values, stamps, duplicates, len(user_map), len(item_map), line_of,
            name, unit)
    if cut_short:  # the ratings read hold a duplicate for sure: resolving raised
        raise AssertionError("a read stopped at a certain duplicate found none")
    ratings = Ratings(users, items, values, user_map, item_map, stamps, source=name)
    if len(ratings) < n_read:
        ratings = ratings.compact()
    if item_titles_of is not None:
        ratings.item_titles = read_item_titles(item_titles_of, ratings.item_map)
    return ratings


def _read_file(path: Path, sep, columns, header, table: dict, report, stop_at_duplicate):
    """A file's frame, the line (or row, for Parquet) of each rating, and which it is."""
    if _is_parquet(path):
        frame, line_of = _read_parquet(path, **table)
        return frame, line_of, "row"
    if table["named"]:
        raise ValueError("user_col, item_col, rating_col and timestamp_col name the "
                         "columns of a DataFrame or Parquet file; a delimited file "
                         "takes columns=")
    frame, line_of = _read_delimited(path, sep, columns, header, table["scale"],
                                     table["need_rating"], table["skip_bad_lines"],
                                     table["id_type"], report, stop_at_duplicate)
    return frame, line_of, "line"


def _renamed(text: str, path: Path, name: str) -> str:
    """A message about a copy of an input, naming the input."""
    return name + text[len(str(path)):] if text.startswith(str(path)) else text


def _read_delimited(path, sep, columns, header, scale, need_rating, skip_bad_lines, id_type,
                    report, stop_at_duplicate=False):
    """Read a delimited file by the fastest pass that takes it. With ``stop_at_duplicate``
    (duplicates are an error) a pass may stop early, marking the frame ``cut_short``, once
    the ratings read so far must hold a duplicate: more of them than users times items
    seen. A billion copies of one line then stop after the first million."""
    layout = sniff(path, sep=sep, columns=columns, header=header, need_rating=need_rating,
                   id_type=id_type)
    frame = _vectorized(path, layout, scale, stop_at_duplicate)
    if frame is not None:
        blank = frame.pop("blank_rows", np.empty(0, dtype=np.int64))  # rows after empty lines
        return frame, lambda row: layout.header_lines + row + 1 + \
            int(np.searchsorted(blank, row, side="right"))

    raw, line_nos, bad = lines._slow_read(path, layout, scale, skip_bad_lines,
                                          stop_at_duplicate)
    cut_short = raw.pop("cut_short", False)
    if report is not None:
        report.count, report.examples = bad.count, bad.examples
    if len(raw["user"]) == 0:
        raise DataError("no valid ratings found" + (f" ({bad.count} bad lines skipped)"
                                                    if bad.count else ""), path)
    frame = lines._coded(raw)
    if cut_short:
        frame["cut_short"] = True
    return frame, lambda row: int(line_nos[row])


def _vectorized(path, layout, scale, stop_at_duplicate=False):
    """The vectorized passes: the compiled kernel for big plain files, else pandas' C
    parser chunk by chunk; None when anything is off (the line-by-line pass decides)."""
    if compiled._kernel_applies(path, layout):
        frame = compiled._kernel_read(path, layout, scale, stop_at_duplicate)
        if frame is not compiled._ODD:
            return frame
    return chunked._fast_read(path, layout, scale, stop_at_duplicate)
