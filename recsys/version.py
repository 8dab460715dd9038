"""The version of recsys: written here once, read by the package metadata and the code."""

__version__ = "0.1.0"
