"""Opening ratings files: readable checks, gzip detection, the head of a file and its text."""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

from recsys.errors import DataError

#: The head of a file that sniffing looks at.
_SAMPLE_BYTES = 1 << 16


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise DataError("file not found", path)
    if path.is_dir():
        raise DataError("is a directory, not a ratings file", path)
    if not os.access(path, os.R_OK):
        raise DataError("permission denied", path)


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _open_binary(path: Path):
    return gzip.open(path, "rb") if _is_gzip(path) else open(path, "rb")


def _read_head(path: Path) -> bytes:
    try:
        with _open_binary(path) as fh:
            return fh.read(_SAMPLE_BYTES)
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
