"""The training variants of FunkSVD: what one unit of training (an epoch) does per method.

``FunkSVD.fit`` owns the loop (reporting, divergence, early stopping); a trainer here runs
one unit and returns its training sum of squared errors.

* ``sgd`` (default): one epoch of blocked, shuffled SGD (``recsys.kernels.cpu.sgd``).
* ``gd``: one full-batch gradient step on J (``recsys.kernels.cpu.gd``).
* ``funk``: one *feature*, trained for ``n_epochs`` passes (``recsys.kernels.cpu.funk``);
  the loop then runs ``n_factors`` units, and early stopping picks the number of features.
* ``svdpp``: one epoch of SVD++ (``recsys.kernels.cpu.svdpp``), user by user; the implicit
  part is folded into the user factors after every epoch (see ``SVDppTrainer``).

The learning-rate schedule (``recsys.training.schedule``) advances per epoch for sgd, gd and svdpp,
and per pass (restarting at each feature) for funk. For the bold driver the loss compared
is J (``recsys.kernels.cpu.sgd.loss``) for sgd and gd, SVD++'s J (``recsys.kernels.cpu.svdpp.loss``)
for svdpp, and the pass's Σ e² for funk; a rejected epoch is undone by restoring the
parameters it started from.
"""

from __future__ import annotations

import numpy as np

from recsys.models.defaults import METHODS  # noqa: F401  (sgd, funk, gd, svdpp; kept here too)
from recsys.training.schedule import LearningRate

#: Ratings are shuffled within their blocks once per fit, then sorted by user (stable, as
#: LIBMF does); each epoch visits the blocks in a new random order and pairing. Reshuffling
#: every epoch is slower and reached the same validation RMSE (docs/benchmarks.md, "Rating
#: order").
SHUFFLE_EACH_EPOCH = False


class Trainer:
    """Holds the arrays being trained: bu, bi, P, Q (updated in place)."""

    def __init__(self, model, users, items, values, mu, bu, bi, P, Q, rng, dtype):
        self.model = model
        self.users, self.items, self.values = users, items, values
        self.mu, self.bu, self.bi, self.P, self.Q = mu, bu, bi, P, Q
        self.rng = rng
        self.dtype = dtype
        self.reg = dtype(model.reg_)
        self.reg_bias = dtype(model.reg_ if model.reg_bias is None else model.reg_bias)
        self.lr = self.new_schedule()

    def new_schedule(self) -> LearningRate:
        m = self.model
        return LearningRate(m.lr, m.lr_schedule, m.lr_decay)

    @property
    def n_units(self) -> int:
        return int(self.model.n_epochs)

    def arrays(self):
        return (self.bu, self.bi, self.P, self.Q)

    def snapshot(self):
        return tuple(a.copy() for a in self.arrays())

    def restore(self, saved) -> None:
        for target, source in zip(self.arrays(), saved, strict=True):
            target[...] = source

    def loss(self) -> float:
        from recsys.kernels.cpu.sgd import loss

        return float(loss(self.users, self.items, self.values, self.mu, self.bu, self.bi,
                          self.P, self.Q, self.reg, self.reg_bias))

    def squared_error(self) -> float:
        from recsys.kernels.cpu.sgd import loss

        return float(loss(self.users, self.items, self.values, self.mu, self.bu, self.bi,
                          self.P, self.Q, 0.0, 0.0))

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


class SGDTrainer(Trainer):
    def __init__(self, *args, grid, block_ptr, seed):
        from recsys.kernels.cpu.sgd import shuffle_blocks, sort_blocks_by_user

        super().__init__(*args)
        self.grid, self.block_ptr, self.seed = grid, block_ptr, seed
        self.block_sse = np.zeros(grid * grid, dtype=np.float64)
        if not SHUFFLE_EACH_EPOCH:
            shuffle_blocks(self.users, self.items, self.values, block_ptr, seed, 0)
            sort_blocks_by_user(self.users, self.items, self.values, block_ptr)

    def epoch(self, unit: int, lr) -> float:
        import numba

        from recsys.kernels.cpu.sgd import sgd_epoch_blocked

        shifts = self.rng.permutation(self.grid).astype(np.int64)
        cols = self.rng.permutation(self.grid).astype(np.int64)
        sgd_epoch_blocked(self.users, self.items, self.values, self.block_ptr, self.grid,
                          shifts, cols, SHUFFLE_EACH_EPOCH, self.seed, unit, self.mu, self.bu,
                          self.bi, self.P, self.Q, lr, self.reg, self.reg_bias, self.block_sse,
                          numba.get_num_threads())
        return float(self.block_sse.sum())


class GDTrainer(Trainer):
    def epoch(self, unit: int, lr) -> float:
        from recsys.kernels.cpu.gd import gd_epoch

        return float(gd_epoch(self.users, self.items, self.values, self.mu, self.bu, self.bi,
                              self.P, self.Q, lr, self.reg, self.reg_bias))


class FunkTrainer(Trainer):
    """Unit f trains feature f; P and Q columns start at 0 and get their initial values
    (drawn up front, so the model does not depend on where training stops) when their
    feature starts."""

    def __init__(self, *args, lo, hi):
        super().__init__(*args)
        self.init_P, self.init_Q = self.P.copy(), self.Q.copy()
        self.P[...] = 0
        self.Q[...] = 0
        self.lo, self.hi = self.dtype(lo), self.dtype(hi)
        self.cache = np.zeros(len(self.values), dtype=self.dtype)

    @property
    def n_units(self) -> int:
        return int(self.model.n_factors)

    def run_unit(self, unit: int) -> float:
        from recsys.kernels.cpu.funk import funk_commit, funk_pass

        f = unit
        self.P[:, f] = self.init_P[:, f]
        self.Q[:, f] = self.init_Q[:, f]
        self.lr = self.new_schedule()
        sse = 0.0
        for _ in range(int(self.model.n_epochs)):
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
    the biases and Q; after every epoch the model's user factors P receive
    z_u = p_u + |N(u)|^(-1/2) Σ_{j∈N(u)} y_j.

    So the fitted model has exactly the plain form mu + b_u + b_i + z_u·q_i, and predict,
    recommend, validation, persistence and serving need nothing new. Y is not kept: a user
    folded in later (``recsys.models.foldin``) gets a plain p_u, without implicit feedback.
    N(u) is the user's training ratings. Y starts like Q (normal, ``init_std``) and is
    regularized by ``reg_implicit`` (None: ``reg``).
    """

    def __init__(self, *args, seed):
        from recsys.kernels.cpu.svdpp import fold_implicit, group_by_user
        from recsys.training.resources import ensure_memory

        super().__init__(*args)
        # beyond what FunkSVD.fit checked: p and Y, and the ratings grouped by user
        ensure_memory(self.P.nbytes + self.Q.nbytes + len(self.values) * 12
                      + len(self.bu) * 8, "the SVD++ factors and ratings grouped by user")
        self.seed = seed
        self.users, self.items, self.values, self.indptr = group_by_user(
            self.users, self.items, self.values, len(self.bu))
        self.p = self.P.copy()
        self.Y = self.rng.normal(0.0, self.model.init_std, self.Q.shape).astype(self.dtype)
        reg_y = self.model.reg_implicit
        self.reg_y = self.dtype(self.model.reg_ if reg_y is None else reg_y)
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

        sse = svdpp_epoch(self.users, self.items, self.values, self.indptr, self.seed, unit,
                          self.mu, self.bu, self.bi, self.p, self.Q, self.Y, lr, self.reg,
                          self.reg_bias, self.reg_y)
        fold_implicit(self.indptr, self.items, self.p, self.Y, self.P)
        return float(sse)
