"""Fitting a factor model by gradient descent: what FunkSVD and SVD++ share.

``fit`` checks the parameters, reads the data through the one validated input path,
resolves ``reg='auto'`` (``recsys.training.autoreg``: trial fits on 10% of the training
ratings held out), holds out 5% for early stopping when no validation set is given, hands
a ``TrainConfig`` and the ratings as indices to the training loop
(``recsys.training.loop``), and keeps the result as a ``FactorState`` with the seen-items
index, the rating scale, titles and lineage.
"""

from __future__ import annotations

import logging
import os
from dataclasses import fields, replace

import numpy as np
import pandas as pd

from recsys.data.ratings import Ratings
from recsys.data.split import split_off
from recsys.errors import TrainingError
from recsys.models.base import FactorModel
from recsys.models.continuation import continued_factors, grown, inherit, seen_with
from recsys.models.fitted import digest_meanwhile, new_state, seen_index
from recsys.state import FactorState, FitReport, Lineage
from recsys.training.autoreg import HOLDOUT, MIN_RATINGS, is_auto, user_share
from recsys.training.backends import require as require_backend
from recsys.training.backends.cpu import CpuBackend
from recsys.training.config import TrainConfig
from recsys.training.loop import EpochInfo, IndexedRatings, train
from recsys.training.resources import (
    ensure_memory,
    factor_bytes,
    split_bytes,
    training_bytes,
    with_margin,
)
from recsys.training.schedule import continued_rate, ended_rate, warmup_run

_PLAIN = {"int": int, "float": float, "int | None": int, "str": str}
log = logging.getLogger(__name__)
#: Share of the training ratings held out for early stopping when no validation set is given.
EARLY_STOP_HOLDOUT = 0.05
#: Epochs of ``partial_fit`` over the new ratings and their replay sample.
UPDATE_EPOCHS = 5


def as_ratings(data, **read_options) -> Ratings:
    """Accept a Ratings, a DataFrame or a file path; frames and files get the same checks
    (``recsys.data.readers.read_ratings``)."""
    if isinstance(data, Ratings):
        return data
    if isinstance(data, (pd.DataFrame, str, os.PathLike)):
        from recsys.data.readers import read_ratings

        return read_ratings(data, **read_options)
    raise TypeError(f"expected Ratings, a DataFrame or a path, not {type(data).__name__}")


def rating_row_bytes(ratings: Ratings) -> int:
    """Bytes of one rating in ``ratings``: user, item, value and any timestamp."""
    return 12 + (0 if ratings.timestamps is None else 8)


def _indexed_validation(validation, user_map, item_map) -> IndexedRatings | None:
    """The validation ratings (any kind ``as_ratings`` takes, or None) on the training
    ratings' indices; ids the training data lacks get -1."""
    if validation is None:
        return None
    held = as_ratings(validation)
    return IndexedRatings(user_map.indices(held.raw_users), item_map.indices(held.raw_items),
                          held.values, len(user_map), len(item_map))


class FactorizationEstimator(FactorModel):
    """Shared ``fit`` of the models trained by the loop; ``_METHOD`` names the trainer
    (None: the ``method`` parameter)."""

    _METHOD: str | None = None

    def _train_config(self, reg: float) -> TrainConfig:
        """The TrainConfig of a fit at factor regularization ``reg``: the parameters the
        config has, as plain numbers, None regularizations resolved to ``reg``, and
        ``device`` as the backend."""
        params = self.get_params()
        params.pop("reg")
        config = {}
        for field in fields(TrainConfig):
            value = params.get(field.name)
            if value is not None:
                config[field.name] = _PLAIN[field.type](value) if field.type in _PLAIN else value
        config["method"] = self._METHOD or self.method
        config["backend"] = params.get("device", "cpu")
        config["reg"] = float(reg)
        for name in ("reg_bias", "reg_implicit"):
            if name in params and params[name] is None:
                config[name] = float(reg)
        return TrainConfig(**config)

    def _fold_in_penalties(self, m: int) -> tuple[float, float]:
        reg_bias = self.reg_ if self.reg_bias is None else self.reg_bias
        return float(self.reg_) * m, float(reg_bias) * m

    def fit(self, data, validation=None, callback=None, reg_callback=None, init=None,
            client=None):
        """Learn biases and factors from ``data`` (Ratings, DataFrame or path).

        ``validation`` (same kinds) adds validation RMSE to each epoch's report; it is
        never used to choose ``reg='auto'``, which holds out training ratings instead.
        ``callback(EpochInfo)`` is called after every epoch of the final fit, and
        ``reg_callback(reg, held_out_rmse)`` after each trial of ``reg='auto'``. Under a
        warm-up, ``reg='auto'`` trains it once for its trials and the final fit starts
        after it (``recsys.models.regsearch``); ``history_`` lists those epochs first,
        marked ``reg_trial``.
        ``init``: a fitted model of this class (or the path of one) to continue from (a
        warm start, ``recsys.models.continuation``): its factors and biases are the start,
        its γ is kept when ``reg`` is 'auto', users and items new in ``data`` get fresh rows;
        under the decay schedule (both models') the rate goes on from where the parent's
        ended, so the fit continues its learning curve.
        ``client``: a ``distributed.Client`` (or a ``recsys.distributed.backend.DaskBackend``)
        whose workers run the final fit's epochs (method 'sgd' on the CPU, the ``dask``
        extra); the model is the in-process fit's, bit for bit. ``reg='auto'``'s trial
        fits run in this process. Everything runs on ``n_jobs`` threads (the grouping,
        sorting and indexing too, not only the epochs).
        """
        self.check_params()
        with CpuBackend().workers(getattr(self, "n_jobs", None)):
            return self._fit(data, validation, callback, reg_callback, init, client)

    def _fit(self, data, validation, callback, reg_callback, init, client):
        backend = None if client is None else self.distributed_backend(client)
        if isinstance(data, (str, os.PathLike)) and os.path.isdir(data):
            from recsys.distributed.partition import is_partition

            if is_partition(data):
                return self._fit_partition(data, validation, callback, backend)
        require_backend(getattr(self, "device", "cpu"))  # no GPU: fail before reading data
        ratings = as_ratings(data)
        if len(ratings) == 0:
            raise TrainingError("no ratings to train on")
        ensure_memory(self.memory_estimate(ratings, validation is not None),
                      f"fitting {len(ratings):,} ratings with {self.n_factors} factors")
        parent = None if init is None else self._parent(init)
        if parent is not None:
            ratings = ratings.onto(*grown(parent.state_, ratings))
        valid = _indexed_validation(validation, ratings.user_map, ratings.item_map)
        # (early stopping trains on fewer ratings, split off below, and hashes those)
        digest = None if self.early_stopping and validation is None or client is not None \
            else digest_meanwhile(ratings)
        if parent is not None:
            reg = parent.reg_ if is_auto(self.reg) else float(self.reg)
            self.reg_, self.reg_trials_, warmed = reg, [], None
        else:
            self.reg_, self.reg_trials_, warmed = self._resolve_reg(ratings, reg_callback,
                                                                    valid)
        if self.early_stopping and validation is None:
            ratings, validation = split_off(ratings, EARLY_STOP_HOLDOUT, self.seed)
            warmed = None  # it trained on most of that share: the fit warms up itself
            valid = _indexed_validation(validation, ratings.user_map, ratings.item_map)
        start = None if parent is None else continued_factors(
            parent.state_, ratings.n_users, ratings.n_items, float(self.init_std),
            int(self.seed))
        config = self._train_config(self.reg_)
        if warmed is not None and backend is None and len(warmed.history) < config.n_epochs:
            # the trials' warm-up stands for the final fit's: its schedule starts from
            # there (see the module docstring of recsys.models.regsearch)
            start, config = warmed.factors, replace(
                config, warmup_epochs=0, n_epochs=config.n_epochs - len(warmed.history))
            if callback is not None:  # its epochs are reported as this fit's first ones
                for entry in warmed.history:
                    callback(EpochInfo(**entry))
        else:
            warmed = None
        if parent is not None:  # the factors have grown already: no warm-up
            config = replace(config, warmup_epochs=0)
            if config.lr_schedule == parent.lr_schedule == "decay":  # the schedule goes on
                config = replace(config, lr=continued_rate(
                    parent.history_, parent.lr, parent.lr_decay, parent.n_epochs,
                    _warmup(parent), config.lr_decay))
        done = []
        if backend is not None:
            from recsys.distributed.fit import check_warmup

            check_warmup(config)
            done, callback = _resumed(backend, config, ratings.digest(), len(ratings),
                                      callback)
        result = train(config, IndexedRatings.of(ratings), valid, callback, init=start,
                       backend=backend, done=done,
                       after=0 if warmed is None else len(warmed.history),
                       room=None if warmed is None else warmed.room)
        # the grouped users and items the final fit trained on are free: the seen-items
        # index is built in them
        state = new_state(ratings, result.factors, digest,
                          None if warmed is None or warmed.room is None else warmed.room[:2])
        if parent is not None:
            inherit(state, parent.state_, state.lineage.data[0])  # (hashed once)
        history = result.history
        if warmed is not None:  # the warm-up epochs ran for reg auto's trials
            history = [{**h, "reg_trial": True} for h in warmed.history] + history
        self._set_fitted(state, FitReport(self.reg_, self.reg_trials_, history,
                                          result.best_epoch, ratings.summary()))
        return self

    def _fit_partition(self, folder, validation, callback, backend):
        """Fit on a partition folder (``recsys.distributed.partition``) whose blocks the
        workers of ``backend`` read; see ``recsys.distributed.fit``."""
        from recsys.distributed.fit import train_partition
        from recsys.distributed.partition import Partition

        if backend is None:
            raise ValueError(f"{folder} is a partition: it trains on a Dask cluster (give a "
                             "client)")
        if is_auto(self.reg):
            raise ValueError("reg 'auto' holds out ratings in one process; give a number to "
                             "train on a partition")
        if self.early_stopping and validation is None:
            raise ValueError("early stopping on a partition needs a validation set")
        part = Partition.open(folder)
        backend.source, backend.seed = part, int(self.seed)
        self.reg_, self.reg_trials_ = float(self.reg), []
        valid = _indexed_validation(validation, part.user_map, part.item_map)
        config = self._train_config(self.reg_)
        done, callback = _resumed(backend, config, part.manifest["lineage"]["sha256"],
                                  len(part), callback)
        result = train_partition(config, part, backend, valid, callback, done)
        summary = part.manifest["summary"]
        state = FactorState(result.factors, part.user_map, part.item_map, backend.seen,
                            (float(summary["min_rating"]), float(summary["max_rating"])),
                            part.titles, Lineage(data=[part.manifest["lineage"]]))
        self._set_fitted(state, FitReport(self.reg_, [], result.history, result.best_epoch,
                                          summary))
        return self

    def distributed_backend(self, client, **options):
        """The backend (``recsys.distributed.backend.DaskBackend``) that runs a fit on the
        workers of ``client`` (``options``: the backend's, such as ``checkpoint``);
        ValueError where this model cannot train there."""
        method = self._METHOD or getattr(self, "method", "sgd")
        if method != "sgd" or getattr(self, "device", "cpu") != "cpu":
            raise ValueError(f"a Dask client trains method 'sgd' on the CPU only, not "
                             f"{method!r} on {getattr(self, 'device', 'cpu')!r}")
        if hasattr(client, "sgd_epoch"):
            return client
        from recsys.distributed.backend import DaskBackend

        return DaskBackend(client, **options)

    def _parent(self, init):
        """The fitted model ``init`` names (a model or a path), checked to be continuable
        by this one."""
        parent = init if isinstance(init, FactorModel) else type(self).load(init)
        state = parent._fitted_state()
        if type(parent) is not type(self) or self._METHOD is not None:
            raise ValueError(f"a {type(self).__name__} continues a {type(self).__name__} "
                             f"trained by SGD, not a {type(parent).__name__}")
        if getattr(self, "method", "sgd") not in ("sgd", "gd"):
            raise ValueError(f"method {self.method!r} does not continue a model "
                             "(it trains one feature at a time from zero): use sgd or gd")
        if state.n_factors != int(self.n_factors) or state.dtype != np.dtype(self.dtype):
            raise ValueError(f"the model to continue has {state.n_factors} {state.dtype} "
                             f"factors; set n_factors={state.n_factors} and "
                             f"dtype={str(state.dtype)!r}")
        return parent

    def partial_fit(self, new, n_epochs: int | None = None, base=None, replay: float = 1.0,
                    duplicates: str = "error", callback=None):
        """Update the fitted model with ``new`` ratings, without retraining from scratch.

        New users and items are folded in first; then ``n_epochs`` (default
        ``UPDATE_EPOCHS``) epochs, at the rate the fit's schedule ended with (under decay;
        ``recsys.training.schedule.ended_rate``), over the new ratings plus a replay of
        a share ``replay`` of ``base``, the data the model was trained on (all of it by
        default, so the model does not drift toward the new data alone; without ``base``
        only the new ratings train). See ``recsys.models.continuation``. A new rating of
        a pair ``base`` (or the seen-items index) already has follows ``duplicates``
        ('error', 'last', 'mean', 'sum'; without ``base`` the old value is unknown, so any
        policy but 'error' keeps the new one). Same seed, same data: the same model.
        """
        from recsys.models.continuation import fold_in_fresh, merged, replay_sample

        parent = self._fitted_state()
        if self._METHOD is not None or getattr(self, "method", "sgd") not in ("sgd", "gd"):
            raise ValueError(f"{type(self).__name__} updates by sgd or gd only")
        require_backend(getattr(self, "device", "cpu"))
        new = as_ratings(new)
        if len(new) == 0:
            raise TrainingError("no new ratings")
        base = None if base is None else as_ratings(base)
        maps = grown(parent, *([base] if base is not None else []), new)
        fresh = new.onto(*maps)
        if base is not None:
            everything, keep = merged(base.onto(*maps), fresh, duplicates)
            old = everything.subset(np.arange(int(keep.sum())))
            rows = replay_sample(old, np.ones(len(old), dtype=bool), replay * len(old),
                                 int(self.seed))
            training = everything if len(rows) == len(old) else everything.subset(
                np.concatenate([rows, np.arange(len(old), len(everything))]))
            seen = seen_index(everything)
        else:
            everything, training = None, fresh
            seen = seen_with(parent.seen, fresh, duplicates, new.source)
        config = replace(self._train_config(self.reg_), early_stopping=0, warmup_epochs=0,
                         n_epochs=int(UPDATE_EPOCHS if n_epochs is None else n_epochs))
        if config.lr_schedule == "decay":  # where the fit's schedule ended, held constant
            config = replace(config, lr_schedule="constant", lr=ended_rate(
                self.history_, config.lr, config.lr_decay, self.n_epochs, _warmup(self)))
        start = continued_factors(parent, len(maps[0]), len(maps[1]), float(self.init_std),
                                  int(self.seed))
        reg_bias = self.reg_ if self.reg_bias is None else self.reg_bias
        fold_in_fresh(start, fresh, parent.n_users, parent.n_items, float(self.reg_),
                      float(reg_bias))
        result = train(config, IndexedRatings.of(training), None, callback, init=start)
        described = everything if everything is not None else training
        state = FactorState(result.factors, *maps, seen, parent.rating_scale, {},
                            unknown_user=parent.unknown_user)
        entry = {**new.lineage_entry(), "update": True}
        if base is not None:
            entry["base"] = base.lineage_entry()["sha256"]
        inherit(state, parent, entry, training)
        self._set_fitted(state, FitReport(self.reg_, [], result.history, result.best_epoch,
                                          described.summary()))
        return self

    def memory_estimate(self, ratings: Ratings, has_validation: bool = False) -> int:
        """Peak bytes ``fit(ratings)`` allocates (beyond ``ratings``), as ``fit`` checks
        before it starts: the ``reg='auto'`` search (its 90/10 split, kept through trial
        fits on the 90%), the early-stopping split, and the training itself
        (``recsys.training.resources``)."""
        n, u, i = len(ratings), ratings.n_users, ratings.n_items
        row = rating_row_bytes(ratings)
        phases = [self._fixed_reg_bytes(n, u, i, row, has_validation)]
        if is_auto(self.reg) and n >= MIN_RATINGS:
            held = max(1, int(n * HOLDOUT))
            split_peak, kept = split_bytes(n, row)
            trial = self._fixed_reg_bytes(n - held, u, i, row, False)
            # the held-out truth in float64, and the ids, indices and predictions of the
            # held-out pairs (freed, but small enough to stay in the heap); the trials'
            # shared start keeps a copy of the initial factors (their grouped ratings are
            # the trial's own, counted in it), and the factors at the end of the shared
            # warm-up are kept for every trial to copy
            start = 2 * factor_bytes(u, i, int(self.n_factors), np.dtype(self.dtype).itemsize)
            # (and the trials' grouped arrays have room for the held-out share too, for
            # the final fit to group all the ratings into); where the trials train on a
            # share of the users, those users' ratings copied from the blocks (12 bytes a
            # rating, about the share of them: 1.1 times it, for the draw's spread) and the
            # held-out ones split (25 bytes each)
            share = user_share(n - held, u, i)
            sample = 0 if share == 1 else int(12 * 1.1 * share * (n - held)) + 25 * held
            phases += [split_peak,
                       kept + 8 * held + 40 * held + 12 * held + sample + trial + start]
        return with_margin(max(phases))

    def _fixed_reg_bytes(self, n: int, u: int, i: int, row: int, has_validation: bool):
        """Peak bytes of a fit at a fixed reg of ``n`` ratings of ``row`` bytes each."""
        itemsize = np.dtype(self.dtype).itemsize
        k = int(self.n_factors)
        method = self._METHOD or self.method
        snapshot = bool(self.early_stopping) or self.lr_schedule == "bold"
        kept, split_peak, n_valid = 0, 0, 0
        if self.early_stopping and not has_validation:
            n_valid = max(1, int(n * EARLY_STOP_HOLDOUT))
            split_peak, kept = split_bytes(n, row)
            n -= n_valid
        training = training_bytes(n, u, i, k, itemsize, method, snapshot=snapshot,
                                  n_valid=n_valid)
        # and the seen-items index (4 bytes a rating), with its build's scratch (8 more)
        state = factor_bytes(u, i, k, itemsize) + 12 * n + 8 * u
        return max(split_peak, kept + training, kept + state)

    def _set_fitted(self, state, report) -> None:
        super()._set_fitted(state, report)
        self.reg_, self.reg_trials_ = report.reg, report.reg_trials

    def _resolve_reg(self, ratings: Ratings, reg_callback, validation=None):
        """(γ trained with, trials, the trials' warm-up or None): ``reg`` itself, or the
        choice of ``reg='auto'`` from trial fits (``recsys.models.regsearch``) on ratings
        held out by the seed. ``validation`` (on the indices of ``ratings``): scored after
        each warm-up epoch, for the fit's history; it never steers the choice."""
        if not is_auto(self.reg):
            return float(self.reg), [], None
        from recsys.models.regsearch import search_reg

        return search_reg(self, ratings, reg_callback, validation)


def _warmup(model) -> int:
    """The warm-up epochs ``model``'s fit ran (0 for a model without the parameter)."""
    method = model._METHOD or getattr(model, "method", "sgd")
    return warmup_run(method, model.lr_schedule, getattr(model, "warmup_epochs", 0))


def _resumed(backend, config: TrainConfig, digest: str, n: int, callback):
    """(epochs a distributed fit continues after, the callback that also keeps each
    epoch's report with the backend's checkpoint)."""
    from dataclasses import asdict

    params = {k: v for k, v in asdict(config).items() if k not in ("n_epochs", "n_jobs")}
    fingerprint = {"config": params, "data": digest}
    done = backend.resumed(fingerprint, n)
    if done and len(done) >= config.n_epochs:
        raise TrainingError(f"the checkpoint holds {len(done)} epochs already; ask for more "
                            "than that to continue")

    def noted(info):
        backend.note(info.as_dict())
        if callback is not None:
            callback(info)

    return done, noted

