"""Getting a Dask client: to a running scheduler, or a local cluster of worker processes
started and stopped here; every wait has a timeout, every failure is one ClusterError."""

from __future__ import annotations

import contextlib
import os

from recsys.errors import ClusterError

#: Seconds to reach a scheduler (and for its first worker to be there).
CONNECT_TIMEOUT = 10.0
INSTALL_HINT = "pip install 'recsys-mf[dask]'"


def require() -> None:
    """Raise ClusterError now if dask.distributed is not installed."""
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        raise ClusterError(f"training on a Dask cluster needs the dask extra ({exc}); "
                           f"{INSTALL_HINT}") from None


def parse_memory(text: str | None) -> int | None:
    """Bytes of a size such as '2GiB' or '500MB' (None: none given)."""
    if text is None:
        return None
    from dask.utils import parse_bytes

    try:
        value = int(parse_bytes(text))
    except (ValueError, TypeError):
        raise ClusterError(f"--worker-memory: {text!r} is not a size such as 2GiB or "
                           "500MB") from None
    if value <= 0:
        raise ClusterError(f"--worker-memory: {text!r} is not a positive size")
    return value


@contextlib.contextmanager
def connect(scheduler: str | None = None, n_workers: int | None = None,
            worker_memory: str | None = None, threads: int | None = None,
            timeout: float = CONNECT_TIMEOUT):
    """A ``distributed.Client`` for the enclosed block: to ``scheduler`` (an address such
    as tcp://host:8786), or to a LocalCluster of ``n_workers`` processes with
    ``threads`` threads each (default: the cores shared out) and ``worker_memory`` each
    (default: the machine's memory shared out), closed at the end."""
    require()
    import distributed

    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"cannot reach the Dask scheduler at {scheduler} within "
                               f"{timeout:g} s: {' '.join(str(exc).split())[:200]}") from None
        cluster = None
    else:
        n = int(n_workers or 1)
        if n < 1:
            raise ClusterError("--dask-workers must be at least 1")
        memory = parse_memory(worker_memory)
        per = threads or max(1, (os.cpu_count() or 1) // n)
        cluster = distributed.LocalCluster(
            n_workers=n, threads_per_worker=per, processes=True,
            memory_limit=memory if memory is not None else "auto",
            dashboard_address=":0", worker_dashboard_address=":0")
        client = distributed.Client(cluster, timeout=timeout)
    try:
        try:
            client.wait_for_workers(1 if cluster is None else int(n_workers or 1),
                                    timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"no Dask worker joined within {timeout:g} s "
                               f"({' '.join(str(exc).split())[:200]})") from None
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.close(timeout=timeout)
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close(timeout=timeout)
