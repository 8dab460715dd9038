"""Arrays whose data start on a cache line (64 bytes), for the factor matrices.

Why: compiled for a CPU with AVX-512, the SGD kernel moves a factor row as 64-byte
vectors, and a vector that straddles two cache lines costs two accesses. numpy only
promises 16-byte alignment, and the factors of real fits started 32 or 48 bytes into a
line. With both 48 bytes in, the float32 kernel at k=128 ran at 0.72x its aligned rate
with the rows in cache and in a 1M fit's epochs, 0.83x at 10M (one thread, 5 alternated
runs; docs/benchmarks.md, "How the training kernel is made fast", step 5). Every
row of a C-contiguous matrix starts on a line when the matrix does and a row is a whole
number of lines (k a multiple of 16 in float32, of 8 in float64).

The arrays are views into a slightly larger buffer; numpy treats them like any other
(copying, slicing, saving and pickling all work, only the alignment of a copy is numpy's).
"""

from __future__ import annotations

import numpy as np

#: Bytes in a cache line of the x86-64 and ARM CPUs the kernels run on.
LINE = 64


def empty(shape, dtype, offset: int = 0) -> np.ndarray:
    """An uninitialised C-contiguous array whose data start on a cache line, or
    ``offset`` bytes past one (0 in every fit; other offsets show what misalignment
    costs: scripts/bench_roofline.py and the tests)."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + LINE + offset, dtype=np.uint8)
    start = -raw.ctypes.data % LINE + offset
    return raw[start:start + nbytes].view(dtype).reshape(shape)


def copy(a: np.ndarray, dtype=None) -> np.ndarray:
    """``a`` (cast to ``dtype``, if given) in a new C-contiguous array that starts on a
    cache line."""
    out = empty(a.shape, a.dtype if dtype is None else dtype)
    out[...] = a
    return out


def is_aligned(a: np.ndarray) -> bool:
    """Whether ``a``'s data start on a cache line (an empty array has no line to cross)."""
    return a.size == 0 or a.ctypes.data % LINE == 0
