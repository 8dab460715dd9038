"""One declarative table of the estimators' hyperparameters: defaults, checks, CLI flags, help.

Each ``Param`` says what values it takes (``kind`` and bounds), its default, the command
line flags that set it and the help they show. Estimators list the names they take and
store them verbatim in ``__init__`` (scikit-learn style); ``check_params`` validates an
estimator against this table in ``fit``; ``recsys.cli`` builds the options of ``train``,
``cv`` and ``tune`` from it, so the command line documents the model and cannot drift
from it. The defaults were tuned on MovieLens 100k (docs/results.md, "How the defaults
were found"): many factors, strong factor regularization, weak bias regularization, and
factors that start tiny (init_std 0.005) and grow for a bounded number of epochs: from a
tiny start SGD learns the strongest directions of the rating matrix first, so stopping
near epoch 85 regularizes the rank as well as the norms.

Imports nothing heavy: the command line reads it to print ``--help``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace

from recsys.training.autoreg import REFERENCE as REG_REFERENCE

#: The training methods of FunkSVD, and the command line's (where svdpp picks SVDpp).
FUNKSVD_METHODS = ("sgd", "funk", "gd")
METHODS = (*FUNKSVD_METHODS, "svdpp")
LR_SCHEDULES = ("constant", "decay", "bold", "adagrad")
#: What a model is fitted for (recsys.models.registry.OBJECTIVES names their models).
OBJECTIVES = ("rating", "ranking", "hybrid")
DTYPES = ("float32", "float64")
#: Where FunkSVD's SGD runs (recsys.training.backends).
DEVICES = ("cpu", "cuda", "cuda-strata")


@dataclass(frozen=True)
class Param:
    """One hyperparameter.

    kind: 'int' (whole number, not bool), 'float' (finite real), 'choice' (one of
    ``choices``) or 'reg' ('auto' or a float). ``low``/``high`` bound it (``low_open``:
    strictly above low); ``optional``: None is allowed. ``flags`` are the CLI option names
    (none: not on the command line); ``default_text`` replaces the default in the help.
    """

    name: str
    default: object
    kind: str
    help: str = ""
    flags: tuple = ()
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple = ()
    optional: bool = False
    metavar: str | None = None
    default_text: str | None = None
    expects: str = ""  # what the error message says it must be
    cli_choices: tuple = ()  # choices on the command line, where they differ

    def but(self, **changes) -> Param:
        """This parameter with some fields changed (another estimator's default)."""
        return replace(self, **changes)

    def valid(self, value) -> bool:
        if value is None:
            return self.optional
        if self.kind == "choice":
            return isinstance(value, str) and value in self.choices
        if self.kind == "reg" and isinstance(value, str):
            return value == "auto"
        if isinstance(value, bool):
            return False
        if self.kind == "int" and not isinstance(value, numbers.Integral):
            return False
        if not isinstance(value, numbers.Real) or not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high

    def check(self, value) -> None:
        if not self.valid(value):
            raise ValueError(f"{self.name} must be {self.expects}, not {value!r}")

    def help_text(self) -> str:
        shown = self.default_text if self.default_text is not None else self.default
        return f"{self.help}  [default: {shown}]" if self.help else ""


_FINITE = "a finite number >= 0"
PARAMS = {p.name: p for p in [
    Param("n_factors", 128, "int", "Latent features k.", ("-k", "--factors"), low=1,
          expects="a positive integer"),
    Param("n_epochs", 15, "int", "Passes over the ratings (the warm-up's included).",
          ("-t", "--epochs"), low=0,
          expects="a non-negative integer"),
    Param("lr", 0.03, "float", "Learning rate (of the first epoch, under a schedule).",
          ("--lr",), low=0, expects=_FINITE),
    Param("reg", "auto", "reg",
          "Regularization of the factors; auto: chosen on 10% of the training ratings held "
          f"out, from a ladder around {REG_REFERENCE} (three short trials on MovieLens-like "
          "data).",
          ("--reg",), low=0, metavar="auto|FLOAT", expects="'auto' or a finite number >= 0"),
    Param("reg_bias", 0.05, "float", "Regularization of the biases.", ("--reg-bias",), low=0,
          optional=True, expects=_FINITE),
    Param("reg_implicit", 0.005, "float",
          "Regularization of the implicit item factors of --method svdpp.",
          ("--reg-implicit",), low=0, optional=True, expects=_FINITE),
    Param("init_std", 0.005, "float", "Std of the initial factors.", ("--init-std",), low=0,
          expects=_FINITE),
    Param("seed", 0, "int", "Random seed.", ("--seed",), low=0,
          expects="a non-negative integer"),
    Param("dtype", "float32", "choice", "Factor precision.", ("--dtype",), choices=DTYPES,
          expects="'float32' or 'float64'"),
    Param("n_jobs", None, "int", "Threads (the model does not depend on it).",
          ("-j", "--jobs"), low=1, optional=True, default_text="all cores",
          expects="a positive integer or None"),
    Param("grid", None, "int", low=1, optional=True, expects="a positive integer or None"),
    Param("device", "cpu", "choice",
          "Where SGD runs: cpu; cuda: an NVIDIA GPU, Hogwild over all its warps (not "
          "bit-identical run to run); cuda-strata: a GPU in the CPU's stratum order "
          "(reproducible, fewer warps at once). GPUs train --method sgd and need numba-cuda.",
          ("--device",), choices=DEVICES, expects=f"one of {', '.join(DEVICES)}"),
    Param("method", "sgd", "choice",
          "sgd: blocked SGD; funk: one feature at a time (n_epochs passes each); gd: "
          "full-batch gradient descent; svdpp: SVD++ (implicit feedback folded into the "
          "user factors; its own defaults: -k 200 -t 85 --lr 0.005 --lr-schedule constant "
          "--reg-bias 0.01).", ("--method",), choices=FUNKSVD_METHODS, cli_choices=METHODS,
          expects=f"one of {', '.join(FUNKSVD_METHODS)}"),
    Param("lr_schedule", "decay", "choice",
          "Learning-rate schedule (bold: bold driver; adagrad: per-row adaptive steps, "
          "method sgd).",
          ("--lr-schedule",), choices=LR_SCHEDULES, expects=f"one of {', '.join(LR_SCHEDULES)}"),
    Param("lr_decay", 0.88, "float", "Rate factor per epoch of --lr-schedule decay.",
          ("--lr-decay",), low=0, high=1, low_open=True, expects="a number in (0, 1]"),
    Param("warmup_epochs", 3, "int",
          "First epochs that take AdaGrad steps at --warmup-lr before the schedule starts "
          "(method sgd, --lr-schedule decay; 0: none).", ("--warmup-epochs",),
          low=0, expects="a non-negative integer"),
    Param("warmup_lr", 0.1, "float", "Base rate of the warm-up's AdaGrad steps.",
          ("--warmup-lr",), low=0, low_open=True, expects="a number > 0"),
    Param("warmup_reg", REG_REFERENCE, "float",
          "Regularization of the factors during the warm-up (--reg applies after it; reg "
          "auto's trials share one warm-up at this value).", ("--warmup-reg",), low=0,
          expects=_FINITE),
    Param("early_stopping", 0, "int",
          "Stop after PATIENCE epochs without a better validation RMSE and keep the best "
          "epoch (uses -p, else holds out 5%).", ("--early-stopping",), low=0,
          metavar="PATIENCE", default_text="0: off", expects="a non-negative integer"),
    # the all-pairs objectives (recsys.models.allpairs)
    Param("confidence", 1.5, "float",
          "Confidence of a chosen pair beyond an unobserved one (c = 1 + this; with "
          "--threshold none, 1 + this x the rating or count).", ("--confidence",), low=0,
          expects=_FINITE),
    Param("unobserved_weight", 18.0, "float",
          "Total weight of the pairs not chosen, as a multiple of the number of chosen ones.",
          ("--unobserved-weight",), low=0, expects=_FINITE),
    Param("threshold", 4.0, "float",
          "Ratings at or above this are the chosen pairs ('none': every pair, weighted by "
          "its value).", ("--threshold",), optional=True, metavar="FLOAT|none",
          expects="a finite number or None"),
    Param("cg_steps", 3, "int", "Conjugate-gradient steps per row and epoch.",
          ("--cg-steps",), low=1, expects="a positive integer"),
    Param("ranking_factors", 64, "int", "Latent features of the hybrid's ranking part.",
          ("--ranking-factors",), low=1, expects="a positive integer"),
    Param("ranking_weight", 32.0, "float",
          "Weight of the hybrid's ranking part in its recommendation scores, in standard "
          "deviations of the training ratings (0: the rating model's lists; predictions "
          "are the rating part's whatever the weight).",
          ("--ranking-weight",), low=0, expects=_FINITE),
    # the baselines (recsys.models.baselines)
    Param("user_damping", 15.0, "float", low=0, expects=_FINITE),
    Param("item_damping", 10.0, "float", low=0, expects=_FINITE),
]}


def defaults(names) -> dict:
    """{name: default} for ``names``."""
    return {name: PARAMS[name].default for name in names}


def check_params(estimator) -> None:
    """Raise ValueError naming the first parameter of ``estimator`` outside its range.

    An estimator may override a table entry (same name, other default or choices) in its
    ``_PARAM_SPECS``.
    """
    specs = getattr(estimator, "_PARAM_SPECS", {})
    for name in estimator._PARAMS:
        spec = specs.get(name) or PARAMS[name]
        spec.check(getattr(estimator, name))


class Params:
    """The scikit-learn parameter protocol shared by every estimator: get_params,
    set_params, check_params, and a repr that shows them. Estimators list their
    hyperparameters in ``_PARAMS``, stored verbatim by ``__init__``."""

    _PARAMS: tuple = ()

    def get_params(self, deep: bool = True) -> dict:
        return {name: getattr(self, name) for name in self._PARAMS}

    def set_params(self, **params):
        for name, value in params.items():
            if name not in self._PARAMS:
                raise ValueError(f"unknown parameter {name!r}; expected one of {self._PARAMS}")
            setattr(self, name, value)
        return self

    def check_params(self) -> None:
        """Raise ValueError if a parameter is outside its range (``fit`` calls this)."""
        check_params(self)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"
