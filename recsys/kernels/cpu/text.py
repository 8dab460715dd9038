"""Text kernel: ratings rows as CSV bytes, for writing tens of millions of rows quickly."""

import numba
import numpy as np


@numba.njit(cache=True, inline="always")
def _put_int(value, out, pos):
    """Write the decimal digits of ``value`` at ``out[pos:]``; return the new position."""
    if value < 0:
        out[pos] = 45  # '-'
        pos += 1
        value = -value
    start = pos
    while True:
        out[pos] = 48 + value % 10
        pos += 1
        value //= 10
        if value == 0:
            break
    end = pos - 1
    while start < end:  # digits came out least significant first
        out[start], out[end] = out[end], out[start]
        start += 1
        end -= 1
    return pos


@numba.njit(cache=True)
def format_rows(users, items, halves, stamps, with_stamps, out):
    """Rows ``user,item,rating[,timestamp]\\n`` into ``out``; returns the bytes used.

    ``halves`` is twice the rating (ratings on a half-star grid are written exactly, as
    ``4`` or ``3.5``). ``out`` needs room for 64 bytes a row.
    """
    pos = 0
    for n in range(len(users)):
        pos = _put_int(users[n], out, pos)
        out[pos] = 44
        pos = _put_int(items[n], out, pos + 1)
        out[pos] = 44
        h = halves[n]
        if h < 0:
            out[pos + 1] = 45
            pos += 1
            h = -h
        pos = _put_int(h // 2, out, pos + 1)
        if h % 2:
            out[pos] = 46  # '.'
            out[pos + 1] = 53  # '5'
            pos += 2
        if with_stamps:
            out[pos] = 44
            pos = _put_int(stamps[n], out, pos + 1)
        out[pos] = 10
        pos += 1
    return pos


def empty_buffer(rows: int) -> np.ndarray:
    return np.empty(64 * rows, dtype=np.uint8)
