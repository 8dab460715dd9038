"""Atomic file output: write to a temporary file beside the target, then rename over it.

A crash, Ctrl-C, SIGTERM or full disk while writing leaves the previous file (or no file)
in place, never a half-written one. ``atomic_write_many`` does the same for a set of
files: all of them are replaced, or none. No output may replace an input:
``check_writable(path, inputs)`` refuses a target that is (or links to) one of them.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from recsys.errors import RecsysError


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (or cannot be looked at)
        return os.path.abspath(a) == os.path.abspath(b)


def check_writable(path, inputs=()) -> Path:
    """Fail early (before any long work) when ``path`` cannot be written, or when it is
    one of ``inputs`` (paths the command reads: it would destroy them)."""
    path = Path(path)
    for source in inputs:
        if source is not None and str(source) != "-" and _same_file(path, Path(source)):
            raise RecsysError(f"{path}: is also an input of this command ({source}); "
                              "refusing to overwrite it: choose another output")
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


def _temporary(path: Path):
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    os.chmod(tmp, _default_mode(path))
    return fd, tmp


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb", **kwargs):
    """Open a temporary file beside ``path``; on success fsync and rename it to ``path``."""
    path = check_writable(path)
    fd, tmp = _temporary(path)
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_write_many(paths, mode: str = "wb", **kwargs):
    """Open temporary files beside each of ``paths`` (yielded as a list, in order); on
    success replace all the targets, else none.

    Every file is written and fsynced before the first rename. If a rename fails, the
    targets already replaced get their previous content back (kept as hard links until
    the end) and new ones are removed, so the set is never half old, half new.
    """
    paths = [check_writable(p) for p in paths]
    if len({os.path.abspath(p) for p in paths}) != len(paths):
        raise RecsysError("two outputs of this command are the same file")
    temps, handles = [], []
    try:
        for path in paths:
            fd, tmp = _temporary(path)
            temps.append(tmp)
            handles.append(os.fdopen(fd, mode, **kwargs))
        yield handles
        for fh in handles:
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
        _replace_all(temps, paths)
    except BaseException:
        for fh in handles:
            with contextlib.suppress(OSError):
                fh.close()
        for tmp in temps:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise


def _replace_all(temps: list, paths: list) -> None:
    backups = []  # (target, hard link to its previous content or None)
    try:
        for tmp, path in zip(temps, paths, strict=True):
            backup = None
            if path.exists():
                backup = f"{tmp}.old"
                os.link(path, backup)
            backups.append((path, backup))
            os.replace(tmp, path)
    except BaseException:
        for path, backup in backups:
            with contextlib.suppress(OSError):
                if backup is not None:
                    os.replace(backup, path)
                else:
                    os.unlink(path)
        raise
    finally:
        for _, backup in backups:
            if backup is not None:
                with contextlib.suppress(OSError):
                    os.unlink(backup)
