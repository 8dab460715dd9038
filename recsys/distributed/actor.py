"""The state one worker keeps for a whole distributed fit, and the epoch it runs.

A ``BlockWorker`` (a Dask actor) holds the ratings of its user blocks grouped block by
block, with users and items as rows local to their ranges (``recsys.distributed.layout``),
its P rows and user biases, and the item blocks (Q rows and item biases, and with AdaGrad
their accumulators) that are with it between strata. In an epoch each of its user blocks
runs its strata in order: it waits for the item block it meets, runs the block with the
CPU kernel (``recsys.kernels.cpu.sgd``, the in-process fit's update rule) on a thread
pool, and hands the item block to the worker whose user block meets it next, directly,
worker to worker. Nothing goes through the scheduler within an epoch; a block waits only
for its own item block, as the in-process threads do, so every user block and item block
meets its blocks in stratum order and the arithmetic is the in-process fit's. A worker
that owns every user block (a fit on one worker) runs each epoch in one call into the
in-process kernel instead (``recsys.distributed.whole``).
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from recsys.distributed import whole
from recsys.distributed.layout import Layout, local_indices, meets, partner

#: Seconds a worker waits for one item block before it gives the epoch up (its peer or
#: the client was lost and nothing ended the wait).
BLOCK_WAIT = 3600.0


def payload_bytes(payload) -> int:
    return int(sum(a.nbytes for a in payload))


class BlockWorker:
    """Worker ``index`` of ``layout``: see the module docstring. ``mu``: the global mean,
    of the factors' dtype; ``threads``: blocks run at once; ``adaptive``: AdaGrad steps."""

    def __init__(self, index: int, layout: Layout, mu, threads: int, adaptive: bool):
        self.index = index
        self.layout = layout
        self.mu = mu
        self.adaptive = adaptive
        self.first, self.last = layout.user_blocks(index)
        self.u0, self.u1 = layout.user_rows(index)
        self.threads = max(1, int(threads))
        self.pool = ThreadPoolExecutor(self.threads)
        self.whole = whole.applies(layout)  # the whole epoch in one kernel call
        self.joined = None  # (held, the whole arrays its blocks are views of)
        self.fault = None  # (epoch, blocks): see ``fail_after``
        self.epoch_seconds = 0.0  # wall seconds in epochs run block by block
        self.kernel_seconds = 0.0  # of which the pool's threads ran blocks (summed)
        self.held: dict[int, tuple] = {}  # item block -> (Q rows, b_i[, G_i, H_i])
        self.box: dict = {}  # (epoch, stratum, item block) -> payload arrived early
        self.waiting: dict = {}  # same keys -> futures of blocks waited for
        self.snapshots: dict = {}
        self.peers = None
        self._owner = layout.owner

    # -------------------------------------------------------------- loading the state

    def load(self, users, items, values, block_ptr, rows: tuple) -> int:
        """Ratings of this worker's user blocks (local rows; ``block_ptr``: offsets of its
        blocks, row-major from its first user block) and its user arrays (P rows, b_u[,
        G_u, H_u]). Returns the ratings held."""
        if self.whole:  # item rows as indices into the whole Q
            items = items if items.flags.writeable else items.copy()
            whole.globalize_items(self.layout, items, block_ptr)
        self.users, self.items, self.values = users, items, values
        self.block_ptr = block_ptr
        self.rows = tuple(np.ascontiguousarray(a) for a in rows)
        return len(values)

    def load_partition(self, folder, manifest: dict, seed: int, rows: tuple) -> int:
        """Read this worker's blocks of a partition (``recsys.distributed.partition``),
        shuffle and sort them as the in-process fit does its blocks (the streams of their
        numbers in the whole grid), and keep them with the user arrays ``rows``."""
        from recsys.distributed.partition import read_blocks
        from recsys.kernels.cpu.blocks import shuffle_and_sort_blocks
        from recsys.kernels.cpu.predict import seen_csr

        users, items, values, ptr = read_blocks(folder, manifest, self.first, self.last)
        try:
            local_users, local_items = local_indices(self.layout, users, items, ptr,
                                                     self.first, self.last)
        except ValueError as exc:
            from recsys.errors import DataError

            raise DataError(f"damaged partition: {exc}", folder) from None
        self.seen = seen_csr(local_users, items, self.u1 - self.u0)
        del users, items
        shuffle_and_sort_blocks(local_users, local_items, values, ptr, seed, 0,
                                self.first * self.layout.grid)
        return self.load(local_users, local_items, values, ptr, rows)

    def seen_items(self):
        """(first user row, CSR of the training items of this worker's users)."""
        return self.u0, self.seen

    def put_items(self, blocks: dict) -> int:
        """Item blocks to hold before the first epoch."""
        self.held = {**self.held, **blocks}
        return len(self.held)

    def reset(self, rows: tuple, blocks: dict) -> int:
        """Replace the user arrays and the item blocks held (between epochs)."""
        self.rows = tuple(np.ascontiguousarray(a) for a in rows)
        self.held = dict(blocks)
        return len(self.held)

    def set_peers(self, peers: list) -> int:
        self.peers = peers
        return len(peers)

    # -------------------------------------------------------------------- the epoch

    async def receive(self, key, payload) -> None:
        """An item block for (epoch, stratum, block) from a peer."""
        future = self.waiting.pop(key, None)
        if future is not None and not future.done():
            future.set_result(payload)
        else:
            self.box[key] = payload

    async def _wait_for(self, key):
        if key in self.box:
            return self.box.pop(key)
        future = asyncio.get_running_loop().create_future()
        self.waiting[key] = future
        try:
            return await asyncio.wait_for(future, BLOCK_WAIT)
        except TimeoutError:
            self.waiting.pop(key, None)
            raise TimeoutError(f"no item block {key[2]} for stratum {key[1]} of epoch "
                               f"{key[0]} within {BLOCK_WAIT:g} s") from None

    def stats(self) -> dict:
        """What a benchmark reads off the worker: the wall seconds of the epochs it ran
        block by block and the thread seconds its blocks took in them (the rest of an
        epoch is spent waiting for item blocks and handing them on), and the peak
        resident memory of its process, in bytes."""
        import resource

        return {"epoch_seconds": self.epoch_seconds, "kernel_seconds": self.kernel_seconds,
                "threads": self.threads,
                "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}

    async def _send(self, key, payload, c: int, s: int, shifts, cols) -> int:
        """Hand item block ``c`` to the worker meeting it in stratum ``s``, under ``key``;
        returns the bytes sent to another process."""
        owner = int(self._owner[meets(cols, shifts, c, s)])
        if owner == self.index:
            await self.receive(key, payload)
            return 0
        await self.peers[owner].receive(key, payload)
        return payload_bytes(payload)

    def _run_block(self, a: int, c: int, payload, lr, reg, reg_bias) -> float:
        since = time.perf_counter()
        try:
            return self._block_sse(a, c, payload, lr, reg, reg_bias)
        finally:
            self.kernel_seconds += time.perf_counter() - since

    def _block_sse(self, a: int, c: int, payload, lr, reg, reg_bias) -> float:
        from recsys.kernels.cpu.sgd import _adagrad_block, _sgd_block

        grid = self.layout.grid
        b = (a - self.first) * grid + c
        start, end = int(self.block_ptr[b]), int(self.block_ptr[b + 1])
        if self.adaptive:
            P, bu, Gu, Hu = self.rows
            Q, bi, Gi, Hi = payload
            return float(_adagrad_block(self.users, self.items, self.values, start, end,
                                        self.mu, bu, bi, P, Q, lr, reg, reg_bias, Gu, Gi, Hu,
                                        Hi))
        P, bu = self.rows
        Q, bi = payload
        return float(_sgd_block(self.users, self.items, self.values, start, end, self.mu, bu,
                                bi, P, Q, lr, reg, reg_bias))

    async def _user_block(self, epoch: int, a: int, shifts, cols, lr, reg, reg_bias,
                          sse: dict) -> int:
        loop = asyncio.get_running_loop()
        grid = self.layout.grid
        sent = 0
        for s in range(grid):
            c = partner(cols, shifts, a, s)
            payload = await self._wait_for((epoch, s, c))
            sse[a * grid + c] = await loop.run_in_executor(
                self.pool, self._run_block, a, c, payload, lr, reg, reg_bias)
            self._after_block(epoch)
            if s + 1 < grid:
                sent += await self._send((epoch, s + 1, c), payload, c, s + 1, shifts, cols)
            else:
                self.next_held[c] = payload
        return sent

    async def run_epoch(self, epoch: int, shifts, cols, lr, reg, reg_bias,
                        checkpoint: str | None = None):
        """One epoch in the stratum order (shifts, cols): sends the item blocks held to
        the workers that meet them in stratum 0, runs this worker's user blocks, writes
        its blocks to the folder ``checkpoint`` (if given), and returns (Σ e² by block
        number, bytes sent to other workers, the item blocks it held at the start)."""
        if self.whole:
            return await self._whole_epoch(shifts, cols, lr, reg, reg_bias, checkpoint)
        since = time.perf_counter()
        held, self.held, self.next_held = self.held, {}, {}
        sse: dict = {}
        sent = 0
        for c, payload in held.items():
            sent += await self._send((epoch, 0, c), payload, c, 0, shifts, cols)
        counts = await asyncio.gather(*[
            self._user_block(epoch, a, shifts, cols, lr, reg, reg_bias, sse)
            for a in range(self.first, self.last)])
        self.held = self.next_held
        self.epoch_seconds += time.perf_counter() - since  # the checkpoint left out
        if checkpoint is not None:
            await asyncio.get_running_loop().run_in_executor(
                self.pool, self.write_checkpoint, checkpoint)
        return sse, sent + int(sum(counts)), sorted(held)

    async def _whole_epoch(self, shifts, cols, lr, reg, reg_bias, checkpoint):
        """``run_epoch`` of a worker that owns every user block (``whole``)."""
        loop = asyncio.get_running_loop()
        held = sorted(self.held)
        block_sse = await loop.run_in_executor(self.pool, whole.run_epoch, self, shifts,
                                               cols, lr, reg, reg_bias)
        if checkpoint is not None:
            await loop.run_in_executor(self.pool, self.write_checkpoint, checkpoint)
        return dict(enumerate(block_sse.tolist())), 0, held

    def fail_after(self, epoch: int, blocks: int) -> int:
        """Fault injection, for tests of recovery: this worker's process kills itself
        (SIGKILL) once it has run ``blocks`` blocks of epoch ``epoch``, block by block, in
        the middle of the epoch (not for a worker that runs whole epochs)."""
        if self.whole:
            raise ValueError("a worker that runs whole epochs has no block to fail after")
        self.fault = [int(epoch), int(blocks)]
        return int(blocks)

    def _after_block(self, epoch: int) -> None:
        if self.fault is not None and self.fault[0] == epoch:
            self.fault[1] -= 1
            if self.fault[1] <= 0:
                import os
                import signal

                os.kill(os.getpid(), signal.SIGKILL)

    # ------------------------------------------------------------------ checkpoints

    def write_checkpoint(self, folder: str) -> int:
        """Write the rows of this worker's user blocks and the item blocks it holds, one
        file each (``recsys.distributed.checkpoint``); returns the bytes written."""
        from pathlib import Path

        from recsys.distributed.checkpoint import item_file, user_file, write_arrays

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        edges = self.layout.user_bounds
        written = 0
        for a in range(self.first, self.last):
            lo, hi = int(edges[a]) - self.u0, int(edges[a + 1]) - self.u0
            written += write_arrays(user_file(folder, a), [r[lo:hi] for r in self.rows])
        for c, payload in self.held.items():
            written += write_arrays(item_file(folder, c), payload)
        return written

    def read_checkpoint(self, folder: str) -> int:
        """Take this worker's user rows, and the item blocks numbered as its user blocks,
        from a checkpoint's files (written by any layout)."""
        from pathlib import Path

        from recsys.distributed.checkpoint import item_file, read_arrays, user_file

        folder = Path(folder)
        parts = [read_arrays(user_file(folder, a)) for a in range(self.first, self.last)]
        self.rows = tuple(np.ascontiguousarray(np.concatenate([p[j] for p in parts]))
                          for j in range(len(parts[0])))
        self.held = {c: read_arrays(item_file(folder, c)) for c in range(self.first, self.last)}
        return len(self.held)

    async def abort(self) -> None:
        """Give up the epoch in flight (a peer was lost): end every wait, drop the state."""
        for future in self.waiting.values():
            if not future.done():
                future.set_exception(RuntimeError("the epoch was abandoned"))
        self.waiting, self.box, self.held, self.snapshots = {}, {}, {}, {}
        self.rows = ()
        self.users = self.items = self.values = None

    # ------------------------------------------------------ snapshots and gathering

    def snapshot(self, token: int) -> int:
        """Keep a copy of this worker's arrays under ``token`` (between epochs)."""
        self.snapshots[token] = (tuple(a.copy() for a in self.rows),
                                 {c: tuple(a.copy() for a in p) for c, p in self.held.items()})
        return token

    def restore(self, token: int) -> int:
        rows, held = self.snapshots[token]
        for target, source in zip(self.rows, rows, strict=True):
            target[...] = source
        self.held = {c: tuple(a.copy() for a in p) for c, p in held.items()}
        return token

    def drop(self, token: int) -> None:
        self.snapshots.pop(token, None)

    def arrays(self):
        """(first user row, user arrays, held item blocks) for the client."""
        return self.u0, self.rows, self.held

    def close(self) -> dict:
        """Stop the thread pool; returns ``stats()`` as they were at the end."""
        self.pool.shutdown(wait=False)
        return self.stats()
