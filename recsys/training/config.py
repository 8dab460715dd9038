"""TrainConfig: everything a trainer and a backend need, and nothing of the estimator.

A frozen value of plain numbers and strings, so it can be pickled to another process or
machine and compared for equality. Regularization values are the resolved ones (a number
for ``reg`` after ``reg='auto'`` chose one; ``reg_bias`` and ``reg_implicit`` no longer
None).
"""

from __future__ import annotations

from dataclasses import dataclass

DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class TrainConfig:
    method: str = "sgd"  # the trainer, by name (recsys.training.trainers.TRAINERS)
    n_factors: int = 128
    n_epochs: int = 15
    lr: float = 0.03
    reg: float = 0.065
    reg_bias: float = 0.05
    reg_implicit: float = 0.005
    init_std: float = 0.005
    seed: int = 0
    dtype: str = "float32"
    n_jobs: int | None = None  # threads; None: all cores
    grid: int | None = None  # blocks per side of the rating grid; None: chosen from sizes
    lr_schedule: str = "decay"
    lr_decay: float = 0.88
    warmup_epochs: int = 3  # AdaGrad epochs before the schedule (method sgd; schedule.py)
    warmup_lr: float = 0.1
    warmup_reg: float = 0.065  # γ of the factors during the warm-up (schedule.py)
    early_stopping: int = 0
    backend: str = "cpu"  # where SGD runs (recsys.training.backends: cpu, cuda, cuda-strata)
    # the ranking objective (trainer 'ials'; recsys.kernels.cpu.wals)
    unobserved_weight: float = 0.0  # w0 on every pair not chosen
    cg_steps: int = 3  # conjugate-gradient steps per row and half-epoch

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}")
