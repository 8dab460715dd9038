"""A rating set cut into the blocks of the grid, on disk, so that each worker of a
distributed fit reads only its own blocks and no process holds all the ratings.

``write_partition`` writes into a temporary folder beside the target and renames it into
place (all or nothing): ``blocks/BBBBB.parquet`` for block b = a * grid + c (user block a,
item block c; columns user and item as int32 indices, rating float32, in the order of the
input, as the in-process fit groups them), ``users.parquet`` and ``items.parquet`` (the
raw ids in index order) and ``manifest.json``: the grid, the index range of every user
block and item block, the ratings per block, the mean (float64, as the in-process fit
takes mu) and range of the ratings, the summary and lineage of the data (its sha256) and
the item titles. ``Partition`` reads a folder's manifest and id maps, never its ratings;
``read_blocks`` reads a range of user blocks, on the worker that owns them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recsys.errors import DataError

MANIFEST = "manifest.json"
FORMAT = "recsys-partition"
VERSION = 1


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError("partitions are Parquet files: pip install 'recsys-mf[parquet]'") \
            from None
    return pa, pq


def block_file(b: int) -> str:
    return f"blocks/{b:05d}.parquet"


def is_partition(path) -> bool:
    try:
        return (Path(path) / MANIFEST).is_file()
    except (TypeError, OSError):
        return False


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def write_partition(ratings, folder, grid: int) -> dict:
    """Write ``ratings`` (a ``Ratings``) cut into ``grid`` × ``grid`` blocks to ``folder``;
    returns the manifest. ``folder`` must not exist, or hold a partition (replaced)."""
    from recsys.training.strata import BlockGrid

    pa, pq = _pyarrow()
    folder = Path(folder)
    if folder.exists() and not is_partition(folder):
        raise DataError("exists and is not a partition; give a new folder", folder)
    if grid < 1:
        raise ValueError(f"grid must be at least 1, not {grid}")
    if len(ratings) == 0:
        raise DataError("no ratings to partition", ratings.source)
    blocks = BlockGrid.build(ratings.users, ratings.items, ratings.n_users, ratings.n_items,
                             grid)
    users, items, values, block_ptr = blocks.group(ratings.users, ratings.items,
                                                   ratings.values)
    from recsys.distributed.layout import bounds

    folder.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        (temp / "blocks").mkdir()
        for b in range(grid * grid):
            lo, hi = int(block_ptr[b]), int(block_ptr[b + 1])
            pq.write_table(pa.table({"user": users[lo:hi], "item": items[lo:hi],
                                     "rating": values[lo:hi]}), temp / block_file(b))
        pq.write_table(pa.table({"id": ratings.user_map.ids}), temp / "users.parquet")
        pq.write_table(pa.table({"id": ratings.item_map.ids}), temp / "items.parquet")
        summary = ratings.summary()
        manifest = {
            "format": FORMAT, "version": VERSION, "grid": int(grid),
            "n_ratings": int(len(ratings)), "n_users": int(ratings.n_users),
            "n_items": int(ratings.n_items),
            "user_bounds": bounds(blocks.user_block, grid).tolist(),
            "item_bounds": bounds(blocks.item_block, grid).tolist(),
            "counts": np.diff(block_ptr).tolist(),
            "mean_rating": summary["mean_rating"],  # float64, exact in JSON
            "summary": {k: _plain(v) for k, v in summary.items()},
            "lineage": {k: _plain(v) for k, v in ratings.lineage_entry().items()},
            "titles": [[_plain(k), v] for k, v in ratings.item_titles.items()],
            "files": {"users": "users.parquet", "items": "items.parquet",
                      "blocks": "blocks/{b:05d}.parquet"},
        }
        (temp / MANIFEST).write_text(json.dumps(manifest, indent=1, default=str),
                                     encoding="utf-8")
        for path in [*sorted((temp / "blocks").iterdir()), *temp.iterdir()]:
            if path.is_file():
                with open(path, "rb") as fh:
                    os.fsync(fh.fileno())
        os.chmod(temp, 0o755)
        old = None
        if folder.exists():  # a previous partition: moved aside, then removed
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old",
                                        dir=folder.parent))
            os.rename(folder, old / "partition")
        os.rename(temp, folder)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return manifest


@dataclass
class Partition:
    """A partition folder's manifest and id maps (``recsys.data.ratings.IdMap``)."""

    folder: Path
    manifest: dict
    user_map: object
    item_map: object

    @classmethod
    def open(cls, folder) -> Partition:
        from recsys.data.ratings import IdMap

        folder = Path(folder)
        path = folder / MANIFEST
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read the partition's manifest: {exc}", path) from None
        if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
            raise DataError(f"not a {FORMAT} version {VERSION} manifest", path)
        _, pq = _pyarrow()
        maps = []
        for name, n in (("users", manifest["n_users"]), ("items", manifest["n_items"])):
            ids = pq.read_table(folder / manifest["files"][name]).column("id").to_numpy(
                zero_copy_only=False)
            if len(ids) != n:
                raise DataError(f"holds {len(ids):,} ids, the manifest says {n:,}",
                                folder / manifest["files"][name])
            maps.append(IdMap(ids))
        return cls(folder, manifest, *maps)

    @property
    def grid(self) -> int:
        return int(self.manifest["grid"])

    def __len__(self) -> int:
        return int(self.manifest["n_ratings"])

    @property
    def n_users(self) -> int:
        return len(self.user_map)

    @property
    def n_items(self) -> int:
        return len(self.item_map)

    @property
    def counts(self) -> np.ndarray:
        return np.asarray(self.manifest["counts"], dtype=np.int64)

    def block_ptr(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.counts)]).astype(np.int64)

    @property
    def titles(self) -> dict:
        return {k: v for k, v in self.manifest.get("titles", [])}


def read_blocks(folder, manifest: dict, first: int, last: int):
    """The ratings of user blocks [first, last), block by block: (users, items, values,
    block_ptr) with global indices; each file checked against the manifest. Each block is
    copied into the result as soon as it is read, so no more than one block's table is
    held beside the result."""
    pa, pq = _pyarrow()
    grid = int(manifest["grid"])
    counts = [int(c) for c in manifest["counts"][first * grid: last * grid]]
    ptr = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64)
    users = np.empty(int(ptr[-1]), dtype=np.int32)
    items = np.empty(int(ptr[-1]), dtype=np.int32)
    values = np.empty(int(ptr[-1]), dtype=np.float32)
    for n, b in enumerate(range(first * grid, last * grid)):
        path = Path(folder) / block_file(b)
        try:
            table = pq.read_table(path, columns=["user", "item", "rating"])
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read block {b}: {exc}", path) from None
        if table.num_rows != counts[n]:
            raise DataError(f"block {b} holds {table.num_rows:,} ratings, the manifest says "
                            f"{counts[n]:,}", path)
        rows = slice(int(ptr[n]), int(ptr[n + 1]))
        for target, name in ((users, "user"), (items, "item"), (values, "rating")):
            target[rows] = table.column(name).to_numpy()
        del table
    pa.default_memory_pool().release_unused()  # the tables' memory, back to the system
    return users, items, values, ptr
