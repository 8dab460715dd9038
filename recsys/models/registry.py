"""The estimators by name: reading any model file back as the estimator that wrote it
(``recsys.load``), and the estimator that a flat parameter set (command line, saved
configs) describes."""

from __future__ import annotations

from recsys.errors import ModelError
from recsys.models.baselines import Biases, GlobalMean
from recsys.models.funksvd import FunkSVD
from recsys.models.hybrid import HybridMF
from recsys.models.ranking import RankingMF
from recsys.models.svdpp import SVDpp
from recsys.persist.modelfile import read_model

#: The estimators a model file can name.
ESTIMATORS = {cls.__name__: cls for cls in (FunkSVD, SVDpp, RankingMF, HybridMF, Biases,
                                            GlobalMean)}


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


#: The objectives of the command line and of flat parameter sets, and their models.
OBJECTIVES = {"rating": FunkSVD, "ranking": RankingMF, "hybrid": HybridMF}
#: Every parameter a flat parameter set may hold (``method='svdpp'`` picks SVDpp,
#: ``objective`` the model of an objective).
FLAT_PARAMS = tuple(dict.fromkeys(("objective",) + FunkSVD._PARAMS + SVDpp._PARAMS
                                  + RankingMF._PARAMS + HybridMF._PARAMS))


def make_estimator(params: dict):
    """The unfitted model a flat parameter set describes, parameters checked: the model of
    ``objective`` ('rating', the default: FunkSVD, or SVDpp when ``method`` is 'svdpp';
    'ranking': RankingMF; 'hybrid': HybridMF). Parameters the model does not take are an
    error, but FunkSVD ignores reg_implicit (the command line offers it with --method)."""
    params = dict(params)
    objective = params.pop("objective", None) or "rating"
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, not "
                         f"{objective!r}")
    cls = OBJECTIVES[objective]
    if cls is not FunkSVD or params.get("method") == "svdpp":
        device = params.pop("device", None)
        if device not in (None, "cpu"):
            raise ValueError(f"device {device!r} trains the rating objective by method sgd "
                             "only (FunkSVD)")
    if cls is FunkSVD and params.get("method") == "svdpp":
        params.pop("method")
        params.pop("grid", None)
        cls = SVDpp
    elif cls is FunkSVD:
        params.pop("reg_implicit", None)
    unknown = sorted(set(params) - set(cls._PARAMS))
    if unknown:
        raise ValueError(f"{unknown[0]} is not a parameter of {cls.__name__} "
                         f"(objective {objective})")
    model = cls(**params)
    model.check_params()
    return model
