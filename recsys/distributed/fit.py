"""Training from a partition folder (``recsys.distributed.partition``): the one training
loop (``recsys.training.loop.run``) over a trainer whose ratings stay on the workers.

The client holds the factors (drawn from the seed exactly as the in-process fit draws
them, so nothing depends on the number of workers), the manifest and the id maps; each
worker reads only its own blocks. The model is the one an in-process fit of the
partitioned file with the same grid and seed makes, bit for bit.
"""

from __future__ import annotations

import numpy as np

from recsys.memory import ensure_memory
from recsys.training.config import TrainConfig
from recsys.training.factors import GroupedRatings, initial_factors
from recsys.training.loop import IndexedRatings, TrainResult, run
from recsys.training.resources import factor_bytes
from recsys.training.trainers import make_trainer

_DTYPES = {"float32": np.float32, "float64": np.float64}


def check_config(config: TrainConfig, partition) -> None:
    """ValueError for what a fit from a partition cannot do."""
    if config.grid is not None and int(config.grid) != partition.grid:
        raise ValueError(f"the partition has a grid of {partition.grid} blocks a side, not "
                         f"{config.grid}: partition again or leave grid unset")
    if config.lr_schedule == "bold":
        raise ValueError("lr_schedule 'bold' needs the whole loss in one process; use "
                         "'constant', 'decay' or 'adagrad' with a partition")
    check_warmup(config)


def check_warmup(config: TrainConfig) -> None:
    """ValueError for a warm-up (``recsys.training.schedule``) on a Dask cluster: its
    workers keep one step rule, plain or AdaGrad, for the whole fit."""
    from recsys.training.schedule import warmup_run

    if warmup_run(config.method, config.lr_schedule, config.warmup_epochs):
        raise ValueError("a fit on a Dask cluster has no warm-up (its workers keep one step "
                         "rule for the whole fit): set warmup_epochs=0 (--warmup-epochs 0) "
                         "and give the schedule more epochs, e.g. n_epochs=35, "
                         "lr_decay=0.94")


def train_partition(config: TrainConfig, partition, backend,
                    validation: IndexedRatings | None = None, on_epoch=None,
                    done: list | None = None) -> TrainResult:
    """Train on the blocks of ``partition`` with ``backend`` (a ``DaskBackend`` whose
    ``source`` is the partition)."""
    check_config(config, partition)
    dtype = _DTYPES[config.dtype]
    k, n = int(config.n_factors), len(partition)
    itemsize = np.dtype(dtype).itemsize
    copies = 2 if config.lr_schedule == "adagrad" else 1  # the accumulators
    # the factors, the float64 draw of P or Q, and one copy gathered at the end
    need = (copies + 1) * factor_bytes(partition.n_users, partition.n_items, k, itemsize) \
        + max(partition.n_users, partition.n_items) * k * 8
    ensure_memory(need, f"the client of a distributed fit with {k} factors")
    rng = np.random.default_rng(config.seed)
    mean = np.array([partition.manifest["mean_rating"]], dtype=np.float64)
    factors = initial_factors(mean, partition.n_users, partition.n_items, k, config.init_std,
                              dtype, rng)
    grid = partition.grid
    none = GroupedRatings(np.empty(0, np.int32), np.empty(0, np.int32),
                          np.empty(0, np.float32), np.zeros(grid * grid + 1, np.int64), grid)
    trainer = make_trainer(config, none, factors, rng, backend)
    summary = partition.manifest["summary"]
    return run(trainer, config, n, float(summary["min_rating"]), float(summary["max_rating"]),
               validation, on_epoch, done)
