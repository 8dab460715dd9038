"""Atomic file output: write to a temporary file beside the target, then rename over it.

A crash, Ctrl-C or full disk while writing leaves the previous file (or no file) in place,
never a half-written one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from recsys.errors import RecsysError


def check_writable(path) -> Path:
    """Fail early (before any long work) when ``path`` cannot be written."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.exists():
        raise RecsysError(f"{path}: cannot write: folder {folder} does not exist")
    if not folder.is_dir():
        raise RecsysError(f"{path}: cannot write: {folder} is not a folder")
    if path.is_dir():
        raise RecsysError(f"{path}: cannot write: it is a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise RecsysError(f"{path}: cannot write: permission denied in {folder}")
    if path.exists() and not os.access(path, os.W_OK):
        raise RecsysError(f"{path}: cannot write: permission denied")
    return path


def _default_mode(path: Path) -> int:
    """Keep an existing file's permissions; a new file gets 0666 less the umask."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb", **kwargs):
    """Open a temporary file beside ``path``; on success fsync and rename it to ``path``."""
    path = check_writable(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        os.chmod(tmp, _default_mode(path))
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
