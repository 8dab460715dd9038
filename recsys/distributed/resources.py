"""What one worker of a distributed fit needs in memory, checked against its limit before
any data moves, so a share that cannot fit fails at once with the need and the limit."""

from __future__ import annotations

from recsys.distributed.layout import Layout

#: A Dask nanny ends a worker whose memory passes this share of its limit.
TERMINATE = 0.95


#: Bytes a worker process grows by for any share: numba compiling the block kernels and,
#: reading a partition, pyarrow (measured: about 100 MiB beyond its use at the check).
RUNTIME = 100 << 20
#: Peak bytes per rating of a worker's share (25M generated ratings, 2 and 4 workers,
#: k=32, peak RSS of each worker process, 2026-12-02: 14 and 56 bytes a rating beyond a
#: fixed part): sent by the client (the message and the local arrays: 2 x 12 bytes), or
#: read from a partition (the blocks, the global and local indices while they are made
#: local, the seen-items index the worker keeps for the model: 5 x 12 bytes).
SENT, READ = 24, 60


def share_bytes(layout: Layout, w: int, n_ratings: int, k: int, itemsize: int,
                adaptive: bool, from_files: bool = False) -> int:
    """Peak bytes worker ``w`` adds for its share: ``RUNTIME``, its ratings (``SENT`` or,
    ``from_files``, ``READ`` bytes each), its user rows (P, b_u, and G_u, H_u with AdaGrad)
    twice (a snapshot), and the item blocks with it at once (its own count of blocks in
    flight and as many arrived early; twice, for a snapshot)."""
    first, last = layout.user_blocks(w)
    u0, u1 = layout.user_rows(w)
    extra = 2 if adaptive else 0
    rows = (u1 - u0) * (k + 1 + extra) * itemsize
    n_items = int(layout.item_bounds[-1])
    items = n_items * (k + 1 + extra) * itemsize * min(1.0, 2 * (last - first) / layout.grid)
    per_rating = READ if from_files else SENT
    return int(RUNTIME + per_rating * n_ratings + 2 * rows + 2 * items)


def check_share(address: str, info: dict, need: int) -> None:
    """ResourceError now if worker ``address`` cannot hold ``need`` bytes more."""
    from recsys.memory import human_bytes

    limit = info.get("memory_limit") or 0
    used = int(info.get("metrics", {}).get("memory", 0) or 0)
    if limit and used + need > TERMINATE * limit:
        from recsys.errors import ResourceError

        raise ResourceError(
            f"Dask worker {address} needs about {human_bytes(need)} for its share of the "
            f"fit on top of the {human_bytes(used)} it uses, but its memory limit is "
            f"{human_bytes(limit)}; use more workers or a larger --worker-memory")
