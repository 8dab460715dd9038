"""Ratings and everything that reads, splits, generates or describes them."""
