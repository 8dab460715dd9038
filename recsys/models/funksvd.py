"""The FunkSVD estimator: biased matrix factorization trained by SGD, scikit-learn style.

Hyperparameters are stored verbatim by ``__init__`` and checked by ``fit`` against the
parameter table (``recsys.models.params``); the learned state is a ``FactorState``
(``state_``). The update rule itself is in ``recsys.kernels.cpu.sgd``; the training loop
in ``recsys.training.loop``.
"""

from __future__ import annotations

from recsys.models import params as P
from recsys.models.factorization import FactorizationEstimator


class FunkSVD(FactorizationEstimator):
    """Biased Funk-SVD: r̂_ui = mu + b_u + b_i + p_u·q_i, fitted by stochastic gradient descent.

    Parameters
    ----------
    n_factors : latent features k.
    n_epochs : passes over the training ratings, the warm-up's included (default 15).
    lr : learning rate λ (of the first epoch under a schedule; after the warm-up).
    reg : regularization γ of the factors, or 'auto' (default): chosen on 10% of the
        training ratings held out, from a ladder around the MovieLens-tuned 0.065
        (``recsys.training.autoreg``; three short trials on MovieLens-like data); pass a
        number to skip it. The γ used is ``reg_`` after fitting, every trial in
        ``reg_trials_``.
    reg_bias : regularization of the biases (None: same as the factors' γ).
    init_std : standard deviation of the normal initial factors (biases start at 0).
    seed : seed of every random choice (initial factors, block assignment, visiting order).
    dtype : 'float32' (default) or 'float64' factors.
    n_jobs : threads (None: all cores). The model does not depend on it, bit for bit.
    device : where SGD runs (method 'sgd' only): 'cpu' (default); 'cuda', an NVIDIA GPU,
        Hogwild over all its warps (fast; not bit-identical run to run); 'cuda-strata', a
        GPU in the CPU's stratum order (reproducible, and the CPU's model to float
        rounding, but only ``grid`` warps at once). GPUs need numba-cuda
        (``recsys.training.backends.cuda``); ``n_jobs`` does not apply to them.
    grid : ratings are grouped into grid × grid blocks (None: chosen from the sizes).
    method : 'sgd' (blocked SGD, default), 'funk' (Funk's one feature at a time, n_epochs
        passes per feature, clipped predictions) or 'gd' (full-batch gradient descent);
        see ``recsys.training.trainers``. SVD++ is its own model, ``recsys.SVDpp``.
    lr_schedule : 'decay' (default: λ·lr_decay^t, t counted from the end of the warm-up),
        'constant', 'bold' (bold driver) or 'adagrad' (per-row adaptive steps); see
        ``recsys.training.schedule``. The decay's total step Σ λ·d^t stays below
        λ/(1 − d) = 0.25 however many epochs run, so training past the best epoch costs
        little.
    lr_decay : factor per epoch of the 'decay' schedule (default 0.88). Under method
        'funk' the schedule starts again for every feature; Funk's own setting is
        'constant'.
    warmup_epochs : the first epochs of method 'sgd' under 'decay' take AdaGrad steps at
        base rate ``warmup_lr`` (defaults 3 and 0.1), so the factors leave their small
        start in a few epochs whatever the ratings per row; the schedule starts after
        them (``recsys.training.schedule``, "Warm-up"). 0: none. With ``reg='auto'``
        the warm-up runs once for all its trials (at γ 0.065, on their 90% of the
        ratings) and the final fit starts after it (its first ``history_`` entries say
        ``reg_trial``). Continuations
        (``init=``) and updates (``partial_fit``) do not warm up again. A fit on a Dask
        cluster cannot warm up: give it 0.
    warmup_lr : base rate η of the warm-up's AdaGrad steps.
    warmup_reg : γ of the factors during the warm-up (default 0.065, the reference of
        ``reg='auto'``); ``reg`` applies from the first plain epoch. One value for every
        ``reg``, so that ``reg='auto'``'s trials can share one warm-up and a pinned
        ``reg`` follows the procedure ``reg='auto'`` chose it in: on 10M generated
        ratings a pinned 0.01625 warmed up at 0.01625 gave RMSE 0.6078, warmed up at
        0.065 0.5946 (``recsys.models.regsearch``).
    early_stopping : stop after this many epochs (features, for 'funk') without a better
        validation RMSE and restore the best epoch's parameters (0: off). Without a
        ``validation`` set, 5% of the training ratings are held out for it.

    Predictions are clipped to the rating scale seen in training. An unknown user falls
    back to mu + b_i, an unknown item to mu + b_u, and both unknown to mu (unless
    ``strict``).
    """

    _PARAMS = ("n_factors", "n_epochs", "lr", "reg", "reg_bias", "init_std", "seed", "dtype",
               "n_jobs", "grid", "method", "lr_schedule", "lr_decay", "warmup_epochs",
               "warmup_lr", "warmup_reg", "early_stopping", "device")
    _D = P.defaults(_PARAMS)

    def __init__(self, n_factors: int = _D["n_factors"], n_epochs: int = _D["n_epochs"],
                 lr: float = _D["lr"], reg: float | str = _D["reg"],
                 reg_bias: float | None = _D["reg_bias"], init_std: float = _D["init_std"],
                 seed: int = _D["seed"], dtype: str = _D["dtype"], n_jobs: int | None = None,
                 grid: int | None = None, method: str = _D["method"],
                 lr_schedule: str = _D["lr_schedule"], lr_decay: float = _D["lr_decay"],
                 warmup_epochs: int = _D["warmup_epochs"], warmup_lr: float = _D["warmup_lr"],
                 warmup_reg: float = _D["warmup_reg"],
                 early_stopping: int = _D["early_stopping"], device: str = _D["device"]):
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.lr = lr
        self.reg = reg
        self.reg_bias = reg_bias
        self.init_std = init_std
        self.seed = seed
        self.dtype = dtype
        self.n_jobs = n_jobs
        self.grid = grid
        self.method = method
        self.lr_schedule = lr_schedule
        self.lr_decay = lr_decay
        self.warmup_epochs = warmup_epochs
        self.warmup_lr = warmup_lr
        self.warmup_reg = warmup_reg
        self.early_stopping = early_stopping
        self.device = device

    def check_params(self) -> None:
        if self.method == "svdpp":
            raise ValueError("method must be one of sgd, funk, gd, not 'svdpp': SVD++ is its "
                             "own model, recsys.SVDpp")
        super().check_params()
        if self.device != "cpu" and self.method != "sgd":
            raise ValueError(f"device {self.device!r} trains method sgd only, not "
                             f"{self.method!r}")


    @classmethod
    def params_from_file(cls, params: dict, format_version: int) -> dict:
        if format_version < 2:  # FunkSVD then also took SVD++'s parameter
            params.pop("reg_implicit", None)
        return params
