"""The one training loop: epochs, reporting, divergence and early stopping, for every
trainer and backend.

``train(config, ratings)`` draws the initial factors from ``config.seed``, groups the
ratings into the block grid, builds the trainer named by ``config.method`` and runs its
units (epochs; features for ``funk``). After each unit it reports an ``EpochInfo``
(training RMSE, validation RMSE when validation ratings are given, seconds, the learning
rate used), stops with a ``TrainingError`` in the epoch where training diverges, and,
with ``early_stopping`` > 0, stops that many units after the best validation RMSE and
restores the arrays of the best unit. It never sees an estimator. The backend (CPU
threads or a GPU, ``config.backend``) may keep the arrays on a device during training:
validation and snapshots go through the trainer, and the host arrays are brought up to
date once, at the end.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from recsys.errors import TrainingError
from recsys.memory import ensure_memory
from recsys.state import Factors
from recsys.training.config import TrainConfig
from recsys.training.factors import GroupedRatings, initial_factors
from recsys.training.resources import training_bytes
from recsys.training.strata import BlockGrid, choose_grid
from recsys.training.trainers import make_trainer

log = logging.getLogger(__name__)
#: An epoch whose training RMSE exceeds this multiple of the rating range has diverged.
DIVERGED = 1e3
_DTYPES = {"float32": np.float32, "float64": np.float64}


@dataclass
class EpochInfo:
    """What one epoch reports: passed to the epoch callback and kept in the history."""

    epoch: int
    train_rmse: float
    valid_rmse: float | None
    seconds: float
    lr: float | None = None
    adaptive: bool = False  # AdaGrad steps (a warm-up epoch, or the adagrad schedule)

    def as_dict(self) -> dict:
        return {"epoch": self.epoch, "train_rmse": self.train_rmse,
                "valid_rmse": self.valid_rmse, "seconds": self.seconds, "lr": self.lr,
                "adaptive": self.adaptive}


@dataclass
class IndexedRatings:
    """Ratings as dense indices: int32 users and items (of the training maps; -1 where
    unknown, for validation ratings), float32 values, and the sizes of the maps."""

    users: np.ndarray
    items: np.ndarray
    values: np.ndarray
    n_users: int
    n_items: int

    @classmethod
    def of(cls, ratings) -> IndexedRatings:
        """The index columns of ``ratings`` (a ``recsys.data.ratings.Ratings``), as they are."""
        return cls(ratings.users, ratings.items, ratings.values, ratings.n_users,
                   ratings.n_items)

    def __len__(self) -> int:
        return len(self.values)


@dataclass
class TrainResult:
    factors: Factors
    history: list  # EpochInfo.as_dict() per unit run
    best_epoch: int  # the unit whose arrays were kept


@dataclass
class Shared:
    """What fits of the same ratings, seed, shape and initial spread can share (the trials
    of ``reg='auto'``, which differ in γ and rate only): the ratings grouped into blocks
    and put in blocked SGD's order, the initial factors before training, and the random
    generator's state after drawing them (a warm start takes the grouped ratings only).
    Each fit that reuses them is the fit it would have been, bit for bit; what they save
    is the grouping, sorting and drawing (about 0.8 s a fit at 10M ratings)."""

    key: tuple | None = None
    grouped: GroupedRatings | None = None
    factors: Factors | None = None
    rng_state: dict | None = None
    #: Whether the first fit keeps a copy of its drawn start for the next ones (False
    #: where every later fit is a warm start, which takes the grouped ratings only).
    keep_start: bool = True
    #: Ratings the grouped arrays have room for (0: as many as they hold), so that a
    #: later fit of more ratings groups its own into them once these fits are done
    #: (``reg='auto'``'s final fit, into its trials': ``GroupedRatings.room``).
    capacity: int = 0


def train(config: TrainConfig, ratings: IndexedRatings, validation: IndexedRatings | None = None,
          on_epoch: Callable[[EpochInfo], None] | None = None,
          init: Factors | None = None, backend=None, done: list | None = None,
          shared: Shared | None = None, after: int = 0, room: tuple | None = None
          ) -> TrainResult:
    """Train factors on ``ratings`` as ``config`` says; see the module docstring.

    ``init``: factors to continue from (a warm start) instead of drawing them from the
    seed; trained in place. Their shapes must be the ratings' users and items by
    ``n_factors`` and their dtype ``config.dtype``. ``backend``: a backend object to run
    on instead of the one ``config.backend`` names (one that needs more than a name, such
    as ``recsys.distributed.backend.DaskBackend`` with its client). ``done``: the history
    of epochs already run (a fit continued from a checkpoint that ``backend`` holds).
    ``shared``: a ``Shared`` that fits of the same ``ratings`` fill and reuse (method sgd;
    otherwise ignored): a fit whose factors are drawn from the seed takes its grouped
    ratings and initial factors (filling it if empty), a warm start (``init``) its
    grouped ratings. ``after``: epochs that ran before
    this fit, elsewhere (``reg='auto'``'s warm-up): the fit's epochs are numbered after
    them, in reports, history and errors.
    ``room``: (users, items, values) arrays no longer needed (``GroupedRatings.room`` of
    fits before), which this fit groups its ratings into where they are long enough and
    of the same dtypes, instead of allocating its own (on the shared VM the first write to
    fresh memory is slow: grouping 10M ratings into fresh arrays took 190-260 ms, into
    memory just freed 35-60 ms).
    """
    dtype = _DTYPES[config.dtype]
    k, n = int(config.n_factors), len(ratings)
    if n == 0:
        raise TrainingError("no ratings to train on")
    n_users, n_items = ratings.n_users, ratings.n_items
    itemsize = np.dtype(dtype).itemsize
    snapshot = bool(config.early_stopping) or config.lr_schedule == "bold"
    n_valid = 0 if validation is None else len(validation)
    ensure_memory(training_bytes(n, n_users, n_items, k, itemsize, config.method,
                                 snapshot=snapshot, n_valid=n_valid),
                  f"training {n:,} ratings with {k} factors")
    rng = np.random.default_rng(config.seed)
    if shared is not None and config.method != "sgd":
        shared = None
    key = (config.seed, k, config.dtype, config.init_std, config.grid)
    if shared is not None and shared.key == key and init is not None:
        factors, grouped = init, shared.grouped  # a warm start on the shared ratings
        _check_start(factors, n_users, n_items, k, dtype)
    elif shared is not None and shared.key == key and shared.factors is not None:
        factors, grouped = shared.factors.copy(), shared.grouped
        rng.bit_generator.state = shared.rng_state
    else:
        if init is None:
            factors = initial_factors(ratings.values, n_users, n_items, k, config.init_std,
                                      dtype, rng)
        else:
            factors = init
            _check_start(factors, n_users, n_items, k, dtype)
        capacity = 0 if shared is None or init is not None else shared.capacity
        grouped = _grouped(ratings, choose_grid(n_users, n_items, n, k * itemsize,
                                                config.grid), room, capacity)
        if shared is not None and init is None:
            shared.key, shared.grouped = key, grouped
            if shared.keep_start:
                shared.factors, shared.rng_state = factors.copy(), rng.bit_generator.state
    lo, hi = float(ratings.values.min()), float(ratings.values.max())
    trainer = make_trainer(config, grouped, factors, rng, backend)  # DeviceError: no device
    log.info("training %s: %d ratings, %d users, %d items, k=%d, %d blocks a side, %s",
             config.method, n, n_users, n_items, k, grouped.grid,
             "continued" if init is not None else f"seed {config.seed}")
    return run(trainer, config, n, lo, hi, validation, on_epoch, done, after)


def _check_start(factors: Factors, n_users: int, n_items: int, k: int, dtype) -> None:
    if factors.user_factors.shape != (n_users, k) or \
            factors.item_factors.shape != (n_items, k) or \
            factors.user_factors.dtype != np.dtype(dtype):
        raise ValueError("the initial factors do not match the ratings and the config")


def _grouped(ratings: IndexedRatings, size: int, room: tuple | None = None,
             capacity: int = 0) -> GroupedRatings:
    """The ratings grouped into a ``size`` × ``size`` grid of blocks: into the arrays of
    ``room`` where they fit (``train``), else into new ones with room for ``capacity``
    ratings (at least as many as there are)."""
    columns = (ratings.users, ratings.items, ratings.values)
    n = len(ratings)
    if room is None or any(len(a) < n or a.dtype != c.dtype
                           for a, c in zip(room, columns, strict=True)):
        room = tuple(np.empty(max(n, capacity), dtype=c.dtype) for c in columns)
    grid = BlockGrid.build(ratings.users, ratings.items, ratings.n_users, ratings.n_items,
                           size)
    users, items, values, block_ptr = grid.group(*columns, out=tuple(a[:n] for a in room))
    return GroupedRatings(users, items, values, block_ptr, grid.grid, grid.user_block,
                          grid.item_block, room=room)


def run(trainer, config: TrainConfig, n: int, lo: float, hi: float,
        validation: IndexedRatings | None = None,
        on_epoch: Callable[[EpochInfo], None] | None = None,
        done: list | None = None, after: int = 0) -> TrainResult:
    """Run ``trainer``'s units over ``n`` training ratings rated ``lo``..``hi``: report,
    stop on divergence, stop early; see the module docstring. ``done``: the history of
    the units already run, whose arrays the backend holds (not with early stopping).
    ``after``: units run before, elsewhere, that the numbering of these follows."""
    factors = trainer.factors
    scale_range = max(hi - lo, 1.0)
    if validation is not None and len(validation) == 0:
        validation = None
    history: list[dict] = list(done or [])
    if history:
        if config.early_stopping:
            raise ValueError("a fit with early stopping cannot continue from a checkpoint")
        trainer.skip(len(history))
    best_rmse, best_epoch, best_arrays = math.inf, 0, None
    with trainer.backend.workers(config.n_jobs):
        for unit in range(len(history), trainer.n_units):
            start = time.perf_counter()
            lr_used, adaptive = trainer.current_lr, trainer.current_adaptive
            sse = trainer.run_unit(unit)
            seconds = time.perf_counter() - start
            train_rmse = math.sqrt(sse / n)
            if not math.isfinite(train_rmse) or train_rmse > DIVERGED * scale_range:
                raise TrainingError(
                    f"training diverged in epoch {after + unit + 1} (training RMSE "
                    f"{train_rmse:.3g}); use a smaller learning rate than {config.lr:g}")
            valid_rmse = None
            if validation is not None:
                valid_rmse = trainer.rmse(validation.users, validation.items,
                                          validation.values, lo, hi)
            info = EpochInfo(after + unit + 1, train_rmse, valid_rmse, seconds, lr_used,
                             adaptive)
            history.append(info.as_dict())
            log.debug("epoch %d: train RMSE %.4f%s, %.3f s", info.epoch, train_rmse,
                      "" if valid_rmse is None else f", valid RMSE {valid_rmse:.4f}", seconds)
            if on_epoch is not None:
                on_epoch(info)
            if config.early_stopping and valid_rmse is not None:
                if valid_rmse < best_rmse:
                    best_rmse, best_epoch, best_arrays = valid_rmse, after + unit + 1, \
                        trainer.snapshot()
                elif after + unit + 1 - best_epoch >= config.early_stopping:
                    break
        if best_arrays is not None:
            trainer.restore(best_arrays)
        else:
            best_epoch = after + len(history)
        trainer.sync()  # the backend may have trained a device copy
    _check_finite(factors, config.lr)
    return TrainResult(factors, history, best_epoch)


def _check_finite(factors: Factors, lr: float) -> None:
    names = ("user_bias", "item_bias", "user_factors", "item_factors")
    for name, array in zip(names, factors.arrays(), strict=True):
        if not np.isfinite(array).all():
            raise TrainingError(f"training produced non-finite {name}; "
                                f"use a smaller learning rate than {lr:g}")
