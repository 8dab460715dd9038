"""The version of recsys: written here once, read by the package metadata and the code."""

__version__ = "0.2.0"
#: The name of the distribution on the package index (the import name is ``recsys``).
DISTRIBUTION = "recsys-mf"
