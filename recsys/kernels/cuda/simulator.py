"""What numba-cuda's CUDA simulator lacks for the kernels here: warp shuffles.

The simulator (``NUMBA_ENABLE_CUDASIM=1``) runs the blocks of a launch one after another
and each thread of a block as a Python thread; it has no ``shfl_sync`` or
``shfl_xor_sync``. ``add_warp_shuffles`` adds them to its fake ``cuda`` module: each lane
leaves its value in its warp's slots and waits at a barrier of the warp's threads, then
reads the slot of its source lane. Two sets of slots are used in turn, so one barrier per
shuffle is enough: a lane writes a set again only after the next barrier, which every lane
reaches only after reading. As on a GPU, every lane of the warp must take part (the
kernels here shuffle with the full mask, in warp-uniform control flow); a lane that waits
longer than ``TIMEOUT`` seconds fails the kernel instead of hanging.

The simulator's block manager polls its threads in a loop that holds the GIL, which the
waiting lanes then take turns to get; it is made to yield once per thread it polls
(``time.sleep(0)``), which runs the kernels here about three times faster and changes
nothing else.
"""

from __future__ import annotations

import threading
import time

WARP = 32
#: Seconds a lane waits for the rest of its warp at a shuffle.
TIMEOUT = 120.0

_lock = threading.Lock()


class _Warp:
    def __init__(self, size: int):
        self.size = size
        self.barrier = threading.Barrier(size, timeout=TIMEOUT)
        self.slots = ([None] * size, [None] * size)


def _warp_of(thread) -> _Warp:
    manager = thread._manager
    index = thread.thread_id // WARP
    with _lock:
        warps = manager.__dict__.setdefault("_recsys_warps", {})
        if index not in warps:
            threads = 1
            for extent in manager._block_dim:
                threads *= extent
            warps[index] = _Warp(min(WARP, threads - index * WARP))
        return warps[index]


def _exchange(value, source_of):
    thread = threading.current_thread()
    warp = _warp_of(thread)
    lane = thread.thread_id % WARP
    turn = getattr(thread, "_recsys_shuffles", 0) + 1
    thread._recsys_shuffles = turn
    slots = warp.slots[turn % 2]
    slots[lane] = value
    warp.barrier.wait()
    source = source_of(lane)
    return slots[source] if 0 <= source < warp.size else value


def _shfl_sync(self, mask, value, src_lane):
    return _exchange(value, lambda lane: src_lane)


def _shfl_xor_sync(self, mask, value, lane_mask):
    return _exchange(value, lambda lane: lane ^ lane_mask)


def add_warp_shuffles() -> None:
    """Give the simulator ``cuda.shfl_sync`` and ``cuda.shfl_xor_sync`` (idempotent)."""
    from numba.cuda.simulator import kernel, kernelapi

    fake = kernelapi.FakeCUDAModule
    if getattr(fake, "_recsys_shuffles", False):
        return
    fake.shfl_sync = _shfl_sync
    fake.shfl_xor_sync = _shfl_xor_sync
    fake._recsys_shuffles = True
    polled = kernel.BlockThread.is_alive

    def is_alive(self):
        time.sleep(0)  # let a lane waiting for the GIL run
        return polled(self)

    kernel.BlockThread.is_alive = is_alive
