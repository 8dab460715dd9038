"""Checkpoints of a distributed fit: after every epoch each worker writes the rows of its
user blocks and the item blocks it holds, one file per block, so that any number of
workers can read them back (the files do not depend on the layout).

A checkpoint folder holds ``epoch-EEEEE/`` (``uAAAAA.npz``: P rows, b_u[, G_u, H_u] of user
block a; ``iCCCCC.npz``: Q rows, b_i[, G_i, H_i] of item block c) and ``latest.json``,
which names the last epoch whose files are all written; it is replaced (atomically) only
after every worker has written its files, and the folder of the epoch before is removed
then. Each file is written atomically (``recsys.atomic``) and read without pickle. Epoch
0 is the state before the first epoch. The folder must be one that every worker and the
client see (a local disk for a LocalCluster, a shared file system for a cluster).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from recsys.atomic import atomic_write
from recsys.errors import TrainingError

LATEST = "latest.json"


def epoch_folder(folder, epoch: int) -> Path:
    return Path(folder) / f"epoch-{epoch:05d}"


def user_file(folder: Path, a: int) -> Path:
    return folder / f"u{a:05d}.npz"


def item_file(folder: Path, c: int) -> Path:
    return folder / f"i{c:05d}.npz"


def write_arrays(path: Path, arrays) -> int:
    """Write ``arrays`` to ``path`` atomically; returns the bytes of the arrays."""
    with atomic_write(path, "wb") as fh:
        np.savez(fh, *arrays)
    return int(sum(a.nbytes for a in arrays))


def read_arrays(path: Path) -> tuple:
    try:
        with np.load(path, allow_pickle=False) as z:
            return tuple(np.ascontiguousarray(z[f"arr_{j}"]) for j in range(len(z.files)))
    except (OSError, ValueError) as exc:
        raise TrainingError(f"{path}: cannot read the checkpoint: {exc}") from None


def commit(folder, epoch: int, state: dict | None = None) -> None:
    """Mark ``epoch`` as the last one whose files are all written (with ``state``, what
    the client keeps of the fit), and remove the epoch before."""
    with atomic_write(Path(folder) / LATEST, "w", encoding="utf-8") as fh:
        json.dump({"epoch": int(epoch), **(state or {})}, fh)
    if epoch > 0:
        shutil.rmtree(epoch_folder(folder, epoch - 1), ignore_errors=True)


def clear(folder) -> None:
    """Remove the epochs and ``latest.json`` of an earlier fit from ``folder`` (a new fit
    starts there); nothing else in it is touched."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    (folder / LATEST).unlink(missing_ok=True)
    for path in folder.glob("epoch-[0-9][0-9][0-9][0-9][0-9]"):
        shutil.rmtree(path, ignore_errors=True)


def latest(folder) -> dict | None:
    """What ``latest.json`` says (None: no epoch written yet)."""
    path = Path(folder) / LATEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TrainingError(f"{path}: cannot read the checkpoint: {exc}") from None
