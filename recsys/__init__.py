"""recsys: Funk-SVD rating prediction and top-N recommendation, trained by SGD.

    from recsys import FunkSVD, read_ratings
    model = FunkSVD().fit(read_ratings("u1.base"))

Names are imported on first use, so ``import recsys`` (and ``recsys --help``) stay fast.
"""

from importlib import import_module

from recsys.version import __version__  # noqa: F401  (re-exported)

_EXPORTS = {
    "FunkSVD": "models.funksvd", "SVDpp": "models.svdpp", "Biases": "models.baselines",
    "GlobalMean": "models.baselines", "RankingMF": "models.ranking",
    "HybridMF": "models.hybrid", "FactorState": "state", "Ratings": "data.ratings",
    "IdMap": "data.ratings", "read_ratings": "data.readers", "read_pairs": "data.readers",
    "read_events": "data.readers",
    "load": "models.registry", "save": "models.registry", "RecsysError": "errors",
    "DataError": "errors", "ModelError": "errors", "TrainingError": "errors",
    "ResourceError": "errors", "UnknownIdError": "errors", "NotFittedError": "errors",
    "DeviceError": "errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'recsys' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
