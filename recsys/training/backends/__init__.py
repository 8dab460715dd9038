"""Where training runs. A backend runs the epochs of blocked SGD over the schedule of
``recsys.training.strata``, owns its workers and the arrays' place during training;
trainers find it by name.

* ``cpu``: numba threads (``recsys.training.backends.cpu``); bit-identical for any thread
  count.
* ``cuda``, ``cuda-strata``: an NVIDIA GPU through numba-cuda
  (``recsys.training.backends.cuda``): Hogwild over all the GPU's warps, or the CPU's
  stratum order (reproducible run to run).

Every backend has ``workers(n_jobs)`` (a context for the whole of training),
``sgd_epoch(...)``, and for the arrays it may keep elsewhere ``snapshot(arrays)``,
``restore(arrays, saved)``, ``to_host(arrays)`` (brings the host arrays up to date) and
``rmse(factors, users, items, values, lo, hi)``.
"""

from __future__ import annotations

BACKENDS = ("cpu", "cuda", "cuda-strata")


def get(name: str, seed: int = 0):
    """The backend called ``name``; ``seed``: of its own random choices (the CPU backend
    makes none). A CUDA backend raises DeviceError where it cannot run."""
    if name == "cpu":
        from recsys.training.backends.cpu import CpuBackend

        return CpuBackend()
    if name in ("cuda", "cuda-strata"):
        from recsys.training.backends.cuda import CudaBackend

        return CudaBackend(name, seed)
    raise ValueError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}")


def require(name: str) -> None:
    """Raise DeviceError now if backend ``name`` cannot run here (before reading data)."""
    if name in ("cuda", "cuda-strata"):
        from recsys.training.backends.cuda import numba_cuda

        numba_cuda(name)
    elif name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}")
