"""One model generation for all the worker processes of ``recsys serve --workers N``.

The workers share a folder (``GenerationStore``, made by the parent process) holding, for
each published generation, a snapshot of the model file's bytes (``model-N.npz``) and one
line in an append-only log (``generations.jsonl``: generation, snapshot, source, sha256,
time). ``publish`` copies the model file, loads and warms the copy completely, and only
then renames it into place and appends its line, under an exclusive lock, so generations
are numbered one after another and a file that does not load publishes nothing.

Each worker holds a ``SharedHolder``. Before answering any request it compares the size of
the log (one ``fstat``: the log only grows) with the size it last read; if the log grew,
it loads the newest generation's snapshot before answering. So once a publish has
returned (the reload answer is sent, or the parent has logged the reload), a request that
any worker starts afterwards is answered from that generation or a newer one, and every
worker loads the same bytes whatever happens to the model file meanwhile. A worker that
cannot load a published snapshot refuses requests (503) rather than answer from an older
generation. No web framework is imported here.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

from recsys.errors import ModelError
from recsys.serving.engine import ModelHolder, Served, load_served, settle

LOG, PUBLISH_LOCK, LOG_LOCK = "generations.jsonl", "publish.lock", "log.lock"
KEEP = 2  # snapshots kept: the newest and the one before (a worker may be loading it)


class GenerationStore:
    """The folder of published generations shared by the workers of one server."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.log = self.folder / LOG

    @classmethod
    def create(cls) -> GenerationStore:
        folder = Path(tempfile.mkdtemp(prefix="recsys-serve-"))
        (folder / LOG).touch()
        return cls(folder)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    @contextmanager
    def _locked(self, name: str, exclusive: bool):
        fd = os.open(self.folder / name, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # releases the lock

    def latest(self) -> tuple[dict | None, int]:
        """The newest generation's record (None before the first) and the log's size."""
        with self._locked(LOG_LOCK, exclusive=False):
            data = self.log.read_bytes()
        lines = [line for line in data.splitlines() if line.strip()]
        return (json.loads(lines[-1]) if lines else None), len(data)

    def snapshot(self, record: dict) -> Path:
        return self.folder / record["snapshot"]

    def publish(self, source, build):
        """Number a new generation from the model file ``source``, if ``build`` accepts it.

        ``build(path)`` loads the copied file (raising ``ModelError`` refuses it).
        Returns (record, size of the log after its line, what ``build`` returned).
        """
        source = Path(source)
        with self._locked(PUBLISH_LOCK, exclusive=True):  # one publish at a time
            incoming = self.folder / f"incoming-{os.getpid()}-{threading.get_ident()}.npz"
            try:
                digest, size = _copy(source, incoming)
                built = build(incoming)
                previous, _ = self.latest()
                n = 1 if previous is None else int(previous["generation"]) + 1
                snapshot = self.folder / f"model-{n}.npz"
                os.replace(incoming, snapshot)
            finally:
                incoming.unlink(missing_ok=True)
            record = {"generation": n, "snapshot": snapshot.name, "source": str(source),
                      "bytes": size, "sha256": digest, "by": os.getpid(),
                      "published_at": _dt.datetime.now(_dt.timezone.utc).isoformat(
                          timespec="milliseconds")}
            with self._locked(LOG_LOCK, exclusive=True):
                with open(self.log, "ab") as fh:
                    fh.write(json.dumps(record).encode() + b"\n")
                log_size = os.stat(self.log).st_size
            for old in range(1, n - KEEP + 1):
                (self.folder / f"model-{old}.npz").unlink(missing_ok=True)
            return record, log_size, built


def _copy(source: Path, target: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    try:
        with open(source, "rb") as src, open(target, "wb") as dst:
            while chunk := src.read(1 << 20):
                digest.update(chunk)
                dst.write(chunk)
                size += len(chunk)
    except OSError as exc:
        raise ModelError(f"{source}: cannot read the model file: "
                         f"{exc.strerror or exc}") from None
    return digest.hexdigest(), size


class SharedHolder(ModelHolder):
    """A worker's model: the newest generation of a ``GenerationStore``.

    ``stale()`` is the per-request check (is there a newer generation?); ``catch_up``
    loads it (in a thread: it takes as long as a load); ``reload`` publishes the model
    file as a new generation for every worker and serves it here at once.
    """

    shared = True

    def __init__(self, store: GenerationStore, path, loader=None, **options):
        from recsys.models.registry import load

        self.store = store
        self.path = Path(path)  # the model file that a reload publishes
        self._load = loader or load
        self._options = options
        self._lock = threading.Lock()
        self.worker = os.getpid()
        self.generation, self._seen = 0, -1
        self.current: Served | None = None
        self._log_fd = os.open(store.log, os.O_RDONLY)
        self.catch_up()
        if self.current is None:
            raise ModelError(f"{store.folder}: no model generation has been published")

    def stale(self) -> bool:
        """Whether a generation newer than the one served may have been published."""
        return os.fstat(self._log_fd).st_size != self._seen

    def catch_up(self) -> Served:
        """Serve the newest published generation (loading it if newer than the current)."""
        with self._lock:
            for _ in range(10):  # a snapshot may be pruned while it loads: read again
                record, size = self.store.latest()
                if record is None or record["generation"] <= self.generation:
                    self._seen = size
                    return self.current
                try:
                    fresh = load_served(self._load, self.store.snapshot(record), self.path,
                                        **self._options)
                except ModelError:
                    newer, _ = self.store.latest()
                    if newer is not None and newer["generation"] > record["generation"]:
                        continue
                    raise
                self.current, self.generation, self._seen = fresh, record["generation"], size
                settle()
                return fresh
            raise ModelError("model generations are published faster than they load")

    def reload(self) -> Served:
        with self._lock:
            record, size, fresh = self.store.publish(
                self.path, lambda p: load_served(self._load, p, self.path, **self._options))
            # the log's size just after our line: any later generation shows as stale()
            self.current, self.generation, self._seen = fresh, record["generation"], size
            settle()
            return fresh
