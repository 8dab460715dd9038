"""The client's side of a distributed fit: a training backend (``recsys.training.backends``)
that the one training loop drives, with the work done by ``BlockWorker`` actors.

On the first epoch (or snapshot) the backend splits the grid's user blocks between the
client's workers (``recsys.distributed.layout``), starts one actor per worker and sends
each its ratings (already shuffled and sorted by the trainer, as in the in-process fit),
its P rows and user biases, and the item blocks it starts with. Per epoch the client
sends each actor the stratum order (two permutations of the grid) and gets back the Σ e²
of its blocks, summed in block order as the CPU backend sums them. Item blocks move
worker to worker (``recsys.distributed.actor``); the client sees them only when the loop
asks for the host arrays: validation RMSE (the whole P and Q come back, once per epoch),
the bold driver's loss, and the end of the fit. Snapshots for early stopping stay on the
workers. ``bytes_sent`` holds the bytes of item blocks that went between workers in each
epoch, ``bytes_predicted`` those its stratum order sends (``recsys.distributed.traffic``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import weakref

import numpy as np

from recsys.distributed.layout import Layout, local_indices
from recsys.distributed.resources import check_share, share_bytes
from recsys.distributed.traffic import predicted_bytes

log = logging.getLogger(__name__)
#: Seconds any one wait on the cluster may take (an epoch, loading the data).
TIMEOUT = 3600.0
#: Times one epoch is run again after a worker is lost (with a checkpoint).
RETRIES = 3


class DaskBackend:
    """Blocked SGD on the workers of a ``distributed.Client``; ``timeout``: seconds per
    wait; ``n_workers``: use only the first n workers (by address)."""

    name = "dask"

    def __init__(self, client, timeout: float | None = TIMEOUT, n_workers: int | None = None,
                 source=None, seed: int = 0, checkpoint=None, resume: bool = False):
        self.client = client
        self.resume = resume  # continue from the checkpoint (a fit whose client died)
        self.resume_epoch = 0
        self.sse: list[float] = []  # Σ e² of every epoch, kept with the checkpoint
        self.history: list[dict] = []  # what the loop reported of each epoch
        self.fingerprint: dict = {}
        self.checkpoint = None if checkpoint is None else str(checkpoint)
        self.source = source  # a Partition the workers read their blocks from
        self.seed = seed
        self.seen = None  # with a source: the training items of every user, at the end
        self.timeout = timeout
        self.n_workers = n_workers
        self.actors, self.futures = [], []  # the BlockWorker actors and their futures
        self.layout: Layout | None = None
        self.epoch = 0
        self.stale = False
        self.bytes_sent: list[int] = []
        self.bytes_predicted: list[int] = []  # from the stratum order alone
        self.ratings_held: list[int] = []  # by each worker
        self.worker_stats: list[dict] = []  # ``BlockWorker.stats`` of each, at the end
        self.ready = False  # the workers hold their shares
        self.n_jobs = None
        self._token = 0

    # ------------------------------------------------------------------- life cycle

    @contextlib.contextmanager
    def workers(self, n_jobs: int | None):
        """The enclosed training runs on the cluster, ``n_jobs`` threads per worker (None:
        each worker's own count); the actors go when it ends."""
        self.n_jobs = n_jobs
        try:
            yield
        finally:
            self.close()

    def _workers(self) -> dict:
        """The scheduler's record of every worker (address -> nthreads, memory, ...)."""
        try:
            return self.client.scheduler_info(n_workers=-1)["workers"]
        except TypeError:  # older versions take no n_workers and list every worker
            return self.client.scheduler_info()["workers"]

    def addresses(self) -> list[str]:
        info = self._workers()
        found = sorted(info)
        if not found:
            from recsys.errors import ResourceError

            raise ResourceError("the Dask cluster has no workers")
        return found[: self.n_workers] if self.n_workers else found

    def start(self, grouped, factors, accumulators, restart_from=None) -> None:
        """Start the actors and send each worker its share (see the module docstring):
        the arrays from the host, or from the checkpoint folder ``restart_from``."""
        from recsys.distributed.actor import BlockWorker

        grid = grouped.grid
        addresses = self.addresses()
        if self.source is not None:
            m = self.source.manifest
            layout = Layout(grid, max(1, min(len(addresses), grid)),
                            np.asarray(m["user_bounds"], dtype=np.int64),
                            np.asarray(m["item_bounds"], dtype=np.int64))
        else:
            layout = Layout.build(grouped.user_block, grouped.item_block, grid,
                                  len(addresses))
        addresses = addresses[: layout.n_workers]
        threads = self._workers()
        adaptive = accumulators is not None
        self.layout, self.adaptive = layout, adaptive
        counts = np.diff(self.source.block_ptr() if self.source is not None
                         else grouped.block_ptr)
        for w, address in enumerate(addresses):
            first, last = layout.user_blocks(w)
            check_share(address, threads[address], share_bytes(
                layout, w, int(counts[first * grid: last * grid].sum()),
                factors.user_factors.shape[1], factors.user_factors.itemsize, adaptive,
                from_files=self.source is not None))
        for w, address in enumerate(addresses):
            n = int(threads[address].get("nthreads", 1))
            n = min(n, int(self.n_jobs)) if self.n_jobs else n
            self.futures.append(self.client.submit(
                BlockWorker, w, layout, factors.mu, n, adaptive, actor=True,
                workers=[address], allow_other_workers=False, pure=False))
        self.actors = [f.result(timeout=self.timeout) for f in self.futures]
        arrays = (*factors.arrays(), *(accumulators or ()))
        calls, loads = [], []
        users, items, values, block_ptr = (grouped.users, grouped.items, grouped.values,
                                           grouped.block_ptr)
        for w, actor in enumerate(self.actors):
            rows = () if restart_from is not None else self._user_rows(w, arrays)
            if self.source is not None:
                loads.append(actor.load_partition(str(self.source.folder),
                                                  self.source.manifest, self.seed, rows))
            else:
                first, last = layout.user_blocks(w)
                ptr = block_ptr[first * grid: last * grid + 1]
                lo, hi = int(ptr[0]), int(ptr[-1])
                local_users, local_items = local_indices(layout, users[lo:hi], items[lo:hi],
                                                         ptr - lo, first, last)
                loads.append(actor.load(local_users, local_items, values[lo:hi], ptr - lo,
                                        rows))
            calls.append(actor.set_peers(self.actors))
        self.ratings_held = [call.result(timeout=self.timeout) for call in loads]
        for w, actor in enumerate(self.actors):
            calls.append(actor.read_checkpoint(str(restart_from)) if restart_from is not None
                         else actor.put_items(self._item_blocks(w, arrays)))
        for call in calls:
            call.result(timeout=self.timeout)
        if self.checkpoint is not None and restart_from is None:  # epoch 0: the start
            from recsys.distributed.checkpoint import clear, commit, epoch_folder

            clear(self.checkpoint)
            folder = str(epoch_folder(self.checkpoint, self.epoch))
            for call in [actor.write_checkpoint(folder) for actor in self.actors]:
                call.result(timeout=self.timeout)
            commit(self.checkpoint, self.epoch)
        self.ready = True
        log.info("distributed fit: %d workers, %d user blocks each (at most)",
                 layout.n_workers, -(-grid // layout.n_workers))

    def _user_rows(self, w: int, arrays) -> tuple:
        """Worker ``w``'s P rows and user biases (and G_u, H_u) from the host ``arrays``
        (b_u, b_i, P, Q[, G_u, G_i, H_u, H_i])."""
        u0, u1 = self.layout.user_rows(w)
        rows = (arrays[2][u0:u1].copy(), arrays[0][u0:u1].copy())
        if self.adaptive:
            rows += (arrays[4][u0:u1].copy(), arrays[6][u0:u1].copy())
        return rows

    def _item_blocks(self, w: int, arrays) -> dict:
        """The item blocks worker ``w`` holds between epochs, when they come from the host:
        those numbered as its user blocks."""
        blocks = {}
        for c in range(*self.layout.user_blocks(w)):
            lo, hi = self.layout.item_rows(c)
            payload = (arrays[3][lo:hi].copy(), arrays[1][lo:hi].copy())
            if self.adaptive:
                payload += (arrays[5][lo:hi].copy(), arrays[7][lo:hi].copy())
            blocks[c] = payload
        return blocks

    def _push(self, arrays) -> None:
        """Replace the workers' arrays with the host ``arrays``."""
        calls = [actor.reset(self._user_rows(w, arrays), self._item_blocks(w, arrays))
                 for w, actor in enumerate(self.actors)]
        for call in calls:
            call.result(timeout=self.timeout)
        self.stale = False

    def close(self) -> None:
        if self.source is not None and self.ready:
            self.seen = self._gather_seen()
        self.ready, self.worker_stats = False, []
        for actor in self.actors:
            with contextlib.suppress(Exception):
                self.worker_stats.append(actor.close().result(timeout=10))
        with contextlib.suppress(Exception):
            self.client.cancel(self.futures)
        self.actors, self.futures = [], []

    def _gather_seen(self):
        """The seen-items CSR of all users, from the workers' parts."""
        parts = [call.result(timeout=self.timeout)
                 for call in [actor.seen_items() for actor in self.actors]]
        indptr, indices, offset = [np.zeros(1, dtype=np.int64)], [], 0
        for _, (ptr, idx) in sorted(parts, key=lambda p: p[0]):
            indptr.append(ptr[1:] + offset)
            indices.append(idx)
            offset += len(idx)
        n_users = int(self.layout.user_bounds[-1])
        indptr = np.concatenate(indptr)
        if len(indptr) < n_users + 1:  # users after the last worker's range: none
            indptr = np.concatenate([indptr, np.full(n_users + 1 - len(indptr), offset)])
        return indptr, np.concatenate(indices).astype(np.int32)

    # ------------------------------------------------------------------------ epochs

    def sgd_epoch(self, grouped, shifts: np.ndarray, cols: np.ndarray, factors, lr, reg,
                  reg_bias, block_sse: np.ndarray, accumulators=None) -> float:
        """One epoch on the workers in the stratum order (shifts, cols); returns Σ e²."""
        from recsys.distributed.checkpoint import commit, epoch_folder

        if not self.actors:
            restart = None
            if self.resume_epoch:
                self.epoch = self.resume_epoch
                restart = epoch_folder(self.checkpoint, self.epoch)
            try:
                self.start(grouped, factors, accumulators, restart)
            except (OSError, RuntimeError) as exc:  # a worker lost while it loaded
                from recsys.errors import ClusterError

                raise ClusterError(f"a Dask worker was lost while it loaded its share of the "
                                   f"fit ({_brief(exc)}); if its memory limit ended it, use "
                                   "more workers or a larger --worker-memory") from None
        self.epoch += 1
        folder = None
        if self.checkpoint is not None:
            folder = str(epoch_folder(self.checkpoint, self.epoch))
        for attempt in range(RETRIES + 1):
            calls = [actor.run_epoch(self.epoch, shifts, cols, lr, reg, reg_bias, folder)
                     for actor in self.actors]
            try:
                results = self._results(calls)
                break
            except (OSError, RuntimeError) as exc:  # a worker lost, or out of time
                self.stale = True
                if self.checkpoint is None or attempt == RETRIES:
                    from recsys.errors import ClusterError

                    hint = "" if self.checkpoint else "; --checkpoint DIR lets a fit recover"
                    raise ClusterError(f"a Dask worker was lost in epoch {self.epoch} "
                                       f"({_brief(exc)}){hint}") from None
                self._recover(grouped, factors, accumulators, exc)
        sent, holders = 0, {}
        for w, (sse, nbytes, held) in enumerate(results):
            block_sse[list(sse)] = list(sse.values())
            sent += nbytes
            holders.update(dict.fromkeys(held, w))
        self.sse.append(float(block_sse.sum()))
        if self.checkpoint is not None:
            commit(self.checkpoint, self.epoch, self._state())
        self.bytes_sent.append(sent)
        self.bytes_predicted.append(predicted_bytes(self.layout, shifts, cols, holders, *(
            factors.item_factors.shape[1], factors.item_factors.itemsize, self.adaptive)))
        self.stale = True
        return float(block_sse.sum())

    # ----------------------------------------------------- continuing a fit later

    def _state(self) -> dict:
        return {"fingerprint": self.fingerprint, "sse": self.sse, "history": self.history}

    def note(self, info: dict) -> None:
        """Keep what the loop reported of an epoch with the checkpoint (its history)."""
        self.history.append(info)
        if self.checkpoint is not None and self.epoch:
            from recsys.distributed.checkpoint import commit

            commit(self.checkpoint, self.epoch, self._state())

    def resumed(self, fingerprint: dict, n_ratings: int) -> list:
        """The history of the epochs the checkpoint holds, to continue after (``resume``);
        the fit's ``fingerprint`` (its parameters and data) must be the checkpoint's."""
        from recsys.distributed.checkpoint import latest
        from recsys.errors import TrainingError

        self.fingerprint = fingerprint
        if not self.resume:
            return []
        state = latest(self.checkpoint) if self.checkpoint is not None else None
        if not state or not state.get("epoch"):
            raise TrainingError(f"nothing to resume: {self.checkpoint} holds no epoch of a fit")
        if state.get("fingerprint") != fingerprint:
            raise TrainingError(f"{self.checkpoint} holds a fit of other parameters or "
                                "data; resume with the same ones")
        epoch = int(state["epoch"])
        self.sse, self.history = list(state["sse"][:epoch]), list(state["history"][:epoch])
        for e in range(len(self.history), epoch):  # reported after the last checkpoint
            self.history.append({"epoch": e + 1, "valid_rmse": None, "seconds": None,
                                 "train_rmse": math.sqrt(self.sse[e] / n_ratings),
                                 "lr": None})
        self.resume_epoch = epoch
        log.warning("resuming the fit after epoch %d from %s", epoch, self.checkpoint)
        return list(self.history)

    def _results(self, calls) -> list:
        """The results of actor calls in flight together, raising the first failure as soon
        as it is known (a worker waiting for a lost one's item block would hold the others
        up until the timeout); a pause is a wait on one call, over as soon as it is done."""
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        results, pending, pause = [None] * len(calls), list(range(len(calls))), 0.001
        while pending:
            waiting = []
            for i in pending:
                if calls[i].done():
                    results[i] = calls[i].result()
                else:
                    waiting.append(i)
            pending = waiting
            if pending:
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"no answer from a worker in {self.timeout:g} s")
                with contextlib.suppress(TimeoutError):
                    calls[pending[0]].result(timeout=pause)
                pause = min(2 * pause, 0.02)
        return results

    def _recover(self, grouped, factors, accumulators, exc) -> None:
        """Start again on the workers there are now, from the last checkpoint (the state
        at the start of the epoch that failed), so that the epoch runs again."""
        from recsys.distributed.checkpoint import epoch_folder, latest

        for actor in self.actors:
            with contextlib.suppress(Exception):
                actor.abort().result(timeout=5)
        with contextlib.suppress(Exception):
            self.client.cancel(self.futures)
        self.actors, self.futures, self.ready = [], [], False
        done = latest(self.checkpoint)["epoch"]
        self.client.wait_for_workers(1, timeout=self.timeout)
        self.start(grouped, factors, accumulators, epoch_folder(self.checkpoint, done))
        log.warning("a Dask worker was lost in epoch %d (%s); epoch %d runs again from the "
                    "checkpoint of epoch %d on %d workers", self.epoch, _brief(exc),
                    self.epoch, done, self.layout.n_workers)

    # ------------------------------------------------- the arrays and their copies

    def to_host(self, arrays) -> None:
        """Copy the workers' arrays into ``arrays`` (b_u, b_i, P, Q[, G_u, G_i, H_u,
        H_i])."""
        if not self.actors or not self.stale:
            return
        bu, bi, P, Q = arrays[:4]
        extra = arrays[4:]
        for call in [actor.arrays() for actor in self.actors]:
            u0, rows, held = call.result(timeout=self.timeout)
            u1 = u0 + len(rows[0])
            P[u0:u1], bu[u0:u1] = rows[0], rows[1]
            if extra:
                extra[0][u0:u1], extra[2][u0:u1] = rows[2], rows[3]
            for c, payload in held.items():
                lo, hi = self.layout.item_rows(c)
                Q[lo:hi], bi[lo:hi] = payload[0], payload[1]
                if extra:
                    extra[1][lo:hi], extra[3][lo:hi] = payload[2], payload[3]
        if extra or not self.adaptive:
            self.stale = False

    def snapshot(self, arrays):
        """A copy of the arrays kept on the workers: a handle that drops it when freed
        (with a checkpoint, a copy on the host, which outlives any worker)."""
        if not self.actors or self.checkpoint is not None:
            self.to_host(arrays)  # before the first epoch the host arrays are the state
            return tuple(a.copy() for a in arrays)
        self._token += 1
        token = self._token
        for call in [actor.snapshot(token) for actor in self.actors]:
            call.result(timeout=self.timeout)
        return _Snapshot(token, self.actors)

    def restore(self, arrays, saved) -> None:
        if isinstance(saved, tuple):  # taken before the workers started
            for target, source in zip(arrays, saved, strict=True):
                target[...] = source
            if self.actors:
                self._push(arrays)
            return
        for call in [actor.restore(saved.token) for actor in self.actors]:
            call.result(timeout=self.timeout)
        self.stale = True

    def rmse(self, factors, users, items, values, lo: float, hi: float) -> float:
        self.to_host(factors.arrays())
        return factors.rmse(users, items, values, lo, hi)


def _brief(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:200]


class _Snapshot:
    """A snapshot kept on the workers under ``token``; dropped there when this is freed."""

    def __init__(self, token: int, actors: list):
        self.token = token
        weakref.finalize(self, _drop, list(actors), token)


def _drop(actors: list, token: int) -> None:
    for actor in actors:
        with contextlib.suppress(Exception):
            actor.drop(token)
