"""The CPU backend: numba threads run the blocks of each stratum (``recsys.kernels.cpu.sgd``).

Threads claim blocks from an atomic counter and wait only for the blocks that touch the
same rows in the previous stratum (see ``sgd_epoch_blocked``), so the model is bit-identical
for any thread count.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import numpy as np

#: Ratings ahead of the current one at which a block prefetches the row of a user whose
#: run starts there, when the factors outgrow the last-level cache
#: (``recsys.kernels.cpu.prefetch``: 10M ratings, k=128, one thread: 28.7-29.0 ns a rating
#: at 16, 29.6-30.0 at 4, 28.8-29.1 at 32, against 32.0-32.3 without).
PREFETCH_AHEAD = 16
#: The last-level cache assumed where the system does not say (Linux sysfs).
DEFAULT_CACHE_BYTES = 32 << 20


@functools.lru_cache(maxsize=1)
def last_level_cache_bytes() -> int:
    """The size of this CPU's largest cache (cpu0's, from Linux sysfs), else
    ``DEFAULT_CACHE_BYTES``."""
    sizes = []
    for entry in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            text = (entry / "size").read_text().strip()
            units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
            sizes.append(int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text))
        except (OSError, ValueError, IndexError):
            continue
    return max(sizes, default=DEFAULT_CACHE_BYTES)


def prefetch_ahead(factors) -> int:
    """``PREFETCH_AHEAD`` when P and Q together are larger than the last-level cache, else
    0: rows that fit in it arrive in time, and the check costs about 3% (1M ratings)."""
    size = factors.user_factors.nbytes + factors.item_factors.nbytes
    return PREFETCH_AHEAD if size > last_level_cache_bytes() else 0


def item_starts(grouped) -> np.ndarray | None:
    """Where each item block's index range starts (grid + 1 offsets), for the kernel's
    prefetch of a block's item rows; None where the grouping has no item blocks."""
    if grouped.item_block is None:
        return None
    counts = np.bincount(grouped.item_block, minlength=grouped.grid)
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


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
        ahead = prefetch_ahead(factors)
        # (without prefetching, no item ranges: that compiled form ran the 1M epoch on two
        # threads at 12.9 ms where the other took 13.2, 4 alternated fits each)
        sgd_epoch_blocked(users, items, values, block_ptr, grid, shifts, cols, factors.mu,
                          factors.user_bias, factors.item_bias, factors.user_factors,
                          factors.item_factors, lr, reg, reg_bias, block_sse,
                          numba.get_num_threads(), adaptive, *accumulators, ahead,
                          item_starts(grouped) if ahead else None)
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
