"""Memory estimates of training, checked before large allocations, so users get a message,
not the OOM killer.

``training_bytes`` is the peak of ``recsys.training.loop.train`` above what it is given,
per method; ``split_bytes`` what ``recsys.data.split.split_off`` allocates and keeps. The
estimators compose them into the peak of a whole fit (``memory_estimate``). Each term
names the arrays it counts; the coefficients were checked against the kernel's peak-RSS
counter by scripts/bench_memory_guard.py (estimate >= measured, within 1.5x, from 100k to
3M ratings, k 32 and 128).
"""

from __future__ import annotations

from recsys.memory import available_memory, ensure_memory, human_bytes

__all__ = ["available_memory", "ensure_memory", "human_bytes", "split_bytes",
           "training_bytes", "with_margin"]

#: Bytes of one rating as training holds it: int32 user, int32 item, float32 value.
RATING_BYTES = 12
#: glibc serves blocks from this size up (its largest dynamic mmap threshold) by mmap and
#: gives them back when freed; smaller freed blocks stay in its heap, where the holes they
#: leave are not always reused. A temporary under this size counts as kept.
RETAINED_BELOW = 32 << 20


#: Estimates are this multiple of the sum of their terms.
MARGIN = 1.02


def temporary(nbytes: int) -> tuple[int, int]:
    """(kept, transient) bytes of a temporary of ``nbytes``: under ``RETAINED_BELOW`` it
    stays in the process after it is freed."""
    return (nbytes, 0) if nbytes < RETAINED_BELOW else (0, nbytes)


def factor_bytes(n_users: int, n_items: int, n_factors: int, itemsize: int) -> int:
    """P, Q and both biases."""
    return (n_users + n_items) * (n_factors + 1) * itemsize


def training_bytes(n_ratings: int, n_users: int, n_items: int, n_factors: int,
                   itemsize: int, method: str = "sgd", *, snapshot: bool = False,
                   n_valid: int = 0) -> int:
    """Peak bytes ``train`` allocates for ``method``: the factors (P, Q and biases) and the
    larger of two phases (or their sum, when the first one's temporary stays in the
    heap): drawing the initial factors (the float64 draw of P or Q before its cast), and
    training (the ratings grouped into blocks, what the method's trainer adds, and two
    copies of the trained arrays when ``snapshot``: early stopping and the bold driver
    keep one while taking the next, the temporaries of the validation RMSE over
    ``n_valid`` ratings, and the final check for non-finite values)."""
    n, u, i, k = int(n_ratings), int(n_users), int(n_items), int(n_factors)
    factors = factor_bytes(u, i, k, itemsize)
    draw = max(u, i) * k * 8
    grouped = n * RATING_BYTES + 8 * (u + i)  # and the block of every user and item
    copy = factors
    if method == "gd":  # the gradient of every parameter and the step, each epoch
        extra = 2 * factors
    elif method == "funk":  # the initial columns kept, the cached predictions
        extra = (u + i) * k * itemsize + n * itemsize
    elif method == "svdpp":  # the ratings grouped by user, p, Y (drawn in float64)
        extra = n * RATING_BYTES + 16 * u + u * k * itemsize + i * k * (8 + itemsize)
        copy += (u + i) * k * itemsize
    elif method == "ials":  # confidences, both CSRs and their orders while built, and
        extra = n * 68 + 24 * (u + i)  # bincount's int64 copy of the indices
    else:  # sgd: the per-block sorts' temporaries are a block's size
        extra = 0
    finite = max(u, i) * k  # the mask of the final check for non-finite values
    training = (grouped + extra + (2 * copy if snapshot else 0) + 40 * int(n_valid)
                + finite)
    kept, draw = temporary(draw)
    return factors + kept + max(draw, training)


def split_bytes(n_ratings: int, row_bytes: int) -> tuple[int, int]:
    """(peak, kept) of ``split_off``: the mask (a byte a rating) and the two subsets of
    ``row_bytes`` a rating, which it keeps."""
    n = int(n_ratings)
    return n + row_bytes * n, row_bytes * n


def with_margin(nbytes: int) -> int:
    """An estimate with ``MARGIN`` for what the terms do not name (Python objects, code
    pages first touched, the per-block sorts of SGD)."""
    return int(nbytes * MARGIN)
