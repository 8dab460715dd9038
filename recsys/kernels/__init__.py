"""Numba kernels: plain functions over arrays, free of policy (no shuffling decisions,
schedules, stopping or logging; those live in Python)."""
