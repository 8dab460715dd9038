"""The CPU backend: numba threads run the blocks of each stratum (``recsys.kernels.cpu.sgd``).

Threads claim blocks from an atomic counter and wait only for the blocks that touch the
same rows in the previous stratum (see ``sgd_epoch_blocked``), so the model is bit-identical
for any thread count.
"""

from __future__ import annotations

import contextlib

import numpy as np


def default_jobs() -> int:
    """Threads used when ``n_jobs`` is None: all that numba was started with."""
    import numba

    return int(numba.config.NUMBA_NUM_THREADS)


class CpuBackend:
    name = "cpu"

    @contextlib.contextmanager
    def workers(self, n_jobs: int | None):
        """Run the enclosed training on ``n_jobs`` threads (None: all), then restore."""
        import numba

        wanted = int(n_jobs or default_jobs())
        previous = numba.get_num_threads()
        numba.set_num_threads(min(wanted, numba.config.NUMBA_NUM_THREADS))
        try:
            yield
        finally:
            numba.set_num_threads(previous)

    def sgd_epoch(self, grouped, shifts: np.ndarray, cols: np.ndarray, factors, lr, reg,
                  reg_bias, block_sse: np.ndarray, accumulators=None) -> float:
        """One epoch of blocked SGD in the stratum order (shifts, cols); returns Σ e².

        ``accumulators`` (Gu, Gi, Hu, Hi): the rows' AdaGrad sums, for adaptive steps.
        """
        import numba

        from recsys.kernels.cpu.sgd import sgd_epoch_blocked

        users, items, values, block_ptr, grid = grouped
        adaptive = accumulators is not None
        if not adaptive:
            none = np.zeros(0, dtype=factors.user_bias.dtype)
            accumulators = (none, none, none, none)
        sgd_epoch_blocked(users, items, values, block_ptr, grid, shifts, cols, factors.mu,
                          factors.user_bias, factors.item_bias, factors.user_factors,
                          factors.item_factors, lr, reg, reg_bias, block_sse,
                          numba.get_num_threads(), adaptive, *accumulators)
        return float(block_sse.sum())

    # the arrays stay on the host: snapshots are copies, and nothing is ever out of date

    def snapshot(self, arrays) -> tuple:
        return tuple(a.copy() for a in arrays)

    def restore(self, arrays, saved) -> None:
        for target, source in zip(arrays, saved, strict=True):
            target[...] = source

    def to_host(self, arrays) -> None:
        pass

    def rmse(self, factors, users, items, values, lo: float, hi: float) -> float:
        return factors.rmse(users, items, values, lo, hi)
