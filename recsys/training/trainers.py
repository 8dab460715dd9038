"""One trainer per objective, found by name: what one unit of training does.

The loop (``recsys.training.loop``) owns reporting, divergence and early stopping; a
trainer runs one unit and returns its training Σ e². Trainers are built from a
``TrainConfig``, the grouped ratings, the arrays to train, the fit's random generator and
a backend, never from an estimator. A backend may train a copy of the arrays elsewhere (a
GPU): snapshots, restores and validation RMSE go through it, and ``sync`` brings the host
arrays up to date (the loop calls it at the end; the host-side losses call it first).

* ``sgd`` (default): one epoch of blocked SGD (``recsys.kernels.cpu.sgd``) in the stratum
  order of ``recsys.training.strata``, run by a backend (``recsys.training.backends``:
  CPU threads, or a GPU); the other trainers run on the CPU only. Its first
  ``warmup_epochs`` epochs take AdaGrad steps (``recsys.training.schedule``, "Warm-up").
* ``gd``: one full-batch gradient step on J (``recsys.kernels.cpu.gd``).
* ``funk``: one *feature*, trained for ``n_epochs`` passes (``recsys.kernels.cpu.funk``);
  the loop then runs ``n_factors`` units, and early stopping picks the number of features.
* ``svdpp``: one epoch of SVD++ (``recsys.kernels.cpu.svdpp``), user by user; the implicit
  part is folded into the user factors after every epoch (see ``SVDppTrainer``).
* ``ials``: the ranking objective, a weighted loss over every user-item pair
  (``recsys.kernels.cpu.wals``); one epoch = conjugate-gradient steps on every user's row,
  then every item's (see ``RankingTrainer``).

The learning-rate schedule (``recsys.training.schedule``) advances per epoch for sgd, gd
and svdpp, and per pass (restarting at each feature) for funk. For the bold driver the
loss compared is J (``recsys.kernels.cpu.sgd.loss``) for sgd and gd, SVD++'s J
(``recsys.kernels.cpu.svdpp.loss``) for svdpp, and the pass's Σ e² for funk; a rejected
epoch is undone by restoring the parameters it started from.
"""

from __future__ import annotations

import numpy as np

from recsys.state import Factors
from recsys.training.backends import BACKENDS
from recsys.training.backends import get as get_backend
from recsys.training.config import TrainConfig
from recsys.training.factors import GroupedRatings
from recsys.training.schedule import LearningRate


class Trainer:
    """Trains the arrays of ``factors`` (b_u, b_i, P, Q) in place."""

    #: The backends (``recsys.training.backends``) this trainer runs on.
    backends: tuple = ("cpu",)

    def __init__(self, config: TrainConfig, ratings: GroupedRatings, factors: Factors,
                 rng: np.random.Generator, backend=None):
        if config.lr_schedule == "adagrad" and config.method != "sgd":
            raise ValueError(f"lr_schedule 'adagrad' needs method sgd, not {config.method!r}")
        _check_backend(type(self), config)
        self.config = config
        self.backend = backend if backend is not None else get_backend(config.backend,
                                                                        config.seed)
        self.ratings = ratings
        self.users, self.items, self.values = ratings.users, ratings.items, ratings.values
        self.factors = factors
        self.mu, self.bu, self.bi = factors.mu, factors.user_bias, factors.item_bias
        self.P, self.Q = factors.user_factors, factors.item_factors
        self.rng = rng
        self.dtype = self.P.dtype.type
        self.reg = self.dtype(config.reg)
        self.reg_bias = self.dtype(config.reg_bias)
        self.lr = self.new_schedule()

    def new_schedule(self) -> LearningRate:
        c = self.config
        return LearningRate(c.lr, c.lr_schedule, c.lr_decay)

    @property
    def n_units(self) -> int:
        return int(self.config.n_epochs)

    def arrays(self):
        return self.factors.arrays()

    def snapshot(self):
        """A copy of the arrays trained (where the backend keeps them)."""
        return self.backend.snapshot(self.arrays())

    def restore(self, saved) -> None:
        self.backend.restore(self.arrays(), saved)

    def sync(self) -> None:
        """Bring the host arrays up to date (a backend may train a device copy)."""
        self.backend.to_host(self.arrays())

    def rmse(self, users, items, values, lo: float, hi: float) -> float:
        """RMSE of the current model's clipped predictions of ``values`` (validation)."""
        return self.backend.rmse(self.factors, users, items, values, lo, hi)

    def loss(self) -> float:
        from recsys.kernels.cpu.sgd import loss

        self.sync()
        return float(loss(self.users, self.items, self.values, self.mu, self.bu, self.bi,
                          self.P, self.Q, self.reg, self.reg_bias))

    def squared_error(self) -> float:
        from recsys.kernels.cpu.sgd import loss

        self.sync()
        return float(loss(self.users, self.items, self.values, self.mu, self.bu, self.bi,
                          self.P, self.Q, 0.0, 0.0))

    def epoch(self, unit: int, lr) -> float:
        """One epoch (number ``unit``, from 0) at rate ``lr``; returns Σ e²."""
        raise NotImplementedError

    def run_unit(self, unit: int) -> float:
        """Run epoch ``unit`` under the schedule; returns Σ e² (of the epoch kept)."""
        if self.lr.needs_loss:
            if unit == 0:
                self.lr.start(self.loss())
            saved = self.snapshot()
        sse = self.epoch(unit, self.dtype(self.lr.rate))
        if self.lr.needs_loss:
            if not self.lr.after_epoch(self.loss()):
                self.restore(saved)
                sse = self.squared_error()  # of the parameters kept, not the rejected ones
        else:
            self.lr.after_epoch()
        return sse

    @property
    def current_lr(self) -> float:
        return self.lr.rate

    @property
    def current_adaptive(self) -> bool:
        """Whether the coming unit takes AdaGrad steps."""
        return self.lr.adaptive


class SGDTrainer(Trainer):
    """Blocked SGD. Ratings are shuffled within their blocks once per fit, then sorted by
    user (stable, as LIBMF does); each epoch visits the blocks in a new random stratum
    order and pairing. Reshuffling every epoch was slower and reached the same validation
    RMSE (docs/benchmarks.md, "Rating order")."""

    backends = BACKENDS

    def __init__(self, *args):
        from recsys.kernels.cpu.blocks import shuffle_and_sort_blocks

        super().__init__(*args)
        r = self.ratings
        self.block_sse = np.zeros(r.grid * r.grid, dtype=np.float64)
        self.accumulators = None
        if self.lr.adaptive:  # AdaGrad from the first epoch: G and H of every row, from 1
            self.accumulators = tuple(np.ones(n, dtype=self.dtype) for n in (
                len(self.bu), len(self.bi), len(self.bu), len(self.bi)))
        if r.sgd_order != self.config.seed:  # not put in this order by an earlier fit
            shuffle_and_sort_blocks(r.users, r.items, r.values, r.block_ptr,
                                    self.config.seed, 0)
            r.sgd_order = self.config.seed

    def new_schedule(self) -> LearningRate:
        """The schedule with its warm-up (AdaGrad epochs first), which only SGD has."""
        from recsys.training.schedule import warmup_run

        c = self.config
        return LearningRate(c.lr, c.lr_schedule, c.lr_decay,
                            warmup_run("sgd", c.lr_schedule, c.warmup_epochs), c.warmup_lr)

    def skip(self, units: int) -> None:
        """Move the random generator and the schedule past ``units`` epochs run before (a
        fit continued from a checkpoint of its arrays); not for the bold driver, whose
        rates depend on the losses."""
        from recsys.training.strata import draw_order

        if self.lr.needs_loss:
            raise ValueError("a fit with lr_schedule 'bold' cannot continue from a checkpoint")
        for _ in range(units):
            draw_order(self.rng, self.ratings.grid)
            self.lr.after_epoch()

    def epoch(self, unit: int, lr) -> float:
        from recsys.training.strata import draw_order

        shifts, cols = draw_order(self.rng, self.ratings.grid)
        reg = self.dtype(self.config.warmup_reg) if self.lr.warming else self.reg
        return self.backend.sgd_epoch(self.ratings, shifts, cols, self.factors, lr, reg,
                                      self.reg_bias, self.block_sse,
                                      self.accumulators if self.lr.adaptive else None)

    def arrays(self):
        extra = () if self.accumulators is None else self.accumulators
        return (*self.factors.arrays(), *extra)


class GDTrainer(Trainer):
    def epoch(self, unit: int, lr) -> float:
        from recsys.kernels.cpu.gd import gd_epoch

        return float(gd_epoch(self.users, self.items, self.values, self.mu, self.bu, self.bi,
                              self.P, self.Q, lr, self.reg, self.reg_bias))


class FunkTrainer(Trainer):
    """Unit f trains feature f; P and Q columns start at 0 and get their initial values
    (drawn up front, so the model does not depend on where training stops) when their
    feature starts. Predictions are clipped to the training ratings' range."""

    def __init__(self, *args):
        super().__init__(*args)
        self.init_P, self.init_Q = self.P.copy(), self.Q.copy()
        self.P[...] = 0
        self.Q[...] = 0
        self.lo = self.dtype(self.values.min())
        self.hi = self.dtype(self.values.max())
        self.cache = np.zeros(len(self.values), dtype=self.dtype)

    @property
    def n_units(self) -> int:
        return int(self.config.n_factors)

    def run_unit(self, unit: int) -> float:
        from recsys.kernels.cpu.funk import funk_commit, funk_pass

        f = unit
        self.P[:, f] = self.init_P[:, f]
        self.Q[:, f] = self.init_Q[:, f]
        self.lr = self.new_schedule()
        sse = 0.0
        for _ in range(int(self.config.n_epochs)):
            if self.lr.needs_loss:
                saved = self.snapshot()
            sse = funk_pass(self.users, self.items, self.values, self.cache, f, self.mu,
                            self.bu, self.bi, self.P, self.Q, self.dtype(self.lr.rate),
                            self.reg, self.reg_bias, self.lo, self.hi)
            if not self.lr.after_epoch(sse if self.lr.needs_loss else None):
                self.restore(saved)
        funk_commit(self.users, self.items, self.cache, f, self.P, self.Q)
        return float(sse)


class SVDppTrainer(Trainer):
    """SVD++: trains the raw user factors p_u (``self.p``), the implicit item factors Y and
    the biases and Q; after every epoch the user factors P receive
    z_u = p_u + |N(u)|^(-1/2) Σ_{j∈N(u)} y_j.

    So the fitted model has exactly the plain form mu + b_u + b_i + z_u·q_i, and predict,
    recommend, validation, persistence and serving need nothing new. Y is not kept: a user
    folded in later (``recsys.models.foldin``) gets a plain p_u, without implicit feedback.
    N(u) is the user's training ratings. Y starts like Q (normal, ``init_std``, drawn after
    P and Q) and is regularized by ``reg_implicit``.
    """

    def __init__(self, *args):
        from recsys.kernels.cpu.svdpp import fold_implicit, group_by_user

        super().__init__(*args)  # p, Y and the ratings grouped by user: checked by the loop
        self.users, self.items, self.values, self.indptr = group_by_user(
            self.users, self.items, self.values, len(self.bu))
        self.p = self.P.copy()
        self.Y = self.rng.normal(0.0, self.config.init_std, self.Q.shape).astype(self.dtype)
        self.reg_y = self.dtype(self.config.reg_implicit)
        fold_implicit(self.indptr, self.items, self.p, self.Y, self.P)

    def arrays(self):
        return (self.bu, self.bi, self.p, self.Q, self.Y, self.P)

    def _loss(self, reg, reg_bias, reg_y) -> float:
        from recsys.kernels.cpu.svdpp import loss

        return float(loss(self.items, self.values, self.indptr, self.mu, self.bu, self.bi,
                          self.p, self.Q, self.Y, reg, reg_bias, reg_y))

    def loss(self) -> float:
        return self._loss(self.reg, self.reg_bias, self.reg_y)

    def squared_error(self) -> float:
        return self._loss(0.0, 0.0, 0.0)

    def epoch(self, unit: int, lr) -> float:
        from recsys.kernels.cpu.svdpp import fold_implicit, svdpp_epoch

        sse = svdpp_epoch(self.users, self.items, self.values, self.indptr, self.config.seed,
                          unit, self.mu, self.bu, self.bi, self.p, self.Q, self.Y,
                          lr, self.reg, self.reg_bias, self.reg_y)
        fold_implicit(self.indptr, self.items, self.p, self.Y, self.P)
        return float(sse)


class RankingTrainer(Trainer):
    """The ranking objective (``recsys.kernels.cpu.wals``): one epoch is ``cg_steps``
    conjugate-gradient steps on every user's row, then on every item's.

    The ratings' values are the confidences c of the chosen pairs (target 1); every other
    pair has target 0 and weight ``unobserved_weight``. mu and the biases stay 0 (learned
    biases lowered NDCG@10 on MovieLens 100k from 0.409 to 0.381), so the score is p·q.
    Each row's regularization scales with the total weight of its loss terms,
    λ_r = reg · (Σ_{O(r)} c + w0 · n_other), so one value suits light and heavy users and
    data sets of any size (Rendle et al., "Revisiting the performance of iALS", 2021).
    There is no learning rate: each step is the exact line minimum along its direction.
    """

    def __init__(self, *args):
        from recsys.kernels.cpu.svdpp import group_by_user

        super().__init__(*args)
        r = self.ratings
        conf = r.values.astype(np.float64)
        n_users, n_items = len(self.bu), len(self.bi)
        self.factors.mu = self.mu = self.dtype(0)
        self.w0 = float(self.config.unobserved_weight)
        order = np.arange(len(r), dtype=np.int64)
        _, self.u_cols, u_order, self.u_ptr = group_by_user(r.users, r.items, order, n_users)
        _, self.i_cols, i_order, self.i_ptr = group_by_user(r.items, r.users, order, n_items)
        self.u_conf, self.i_conf = conf[u_order], conf[i_order]
        reg = float(self.config.reg)
        self.lam_u = reg * (np.bincount(r.users, conf, n_users) + self.w0 * n_items)
        self.lam_i = reg * (np.bincount(r.items, conf, n_items) + self.w0 * n_users)

    @property
    def current_lr(self):
        return None

    @property
    def current_adaptive(self) -> bool:
        return False

    def run_unit(self, unit: int) -> float:
        from recsys.kernels.cpu.wals import cg_rows, chosen_squared_error, gramian

        steps = int(self.config.cg_steps)
        cg_rows(self.u_ptr, self.u_cols, self.u_conf, self.P, self.Q, gramian(self.Q),
                self.w0, self.lam_u, steps)
        cg_rows(self.i_ptr, self.i_cols, self.i_conf, self.Q, self.P, gramian(self.P),
                self.w0, self.lam_i, steps)
        return float(chosen_squared_error(self.u_ptr, self.u_cols, self.P, self.Q))


#: Trainers by name: the ``method`` of a TrainConfig.
TRAINERS = {"sgd": SGDTrainer, "gd": GDTrainer, "funk": FunkTrainer, "svdpp": SVDppTrainer,
            "ials": RankingTrainer}


def _check_backend(cls, config: TrainConfig) -> None:
    if config.backend not in cls.backends:
        raise ValueError(f"backend {config.backend!r} trains method sgd only, not "
                         f"{config.method!r}")


def make_trainer(config: TrainConfig, ratings: GroupedRatings, factors: Factors,
                 rng: np.random.Generator, backend=None) -> Trainer:
    """The trainer named by ``config.method``, on ``backend`` or else the backend
    ``config.backend`` (made here, seeded by ``config.seed``; DeviceError where it cannot
    run)."""
    try:
        cls = TRAINERS[config.method]
    except KeyError:
        raise ValueError(f"unknown training method {config.method!r}; known: "
                         f"{', '.join(TRAINERS)}") from None
    _check_backend(cls, config)
    if backend is None:
        backend = get_backend(config.backend, config.seed)
    elif cls is not SGDTrainer:
        raise ValueError(f"backend {backend.name!r} trains method sgd only, not "
                         f"{config.method!r}")
    return cls(config, ratings, factors, rng, backend)
