"""SVD++ (Koren 2008): biased matrix factorization with implicit feedback.

r̂_ui = mu + b_u + b_i + q_i · (p_u + |N(u)|^(-1/2) Σ_{j∈N(u)} y_j), N(u) the items user u
rated in training. The maths and the kernel are in ``recsys.kernels.cpu.svdpp``. The
implicit part is folded into the user factors after training
(``recsys.training.trainers.SVDppTrainer``), so the fitted model keeps the plain form and
predicts, recommends, saves and serves like FunkSVD. The kernel is serial.
"""

from __future__ import annotations

from recsys.models import params as P
from recsys.models.factorization import FactorizationEstimator


class SVDpp(FactorizationEstimator):
    """SVD++ trained by SGD, user by user. Parameters as FunkSVD's (no ``method`` and no
    ``grid``), plus ``reg_implicit``: regularization γ_y of the implicit item factors
    (None: same as ``reg``). ``n_jobs`` only sets the threads of the parallel helpers."""

    _PARAMS = ("n_factors", "n_epochs", "lr", "reg", "reg_bias", "reg_implicit", "init_std",
               "seed", "dtype", "n_jobs", "lr_schedule", "lr_decay", "early_stopping")
    #: SVD++ keeps the settings it was tuned with: a small constant step for 85 epochs
    #: (its user-by-user updates of the implicit factors are not tuned for FunkSVD's decay).
    _PARAM_SPECS = {
        "n_factors": P.PARAMS["n_factors"].but(default=200),
        "n_epochs": P.PARAMS["n_epochs"].but(default=85),
        "lr": P.PARAMS["lr"].but(default=0.005),
        "reg_bias": P.PARAMS["reg_bias"].but(default=0.01),
        "lr_schedule": P.PARAMS["lr_schedule"].but(default="constant"),
        "lr_decay": P.PARAMS["lr_decay"].but(default=0.95),
    }
    _D = {**P.defaults(_PARAMS), **{n: s.default for n, s in _PARAM_SPECS.items()}}
    _METHOD = "svdpp"

    def __init__(self, n_factors: int = _D["n_factors"], n_epochs: int = _D["n_epochs"],
                 lr: float = _D["lr"], reg: float | str = _D["reg"],
                 reg_bias: float | None = _D["reg_bias"],
                 reg_implicit: float | None = _D["reg_implicit"],
                 init_std: float = _D["init_std"], seed: int = _D["seed"],
                 dtype: str = _D["dtype"], n_jobs: int | None = None,
                 lr_schedule: str = _D["lr_schedule"], lr_decay: float = _D["lr_decay"],
                 early_stopping: int = _D["early_stopping"]):
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.lr = lr
        self.reg = reg
        self.reg_bias = reg_bias
        self.reg_implicit = reg_implicit
        self.init_std = init_std
        self.seed = seed
        self.dtype = dtype
        self.n_jobs = n_jobs
        self.lr_schedule = lr_schedule
        self.lr_decay = lr_decay
        self.early_stopping = early_stopping


    @classmethod
    def params_from_file(cls, params: dict, format_version: int) -> dict:
        if format_version < 2:  # SVD++ was FunkSVD(method='svdpp')
            params.pop("method", None)
            params.pop("grid", None)
        return params
