"""Helpers for testing recsys and models built on it: fuzzing, the estimator contract."""
