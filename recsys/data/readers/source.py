"""Opening ratings files: readable checks, gzip detection, the head of a file and its text;
the bounds every read keeps; a copy of an input that can be read only once.

Every pass reads a file through ``_open_binary``, an ``_Input``: the bytes of the file,
decompressed if it is gzip, checked as they stream past. Two bounds keep memory in
proportion to the file whatever it holds:

- a line (and so a field) may hold at most ``MAX_LINE_BYTES``: a longer one stops the read
  (``LineTooLong``, which the line-by-line pass turns into a ``DataError`` naming the line);
- gzip data may expand to at most ``MAX_RATIO`` times the compressed size (or
  ``RATIO_FLOOR``, when that is more): past that the read stops with a ``DataError``.
  Ratings text compresses some 3 to 8 times (25 with long URI-like ids), so no ratings file
  comes near it; a decompression bomb (a few MiB that expand to gigabytes of identical
  lines) stops there, an endless line sooner at the line bound.

Standard input (``-``), ``/dev/stdin``, named pipes and other inputs that are not regular
files can be read only once, while the passes read a file several times (the head to sniff
it, then one pass or more). ``local_file`` copies such an input once, decompressed and
checked the same way, into a temporary file in the system's temporary folder, and removes
it afterwards; regular files are read where they are.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import shutil
import stat
import sys
import tempfile
import zlib
from pathlib import Path

from recsys.errors import DataError

#: The head of a file that sniffing looks at.
_SAMPLE_BYTES = 1 << 16
#: Sniffing reads on past the sample to the end of the first lines, up to this much.
_HEAD_LIMIT = 4 << 20
#: The longest line a ratings file may hold (without its line end).
MAX_LINE_BYTES = 1 << 20
#: gzip data may expand to this many times its compressed size ...
MAX_RATIO = 100
#: ... or to this many bytes, when that is more (small files of repeated lines).
RATIO_FLOOR = 16 << 20
#: What the name of standard input (``-``) is in messages.
STDIN_NAME = "<stdin>"
_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"
#: A copy of standard input stops before it leaves less than this room in its folder
#: (or a tenth of the folder's file system, when that is less).
_SPOOL_RESERVE = 1 << 30
_SPOOL_CHECK = 64 << 20
_HEAD_SHOWN = 200  # bytes of a long line kept for its message (which shows fewer)


class LineTooLong(Exception):  # noqa: N818 - not an error of the user's: a signal
    """A line past ``MAX_LINE_BYTES``: where it starts in the stream and its first bytes."""

    def __init__(self, start: int, head: bytes):
        super().__init__(start)
        self.start, self.head = start, head


def line_too_long_reason() -> str:
    return (f"line is longer than {MAX_LINE_BYTES >> 20} MiB, the most a line of ratings may "
            "hold (is this a ratings file?)")


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise DataError("file not found", path)
    if path.is_dir():
        raise DataError("is a directory, not a ratings file", path)
    if not os.access(path, os.R_OK):
        raise DataError("permission denied", path)


class _Counted:
    """A file read by a decompressor, counting the compressed bytes it has taken."""

    def __init__(self, raw):
        self._raw, self.n = raw, 0

    def read(self, size=-1):
        data = self._raw.read(size)
        self.n += len(data)
        return data


class _Input(io.RawIOBase):
    """The bytes of a ratings file (decompressed if gzip), checked as they stream past.

    ``raw`` is a buffered binary file (``peek`` tells gzip apart); ``size`` its size when
    known (a regular file), else the compressed bytes read so far set the bound. With
    ``lines`` a line longer than ``MAX_LINE_BYTES`` raises ``LineTooLong``; ``on_data``,
    when given, sees every piece of bytes read (and None at the end).
    """

    def __init__(self, raw, name, *, size: int | None = None, lines: bool = True,
                 on_data=None, own: bool = True):
        super().__init__()
        self._raw, self._name, self._own = raw, name, own
        self.is_gzip = raw.peek(2)[:2] == _GZIP_MAGIC
        self._counted = None
        if self.is_gzip:
            if size is None:
                self._counted = _Counted(raw)
            self._inner = gzip.GzipFile(fileobj=self._counted or raw, mode="rb")
        else:
            self._inner = raw
        self._size, self._lines, self._on_data = size, lines, on_data
        self._out = 0  # bytes given so far
        self._since = 0  # bytes of the line being read, so far
        self._head = b""  # its first bytes
        self._ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._inner.readinto(buffer)
        if self._lines or self._on_data is not None:
            self._seen(bytes(memoryview(buffer)[:n]))
        else:
            self._count(n)
        return n

    def read(self, size=-1):
        if size is None or size < 0:
            return self.readall()
        data = self._inner.read(size)
        self._seen(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        """Start reading at byte ``offset`` of a plain file (a line start)."""
        if self.is_gzip or whence != 0:
            raise io.UnsupportedOperation("seek")
        self._out, self._since, self._head = offset, 0, b""
        return self._raw.seek(offset)

    def close(self) -> None:
        if not self.closed:
            try:
                if self.is_gzip:
                    self._inner.close()
            finally:
                if self._own:
                    self._raw.close()
        super().close()

    # ------------------------------------------------------------------ the checks

    def _count(self, n: int) -> None:
        self._out += n
        if self.is_gzip:
            compressed = self._size if self._size is not None else self._counted.n
            if self._out > max(RATIO_FLOOR, MAX_RATIO * compressed):
                source = f"{_size_text(compressed)} " + \
                    ("read so far" if self._size is None else "of gzip")
                raise DataError(
                    f"gzip data expands more than {MAX_RATIO} times ({self._out >> 20} MiB "
                    f"from {source}), where ratings text compresses some 3 to 25 times: "
                    "refused as a decompression bomb", self._name)

    def _seen(self, data: bytes) -> None:
        start = self._out
        self._count(len(data))
        if self._lines and data:
            self._check_lines(data, start)
        if self._on_data is not None and not self._ended:
            self._ended = not data
            self._on_data(data if data else None)

    def _check_lines(self, data: bytes, offset: int) -> None:
        """Raise LineTooLong when a line runs past the limit. A window of at most the
        limit holds whole lines shorter than it: only the line it starts in (carried
        over from before) and the one it ends in need counting."""
        limit, n, at = MAX_LINE_BYTES, len(data), 0
        while at < n:
            stop = min(n, at + limit)
            first = data.find(b"\n", at, stop)
            cr = data.find(b"\r", at, stop if first < 0 else first)
            first = cr if cr >= 0 else first
            if first < 0:
                self._keep(data, at, stop)
                self._since += stop - at
                if self._since > limit:
                    raise LineTooLong(offset + stop - self._since, self._head)
                at = stop
                continue
            if self._since + first - at > limit:
                self._keep(data, at, first)
                raise LineTooLong(offset + at - self._since, self._head)
            last = data.rfind(b"\n", first, stop)
            last = max(last, data.rfind(b"\r", max(last, first), stop))
            self._head = b""
            self._keep(data, last + 1, stop)
            self._since = stop - last - 1
            at = stop

    def _keep(self, data: bytes, begin: int, end: int) -> None:
        if len(self._head) < _HEAD_SHOWN:
            self._head += data[begin:min(end, begin + _HEAD_SHOWN - len(self._head))]


def _size_text(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB" if n >= 1 << 10 else f"{n} B"


def _open_binary(path: Path, *, lines: bool = True, on_data=None) -> _Input:
    """A ratings file's bytes, decompressed if gzip, within the bounds (``_Input``)."""
    raw = open(path, "rb")
    try:
        size = os.fstat(raw.fileno()).st_size
        return _Input(raw, path, size=size, lines=lines, on_data=on_data)
    except BaseException:
        raw.close()
        raise


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == _GZIP_MAGIC


def _read_head(path: Path) -> bytes:
    return _head(path)[0]


def _head(path: Path) -> tuple[bytes, bool]:
    """The head of a file: the sample, read on to the end of its first two lines with text
    (at most ``_HEAD_LIMIT``); and whether it is the whole file."""
    head = b""
    try:
        with _open_binary(path) as fh:
            while True:
                more = fh.read(_SAMPLE_BYTES)
                head += more
                if not more:
                    return head, True
                if len(head) >= _HEAD_LIMIT or \
                        sum(1 for line in head.splitlines()[:-1] if line.strip()) >= 2:
                    return head, False
    except LineTooLong as exc:
        text = exc.head.decode("utf-8", "replace")
        raise DataError(line_too_long_reason(), path, len(head[:exc.start].splitlines()) + 1,
                        text) from None
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read compressed file ({exc})", path) from None


def _decode_sample(raw: bytes) -> tuple[str, str]:
    """Decode the head of a file: UTF-8 (with or without BOM), else Latin-1."""
    try:
        return raw.decode("utf-8-sig"), "utf-8-sig"
    except UnicodeDecodeError as exc:
        if exc.start >= len(raw) - 3:  # a multi-byte character cut by the sample's end
            return raw[: exc.start].decode("utf-8-sig"), "utf-8-sig"
        return raw.decode("latin-1"), "latin-1"


# ------------------------------------------------------------------ inputs read once


def is_stdin(source) -> bool:
    return isinstance(source, str) and source == "-"


@contextlib.contextmanager
def local_file(source):
    """``(path, name)``: the input as a regular file the passes can read as often as they
    need, and the name messages give it. A regular file is itself; standard input (``-``)
    and any other input that is not a regular file (``/dev/stdin``, a named pipe) is read
    once into a temporary copy, removed afterwards."""
    if is_stdin(source):
        stdin = getattr(sys.stdin, "buffer", sys.stdin)
        if stdin is None or getattr(stdin, "closed", False):
            raise DataError("there is no standard input to read", STDIN_NAME)
        with _spooled(stdin, STDIN_NAME) as copy:
            yield copy, STDIN_NAME
        return
    path = Path(source)
    _check_readable(path)
    if stat.S_ISREG(path.stat().st_mode):
        yield path, str(path)
        return
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise DataError(f"cannot open ({exc.strerror})", path) from None
    with fh, _spooled(fh, str(path)) as copy:
        yield copy, str(path)


@contextlib.contextmanager
def _spooled(stream, name: str):
    """A temporary copy of a stream read once: decompressed if gzip, within the bounds of
    every read, and leaving room in the temporary folder (``_SPOOL_RESERVE``)."""
    folder = tempfile.gettempdir()
    fd, tmp = tempfile.mkstemp(prefix="recsys-input-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            _copy(stream, out, name, folder)
        yield Path(tmp)
    except LineTooLong as exc:
        raise DataError(line_too_long_reason(), name, _line_at(Path(tmp), exc.start),
                        exc.head.decode("utf-8", "replace")) from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _copy(stream, out, name: str, folder: str) -> None:
    raw = stream if hasattr(stream, "peek") else io.BufferedReader(stream)
    try:
        binary = raw.peek(4)[:4] == _PARQUET_MAGIC
        source = _Input(raw, name, lines=not binary, own=False)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read ({exc})", name) from None
    usage = shutil.disk_usage(folder)
    reserve = min(_SPOOL_RESERVE, usage.total // 10)
    written, check_at = 0, _SPOOL_CHECK
    try:
        with source:
            while True:
                data = source.read(1 << 20)
                if not data:
                    return
                out.write(data)
                written += len(data)
                if written >= check_at:
                    check_at += _SPOOL_CHECK
                    if shutil.disk_usage(folder).free < reserve:
                        raise DataError(
                            f"too big to copy into the temporary folder {folder} "
                            f"({written >> 20} MiB copied, less than {reserve >> 20} MiB "
                            "left): give the file's path, or set TMPDIR to a roomier folder",
                            name)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read or copy the input ({exc})", name) from None


def _line_at(path: Path, offset: int) -> int:
    """The 1-based number of the line that starts at byte ``offset`` of a file (a line end
    is \\n, \\r or \\r\\n, as the line-by-line pass counts them), read a block at a time."""
    ends, carry_cr, left = 0, False, offset
    with open(path, "rb") as fh:
        while left > 0:
            block = fh.read(min(left, 1 << 22))
            if not block:
                break
            left -= len(block)
            ends += block.count(b"\n") + block.count(b"\r") - block.count(b"\r\n")
            if carry_cr and block.startswith(b"\n"):
                ends -= 1
            carry_cr = block.endswith(b"\r")
    return ends + 1
