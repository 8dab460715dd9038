"""The CUDA backends: SGD epochs on an NVIDIA GPU (``recsys.kernels.cuda.sgd``), with the
ratings and the factors kept on the device from the first epoch to the end of training.

Two schedules, by the backend's name:

* ``cuda``: Hogwild, one warp per rating, every warp of the GPU at once. Each epoch visits
  the ratings in an affine permutation (t · stride + offset) mod n drawn from the fit's
  seed (stride coprime to n); warps that meet the same user or item at once race, so the
  model is *not* bit-identical run to run on a GPU (its accuracy is what repeats).
* ``cuda-strata``: the CPU's stratum order (``recsys.training.strata``), one launch per
  stratum and one warp per block. Blocks of a stratum share no rows, so nothing races:
  the model is the same bit for bit run to run and follows the CPU backend's to float
  rounding; but only ``grid`` warps (at most 64 with the default grid) run at once.

Where the arrays are: on the first epoch the grouped ratings (int32 users and items,
float32 values; block offsets for the strata), the factors and the AdaGrad accumulators
are copied to the device, once. An epoch then brings back one float64, its Σ e², summed on
the device, which the loop reports and checks for divergence. Validation RMSE is computed
on the device (its ratings copied on first use), early-stopping snapshots are device
copies, and ``to_host`` copies the trained arrays back into the host arrays: at the end of
training, and before the bold driver's loss (computed on the host, so that schedule copies
the factors back every epoch).

``numba.cuda`` is imported here only, when a backend is made, through
``recsys.kernels.cuda`` (which arranges its import: numpy's ``row_stack``, the simulator's
warp shuffles). The device is numba's current one (the first visible GPU; choose with
``CUDA_VISIBLE_DEVICES``); ``n_jobs`` does not apply.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from recsys.errors import DeviceError, ResourceError

#: The schedule of each CUDA backend.
SCHEDULES = {"cuda": "hogwild", "cuda-strata": "strata"}
WARP = 32
#: A Hogwild launch on a GPU: warps per block, blocks per multiprocessor.
WARPS_PER_BLOCK = 4
BLOCKS_PER_SM = 8
#: In the simulator (blocks run one after another): this many blocks of one warp.
SIMULATED_BLOCKS = 2
#: Names of the errors numba-cuda raises when the CUDA toolkit libraries are missing.
_TOOLKIT_ERRORS = {"NvvmSupportError", "NvrtcSupportError", "DynamicLibNotFoundError"}
_TOOLKIT_MISSING = ("the CUDA toolkit libraries numba-cuda compiles with are missing ({}): "
                    "pip install 'numba-cuda[cu12]' (or [cu13] for a CUDA 13 driver); or "
                    "train with --device cpu")


def numba_cuda(device: str = "cuda"):
    """``numba.cuda``, imported through ``recsys.kernels.cuda``; DeviceError where
    numba-cuda is not installed or no GPU (nor the simulator) can be used."""
    try:
        import numba_cuda  # noqa: F401  the NVIDIA-maintained target, not numba's old one
    except ImportError:
        raise DeviceError(f"--device {device} needs numba-cuda: "
                          "pip install 'recsys-mf[cuda]'") from None
    from recsys.kernels.cuda import cuda  # numba.cuda, its import arranged there

    if simulated():
        return cuda
    if not cuda.is_available():
        if _driver_found():  # numba also needs NVVM to call CUDA available
            raise DeviceError(_TOOLKIT_MISSING.format("NVVM not found"))
        raise DeviceError("CUDA is not available: no GPU or driver found "
                          "(numba.cuda.is_available() is False); train with --device cpu")
    try:
        gpus = len(cuda.gpus)
    except Exception:  # noqa: BLE001 - any failure to list them means none can be used
        gpus = 0
    if gpus == 0:
        raise DeviceError("CUDA is not available: the driver sees no GPU (check "
                          "CUDA_VISIBLE_DEVICES); train with --device cpu")
    return cuda


def _driver_found() -> bool:
    try:
        from numba.cuda.cudadrv.driver import driver

        return bool(driver.is_available)
    except Exception:  # noqa: BLE001
        return False


def simulated() -> bool:
    """Whether numba's CUDA simulator stands in for the GPU (NUMBA_ENABLE_CUDASIM=1)."""
    from numba.core import config

    return bool(config.ENABLE_CUDASIM)


@contextlib.contextmanager
def _toolkit_needed():
    """Kernels compile on first launch: a missing CUDA toolkit library becomes one line."""
    try:
        yield
    except Exception as exc:
        if not {c.__name__ for c in type(exc).__mro__} & _TOOLKIT_ERRORS:
            raise
        raise DeviceError(_TOOLKIT_MISSING.format(" ".join(str(exc).split()))) from None


class CudaBackend:
    """SGD epochs on the GPU; ``name`` is 'cuda' (Hogwild) or 'cuda-strata' (stratum order).
    One backend trains one set of ratings (it keeps them on the device)."""

    def __init__(self, name: str = "cuda", seed: int = 0):
        if name not in SCHEDULES:
            raise ValueError(f"unknown CUDA backend {name!r}; known: {', '.join(SCHEDULES)}")
        self.name = name
        self.schedule = SCHEDULES[name]
        self.cuda = numba_cuda(name)
        from recsys.kernels.cuda import sgd

        self.kernels = sgd
        self.simulated = simulated()
        # the visiting order of the Hogwild epochs, from the fit's seed
        self.rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xC0DA]))
        self._resident: dict[int, tuple[np.ndarray, object]] = {}
        self._ratings = None  # (host ratings, device users, items, values, block_ptr)
        self._validation = None  # (host values, device users, items, values)
        self._buffers: dict = {}

    @contextlib.contextmanager
    def workers(self, n_jobs: int | None):
        """Nothing to set: every launch uses the whole GPU (``n_jobs`` is CPU threads)."""
        yield

    # ------------------------------------------------------------------ device arrays

    def _device(self, host: np.ndarray):
        """The device copy of ``host``, made on first use."""
        entry = self._resident.get(id(host))
        if entry is None or entry[0] is not host:
            entry = (host, self.cuda.to_device(host))
            self._resident[id(host)] = entry
        return entry[1]

    def _buffer(self, name: str, n: int, dtype=np.float64):
        buffer = self._buffers.get(name)
        if buffer is None or buffer.shape[0] != n or buffer.dtype != np.dtype(dtype):
            buffer = self._buffers[name] = self.cuda.device_array(n, dtype=dtype)
        return buffer

    def _upload_ratings(self, grouped, arrays):
        if self._ratings is not None:
            if self._ratings[0] is not grouped:
                raise ValueError("a CUDA backend trains one set of ratings")
            return self._ratings[1:]
        host = (grouped.users, grouped.items, grouped.values, grouped.block_ptr)
        self._ensure_memory(sum(a.nbytes for a in host) + sum(a.nbytes for a in arrays))
        self._ratings = (grouped, *(self.cuda.to_device(a) for a in host))
        return self._ratings[1:]

    def _ensure_memory(self, needed: int) -> None:
        if self.simulated:
            return
        free, _total = self.cuda.current_context().get_memory_info()
        if needed > free * 0.95:
            raise ResourceError(f"training on the GPU needs about {needed / 2**30:.2f} GiB "
                                f"of its memory; {free / 2**30:.2f} GiB are free")

    def _hogwild_shape(self) -> tuple[int, int]:
        """(blocks, threads per block) of a launch over all ratings."""
        if self.simulated:
            return SIMULATED_BLOCKS, WARP
        sms = self.cuda.get_current_device().MULTIPROCESSOR_COUNT
        return sms * BLOCKS_PER_SM, WARPS_PER_BLOCK * WARP

    def _order(self, n: int) -> tuple[int, int]:
        """(stride, offset) of this epoch's permutation of n ratings."""
        stride = 1
        if n > 2:
            stride = int(self.rng.integers(1, n))
            while math.gcd(stride, n) != 1:
                stride = int(self.rng.integers(1, n))
        return stride, int(self.rng.integers(n))

    def _total(self, partials) -> float:
        out = self._buffer("total", 1)
        self.kernels.sum_into[1, WARP](partials, out)
        return float(out.copy_to_host()[0])

    # ------------------------------------------------------------------ the interface

    def sgd_epoch(self, grouped, shifts: np.ndarray, cols: np.ndarray, factors, lr, reg,
                  reg_bias, block_sse: np.ndarray, accumulators=None) -> float:
        """One epoch on the device; returns Σ e² (``block_sse`` is the CPU's and unused:
        the sums stay on the device). ``accumulators`` (Gu, Gi, Hu, Hi): AdaGrad's."""
        arrays = (*factors.arrays(), *(accumulators or ()))
        users, items, values, block_ptr = self._upload_ratings(grouped, arrays)
        bu, bi, P, Q = (self._device(a) for a in factors.arrays())
        adaptive = accumulators is not None
        if adaptive:
            acc = tuple(self._device(a) for a in accumulators)
        else:
            acc = (self._buffer("no accumulators", 1, factors.user_bias.dtype),) * 4
        k = self.kernels
        with _toolkit_needed():
            if self.schedule == "hogwild":
                blocks, threads = self._hogwild_shape()
                partials = self._buffer("warps", blocks * threads // WARP)
                stride, offset = self._order(len(grouped))
                k.hogwild_epoch[blocks, threads](users, items, values, stride, offset,
                                                 factors.mu, bu, bi, P, Q, lr, reg, reg_bias,
                                                 adaptive, *acc, partials)
            else:
                grid = grouped.grid
                partials = self._buffer("blocks", grid * grid)
                d_cols = self.cuda.to_device(np.ascontiguousarray(cols, dtype=np.int64))
                for s in range(grid):
                    k.stratum[grid, WARP](users, items, values, block_ptr, int(shifts[s]),
                                          d_cols, factors.mu, bu, bi, P, Q, lr, reg,
                                          reg_bias, adaptive, *acc, partials)
            return self._total(partials)

    def rmse(self, factors, users, items, values, lo: float, hi: float) -> float:
        """Validation RMSE of the clipped predictions, on the device (``Factors.rmse``)."""
        if self._validation is None or self._validation[0] is not values:
            self._validation = (values, *(self.cuda.to_device(np.ascontiguousarray(a))
                                          for a in (users, items, values)))
        _, d_users, d_items, d_values = self._validation
        bu, bi, P, Q = (self._device(a) for a in factors.arrays())
        dt = factors.user_factors.dtype.type
        blocks, threads = self._hogwild_shape()
        partials = self._buffer("warps", blocks * threads // WARP)
        with _toolkit_needed():
            self.kernels.clipped_sse[blocks, threads](d_users, d_items, d_values, factors.mu,
                                                      bu, bi, P, Q, dt(lo), dt(hi), partials)
            return math.sqrt(self._total(partials) / len(values))

    def snapshot(self, arrays) -> tuple:
        """Device copies of ``arrays`` (early stopping, the bold driver)."""
        saved = []
        for host in arrays:
            source = self._device(host)
            copy = self.cuda.device_array_like(source)
            copy.copy_to_device(source)
            saved.append(copy)
        return tuple(saved)

    def restore(self, arrays, saved) -> None:
        for host, copy in zip(arrays, saved, strict=True):
            self._device(host).copy_to_device(copy)

    def to_host(self, arrays) -> None:
        """Copy the trained ``arrays`` back into themselves (those on the device)."""
        for host in arrays:
            entry = self._resident.get(id(host))
            if entry is not None and entry[0] is host:
                entry[1].copy_to_host(host)
