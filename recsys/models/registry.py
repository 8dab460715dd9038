"""The estimators by name: reading any model file back as the estimator that wrote it
(``recsys.load``), and the estimator that a flat parameter set (command line, saved
configs) describes."""

from __future__ import annotations

from recsys.errors import ModelError
from recsys.models.baselines import Biases, GlobalMean
from recsys.models.funksvd import FunkSVD
from recsys.models.svdpp import SVDpp
from recsys.persist.modelfile import read_model

#: The estimators a model file can name.
ESTIMATORS = {cls.__name__: cls for cls in (FunkSVD, SVDpp, Biases, GlobalMean)}


def load(path):
    """The fitted model in ``path`` (any kind); raises ``ModelError`` for anything amiss."""
    record = read_model(path)
    cls = ESTIMATORS.get(record.kind)
    if cls is None:
        raise ModelError(f"{path}: holds a model of unknown kind {record.kind!r} (known: "
                         f"{', '.join(ESTIMATORS)}); a newer recsys may read it")
    return cls.from_record(record, path)


def save(model, path) -> None:
    """Write a fitted model to ``path`` atomically (the same as ``model.save(path)``)."""
    model.save(path)


#: Every parameter a flat parameter set may hold (``method='svdpp'`` picks SVDpp).
FLAT_PARAMS = tuple(dict.fromkeys(FunkSVD._PARAMS + SVDpp._PARAMS))


def make_estimator(params: dict):
    """FunkSVD, or SVDpp when ``method`` is 'svdpp' (its parameters without method and
    grid; FunkSVD's without reg_implicit), unfitted, parameters checked."""
    params = dict(params)
    if params.get("method") == "svdpp":
        params.pop("method")
        params.pop("grid", None)
        cls = SVDpp
    else:
        params.pop("reg_implicit", None)
        cls = FunkSVD
    unknown = sorted(set(params) - set(cls._PARAMS))
    if unknown:
        raise ValueError(f"unknown parameter {unknown[0]!r} for {cls.__name__}")
    model = cls(**params)
    model.check_params()
    return model
