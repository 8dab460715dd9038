"""The write-ahead log of the ratings a live service accepts (``recsys serve --ratings-log``).

One JSON object a line, ``{"seq": n, "user": u, "item": i, "rating": r, "ts": t}``, with
``seq`` counting up from 1 over the life of the log. ``append`` writes a batch under an
exclusive lock (several worker processes may share the log) and fsyncs before it returns,
so an acknowledged rating survives a crash or SIGKILL. A crash while writing can leave a
torn last line: it is never parsed, and the next writer (or ``recover``) sets it aside in
``<log>.torn`` (appended to, never overwritten), logs it and cuts it off, so nothing is
dropped silently and nothing is replayed twice.

A model folded from the log records the last ``seq`` it covers in its lineage
(``covered_through``); the entries up to there are then ``retire``d: the log is rewritten
(atomically) without them, its first line ``{"retired_through": n}`` keeping the count, so
sequence numbers never restart. ``follow`` reads what other processes appended since the
last call, whether or not the file was rewritten in between.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from recsys.errors import DataError

log = logging.getLogger("recsys.persist")

#: Longest raw id accepted in the log (and by POST /ratings).
MAX_ID_CHARS = 256
_TAIL = 1 << 16  # bytes read back from the end to find the last sequence number


@dataclass(frozen=True)
class Entry:
    """One accepted rating."""

    seq: int
    user: int | str
    item: int | str
    rating: float
    ts: int | None = None

    def line(self) -> bytes:
        return json.dumps({"seq": self.seq, "user": self.user, "item": self.item,
                           "rating": self.rating, "ts": self.ts}).encode() + b"\n"


def _is_id(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_CHARS


def _parse(raw_line: bytes, path, line_no: int) -> Entry | int:
    """An entry, or the count of a ``retired_through`` line."""
    try:
        raw = json.loads(raw_line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DataError("not JSON", path, line_no, raw_line[:120].decode("utf-8", "replace")) \
            from None
    if isinstance(raw, dict) and set(raw) == {"retired_through"}:
        through = raw["retired_through"]
        if isinstance(through, int) and not isinstance(through, bool) and through >= 0:
            return through
    if not isinstance(raw, dict) or not {"seq", "user", "item", "rating"} <= set(raw):
        raise DataError("not a ratings log entry", path, line_no,
                        raw_line[:120].decode("utf-8", "replace"))
    seq, rating, ts = raw["seq"], raw["rating"], raw.get("ts")
    ok = (isinstance(seq, int) and not isinstance(seq, bool) and seq >= 1
          and isinstance(rating, (int, float)) and not isinstance(rating, bool)
          and math.isfinite(rating) and _is_id(raw["user"]) and _is_id(raw["item"])
          and (ts is None or (isinstance(ts, int) and not isinstance(ts, bool))))
    if not ok:
        raise DataError("bad ratings log entry", path, line_no,
                        raw_line[:120].decode("utf-8", "replace"))
    return Entry(seq, raw["user"], raw["item"], float(rating), ts)


def _read_lines(data: bytes, path, first_line: int, after: int, last: int
                ) -> tuple[list[Entry], int]:
    """The entries of complete lines in ``data`` with seq > ``after``; and the last seq,
    checked to rise line by line from ``last``."""
    out = []
    for n, raw_line in enumerate(data.splitlines(), first_line):
        if not raw_line.strip():
            continue
        parsed = _parse(raw_line, path, n)
        seq = parsed if isinstance(parsed, int) else parsed.seq
        if seq <= last and not (isinstance(parsed, int) and seq == last):
            raise DataError(f"sequence number {seq} does not follow {last}", path, n)
        last = seq
        if isinstance(parsed, Entry) and seq > after:
            out.append(parsed)
    return out, last


class RatingsLog:
    """An append-only, fsynced log of ratings shared by the processes of one server."""

    def __init__(self, path):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_file():
            raise DataError("the ratings log is not a regular file", self.path)
        self._cursor = None  # (inode, offset, line number, last seq) of follow()
        with self._locked():
            self._recover_locked()

    @contextmanager
    def _locked(self):
        """The lock every writer (and a rewrite) holds: a sidecar file, so that a rewrite
        by rename keeps the same lock."""
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _recover_locked(self) -> int:
        if not self.path.exists():
            return 0
        size = self.path.stat().st_size
        with open(self.path, "rb") as fh:
            fh.seek(max(0, size - _TAIL))
            data = fh.read()
        cut = data.rfind(b"\n") + 1
        if cut == 0 and size > len(data):
            raise DataError(f"last line longer than {_TAIL} bytes", self.path)
        tail = data[cut:]
        if not tail:
            return 0
        with open(f"{self.path}.torn", "ab") as out:
            out.write(tail + b"\n")
            out.flush()
            os.fsync(out.fileno())
        with open(self.path, "r+b") as fh:
            fh.truncate(size - len(tail))
            os.fsync(fh.fileno())
        log.warning("recsys: %s: a torn last line of %d bytes (a crash while writing) was "
                    "set aside in %s.torn", self.path, len(tail), self.path)
        return len(tail)

    def recover(self) -> int:
        """Set a torn last line aside in ``<log>.torn`` and cut it off; its length in bytes."""
        with self._locked():
            return self._recover_locked()

    def last_seq(self) -> int:
        """The sequence number of the last complete line (0 for an empty log)."""
        if not self.path.exists():
            return 0
        size = self.path.stat().st_size
        with open(self.path, "rb") as fh:
            fh.seek(max(0, size - _TAIL))
            data = fh.read()
        lines = [x for x in data[:data.rfind(b"\n") + 1].splitlines() if x.strip()]
        if not lines:
            return 0
        parsed = _parse(lines[-1], self.path, 0)
        return parsed if isinstance(parsed, int) else parsed.seq

    def read(self, after: int = 0) -> list[Entry]:
        """The entries with seq > ``after``, in order (complete lines only); a line that is
        not an entry raises ``DataError`` naming it."""
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        entries, _ = _read_lines(data[:data.rfind(b"\n") + 1], self.path, 1, after, 0)
        return entries

    def retired_through(self) -> int:
        """The count kept by the first line of a rewritten log (0 if never rewritten)."""
        if not self.path.exists():
            return 0
        with open(self.path, "rb") as fh:
            first = fh.readline()
        if not first.endswith(b"\n"):
            return 0
        parsed = _parse(first, self.path, 1)
        return parsed if isinstance(parsed, int) else 0

    def append(self, rows) -> list[Entry]:
        """Append ``(user, item, rating, ts)`` rows (already checked); durable (fsynced)
        when it returns. Returns the entries with their sequence numbers."""
        with self._locked():
            self._recover_locked()
            seq = self.last_seq()
            entries = [Entry(seq + n, user, item, float(rating), ts)
                       for n, (user, item, rating, ts) in enumerate(rows, 1)]
            existed = self.path.exists()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                data = b"".join(e.line() for e in entries)
                while data:
                    written = os.write(fd, data)
                    data = data[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
            if not existed:
                _fsync_dir(self.path.parent)  # a new file: its directory entry too
            return entries

    def retire(self, through: int) -> int:
        """Drop the entries with seq <= ``through`` (a model covering them is being
        served), by an atomic rewrite; returns how many were dropped."""
        from recsys.atomic import atomic_write

        with self._locked():
            if through <= self.retired_through():
                return 0
            data = self.path.read_bytes() if self.path.exists() else b""
            entries, last = _read_lines(data, self.path, 1, 0, 0)
            keep = [e for e in entries if e.seq > through]
            with atomic_write(self.path, "wb") as fh:
                fh.write(json.dumps({"retired_through": min(through, last)}).encode() + b"\n")
                fh.writelines(e.line() for e in keep)
            return len(entries) - len(keep)

    def changed(self) -> bool:
        """Whether ``follow`` may have something new: the file was appended to or rewritten."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return self._cursor is not None and self._cursor[1] > 0
        return self._cursor is None or (st.st_ino, st.st_size) != self._cursor[:2]

    def follow(self, after: int) -> list[Entry]:
        """The entries with seq > ``after`` appended since the last call (all of them on
        the first call), following a rewrite by ``retire``."""
        try:
            fh = open(self.path, "rb")
        except FileNotFoundError:
            return []
        with fh:
            st = os.fstat(fh.fileno())
            inode, offset, line_no, last = self._cursor or (None, 0, 1, 0)
            if inode != st.st_ino:  # the first call, or rewritten: read it from the start
                offset, line_no, last = 0, 1, 0
            fh.seek(offset)
            data = fh.read()
        complete = data[:data.rfind(b"\n") + 1]
        entries, last = _read_lines(complete, self.path, line_no, after, last)
        self._cursor = (st.st_ino, offset + len(complete),
                        line_no + complete.count(b"\n"), last)
        return entries


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def covered_through(lineage) -> int:
    """The last sequence number of a ratings log that a model's lineage says it covers."""
    return max((int(e.get("through", 0)) for e in lineage.data
                if isinstance(e, dict) and e.get("kind") == "ratings log"), default=0)
