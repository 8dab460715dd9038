"""Memory estimates checked before large allocations, so users get a message, not the OOM killer."""

from __future__ import annotations

from recsys.memory import available_memory, ensure_memory, human_bytes

__all__ = ["available_memory", "ensure_memory", "human_bytes", "training_bytes"]


def training_bytes(n_ratings: int, n_users: int, n_items: int, n_factors: int,
                   itemsize: int) -> int:
    """Bytes a fit allocates: factors and biases, one grouped copy of the ratings, indices."""
    factors = (n_users + n_items) * (n_factors + 1) * itemsize
    ratings = n_ratings * 12  # int32 user, int32 item, float32 value
    seen = n_ratings * 4 + (n_users + 1) * 8  # seen-items index kept for recommend
    return factors + 2 * ratings + seen
