"""The compiled pass: big plain files parsed, checked and coded straight from their bytes.

Files from ``_KERNEL_BYTES`` on with integer ids in plain form (digits, ``digits.digits``
ratings, no quotes or spaces) go through the numba kernel (``kernels/cpu/parse.py``) a
block of ``_KERNEL_BLOCK`` bytes at a time; from ``_SPLIT_BYTES`` on two threads take the
two halves of the file. A line that breaks a rule hands the file to the line-by-line pass
(which names it); a line not in plain form, or longer than ``source.MAX_LINE_BYTES``,
hands it to the pandas pass.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.ratings import IdMap, IdMapBuilder
from recsys.data.readers.chunked import _CHUNK_ROWS, _Column, _estimate_rows
from recsys.data.readers.layout import Layout
from recsys.data.readers.source import MAX_LINE_BYTES, _is_gzip, _open_binary

#: Files from this size on are parsed by the compiled kernel: importing numba and loading
#: the kernel costs about a second, which pandas' slower parse makes up by about 45 MiB
#: (and training loads numba anyway).
_KERNEL_BYTES = 32 << 20
_KERNEL_BLOCK = 1 << 24
_ODD = object()  # the kernel met a line it does not take: the pandas pass decides


def _kernel_applies(path: Path, layout: Layout) -> bool:
    if not (layout.int_ids["user"] and layout.int_ids["item"]) or layout.quoted or \
            layout.sep not in (",", "\t", ";", "|", "::"):
        return False
    try:
        size = path.stat().st_size
    except OSError:
        return False
    return size >= _KERNEL_BYTES


_CUT = -1  # status of a single pass stopped at a certain duplicate


def _kernel_read(path: Path, layout: Layout, scale, stop_at_duplicate: bool = False):
    """Parse, check and code the file in one compiled pass over its bytes, block by block.

    Returns the frame (with ``blank_rows``, the rows that empty lines came before, when the
    file has any); None when a line breaks a rule (the slow pass names it); ``_ODD``
    when a line is not in the plain form the kernel takes (the pandas pass decides).
    A big uncompressed file is cut in two at a line end and two threads parse the halves
    at once into the same output arrays (the second half from an estimated row on), each
    with its own id tables; the second half's rows then move up to follow the first's and
    its ids are renumbered after the first's: the same result as one pass.
    Memory: the output arrays, the id tables and one block of the file per thread.
    With ``stop_at_duplicate`` a single pass stops after the block that makes a duplicate
    certain (more ratings than users times items), marking the frame ``cut_short``.
    """
    from recsys.kernels.cpu import parse as kp

    cols = layout.columns
    size = path.stat().st_size
    capacity = _estimate_rows(path)
    table_limit = min(max(1 << 20, 4 * capacity), IdMapBuilder._DENSE_LIMIT)
    cut = _cut_point(path, size) if size >= _SPLIT_BYTES and not _is_gzip(path) else None
    if cut is not None:  # room for each half's estimate and some
        second = int(capacity * cut / size * 1.05) + 1024
        capacity = second + int(capacity * (size - cut) / size * 1.05) + 1024
    out = {role: _Column(dtype, capacity if role in cols else 1) for role, dtype in
           (("user", np.int32), ("item", np.int32), ("rating", np.float32),
            ("timestamp", np.int64))}
    args = (path, layout, scale, table_limit, out, stop_at_duplicate)
    parts = None
    if cut is not None:
        from concurrent.futures import ThreadPoolExecutor
        from threading import Event

        stop = Event()  # one half giving up stops the other
        with ThreadPoolExecutor(2) as pool:
            jobs = [pool.submit(_parse_range, *args, 0, cut, 0, second, stop),
                    pool.submit(_parse_range, *args, cut, None, second, capacity, stop)]
            parts = [job.result() for job in jobs]
        if any(part["status"] == kp.FULL for part in parts):
            parts = None  # a half had more rows than estimated: parse it all in one
    if parts is None:
        parts = [_parse_range(*args, 0, None, 0, None, None)]
    for status in (kp.BAD, kp.ODD):
        if any(part["status"] == status for part in parts):
            return None if status == kp.BAD else _ODD
    frame = _join_parts(parts, out, cols)
    if frame is not None and parts[0]["status"] == _CUT:
        frame["cut_short"] = True
    return frame


#: From this size on, two threads parse the two halves of a file.
_SPLIT_BYTES = 64 << 20


def _cut_point(path: Path, size: int) -> int | None:
    """The start of the first line after the middle of the file (None if not found)."""
    with open(path, "rb") as fh:
        fh.seek(size // 2)
        tail = fh.read(1 << 20)
    end = tail.find(b"\n")
    return None if end < 0 or size // 2 + end + 1 >= size else size // 2 + end + 1


def _parse_range(path: Path, layout: Layout, scale, table_limit: int, out: dict,
                 stop_at_duplicate: bool, begin: int, stop_at: int | None, first_row: int,
                 row_limit: int | None, stop) -> dict:
    """Run the parse kernel over bytes ``begin:stop_at`` of a file (whole lines; the header
    is skipped when ``begin`` is 0) into output rows ``first_row:row_limit``; with no row
    limit the outputs grow as needed. Returns its row count, id tables and status."""
    from recsys.kernels.cpu import parse as kp

    cols = layout.columns
    sep = layout.sep.encode()
    tables = {kp.USER_TABLE: np.full(1 << 16, -1, dtype=np.int32),
              kp.ITEM_TABLE: np.full(1 << 16, -1, dtype=np.int32)}
    seen = np.zeros(3, dtype=np.int64)
    blanks = np.empty(64, dtype=np.int64)
    lo, hi = (float(scale[0]), float(scale[1])) if scale is not None else (0.0, 0.0)
    raw = bytearray(_KERNEL_BLOCK + 1)  # room to end the last line
    buf = np.frombuffer(raw, dtype=np.uint8)  # the same bytes, for the kernel
    row, filled, skip = 0, 0, layout.header_lines if begin == 0 else 0
    left = None if stop_at is None else stop_at - begin

    def views():
        return [out[role].array[first_row:row_limit] for role in
                ("user", "item", "rating", "timestamp")]

    def result(status):
        return {"status": status, "tables": tables, "seen": seen, "blanks": blanks,
                "rows": row, "first_row": first_row}

    arrays = views()
    try:
        with _open_binary(path, lines=False) as fh:  # the kernel checks line lengths
            if begin:
                fh.seek(begin)
            view = memoryview(raw)[:_KERNEL_BLOCK]
            while True:
                if stop is not None and stop.is_set():
                    return result(kp.ODD)
                while filled < _KERNEL_BLOCK and left != 0:
                    want = _KERNEL_BLOCK if left is None else \
                        filled + min(left, _KERNEL_BLOCK - filled)
                    got = fh.readinto(view[filled:want])
                    if not got:
                        break
                    filled += got
                    if left is not None:
                        left -= got
                final = filled < _KERNEL_BLOCK or left == 0
                if final and filled == 0:
                    break
                if final:  # the last line may lack its end; '\r' then '\n' ends it the same
                    if buf[filled - 1] != 10:
                        buf[filled] = 10
                        filled += 1
                    end = filled
                else:
                    end = raw.rfind(b"\n", 0, filled) + 1
                if end == 0:
                    return result(kp.ODD)  # a line longer than a block
                start = 0
                if skip:  # header lines: \n or \r\n ends, as the line-by-line pass counts
                    head = bytes(raw[:end])
                    for _ in range(skip):
                        stop_pos = head.find(b"\n", start)
                        if stop_pos < 0 or b"\r" in head[start:stop_pos].removesuffix(b"\r"):
                            return result(kp.ODD)
                        start = stop_pos + 1
                    skip = 0
                while True:
                    start, row, status, detail = kp.parse_lines(
                        buf, start, end, sep[0], sep[1] if len(sep) > 1 else -1,
                        layout.n_fields, cols["user"], cols["item"], cols.get("rating", -1),
                        cols.get("timestamp", -1), lo, hi, scale is not None and "rating" in cols,
                        tables[kp.USER_TABLE], tables[kp.ITEM_TABLE], seen, blanks, *arrays,
                        row, MAX_LINE_BYTES)
                    if status == kp.DONE:
                        break
                    if status in (kp.BAD, kp.ODD) or detail >= table_limit:
                        if stop is not None:
                            stop.set()
                        return result(kp.BAD if status == kp.BAD else kp.ODD)
                    if status == kp.BLANKS:
                        blanks = np.resize(blanks, 2 * len(blanks))
                    elif status == kp.FULL:
                        if row_limit is not None:
                            return result(kp.FULL)
                        del arrays
                        for role, column in out.items():
                            if role in cols:
                                column.array.resize(len(column.array) * 3 // 2 + 1024,
                                                    refcheck=False)
                        arrays = views()
                    else:
                        old = tables[status]
                        grown = np.full(min(max(2 * len(old), detail + 1), table_limit), -1,
                                        dtype=np.int32)
                        grown[: len(old)] = old
                        tables[status] = grown
                if final:
                    break
                if stop_at_duplicate and stop is None and row > seen[0] * seen[1]:
                    return result(_CUT)  # a single pass: the rows so far hold a duplicate
                buf[: filled - end] = buf[end:filled]
                filled -= end
    except (OSError, EOFError, zlib.error):
        return result(kp.BAD)  # the line-by-line pass says what is wrong with the file
    return result(kp.DONE)


def _join_parts(parts: list, out: dict, cols: dict) -> dict | None:
    """The frame of a file parsed in parts: each later part's rows moved up to follow the
    earlier ones and its ids renumbered after theirs (first-seen order over the file)."""
    from recsys.kernels.cpu import parse as kp

    frame, remaps = {}, []
    for k, status in enumerate((kp.USER_TABLE, kp.ITEM_TABLE)):
        known = _table_ids(parts[0]["tables"][status], int(parts[0]["seen"][k]))
        remaps.append([None])
        for part in parts[1:]:
            own = _table_ids(part["tables"][status], int(part["seen"][k]))
            index = pd.Index(known).get_indexer(own) if len(known) else \
                np.full(len(own), -1, dtype=np.intp)
            fresh = index < 0
            index[fresh] = len(known) + np.arange(int(fresh.sum()))
            known = np.concatenate([known, own[fresh]])
            remaps[k].append(index.astype(np.int32))
        frame[("user_map", "item_map")[k]] = IdMap(known)
    blank, at = [], 0
    for p, part in enumerate(parts):
        n, src = part["rows"], part["first_row"]
        for k, role in enumerate(("user", "item", "rating", "timestamp")):
            if role not in cols or (src == at and not (k < 2 and p)):
                continue
            array = out[role].array
            for a in range(0, n, _CHUNK_ROWS):  # forward, a chunk at a time: moves up safely
                b = min(a + _CHUNK_ROWS, n)
                piece = array[src + a:src + b]
                array[at + a:at + b] = remaps[k][p][piece] if k < 2 and p else piece
        blank.append(part["blanks"][: part["seen"][2]] + at)
        at += n
    if at == 0:
        return None
    for role, column in out.items():
        if role in cols:
            column.n = at
            frame[role] = column.finish()
    blank = np.concatenate(blank)
    if len(blank):
        frame["blank_rows"] = blank
    return frame


def _table_ids(table: np.ndarray, n: int) -> np.ndarray:
    """Raw ids of a dense id table (raw id -> index, -1 where unseen), in index order."""
    ids = np.flatnonzero(table >= 0)
    raw = np.empty(n, dtype=np.int64)
    raw[table[ids]] = ids
    return raw
