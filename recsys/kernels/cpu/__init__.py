"""Numba kernels for the CPU: plain functions over arrays, no policy."""
