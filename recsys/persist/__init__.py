"""Model files: a FactorState and its manifest to and from disk."""
