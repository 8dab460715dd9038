"""A tiny counter-based random generator usable inside numba kernels.

Each block of each epoch gets its own stream, derived from (seed, epoch, block), so the
order ratings are visited in does not depend on which thread runs which block.
"""

import numba
import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@numba.njit(cache=True, inline="always")
def splitmix64(state):
    """One step of SplitMix64: returns (next state, 64 random bits)."""
    state = state + _GOLDEN
    z = state
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return state, z ^ (z >> np.uint64(31))


@numba.njit(cache=True)
def stream_seed(seed, epoch, block):
    """A well-mixed 64-bit state for one (seed, epoch, block) stream."""
    state = np.uint64(seed)
    state, a = splitmix64(state ^ (np.uint64(epoch) * _MIX1))
    state, b = splitmix64(a ^ (np.uint64(block) * _MIX2))
    return b


@numba.njit(cache=True)
def shuffle_range(users, items, values, start, end, state):
    """Fisher-Yates shuffle of rows start..end-1 of three parallel arrays, in place."""
    for i in range(end - 1, start, -1):
        state, bits = splitmix64(state)
        j = start + np.int64(bits % np.uint64(i - start + 1))
        users[i], users[j] = users[j], users[i]
        items[i], items[j] = items[j], items[i]
        values[i], values[j] = values[j], values[i]
    return state
