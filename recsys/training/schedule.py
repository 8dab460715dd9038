"""Learning-rate schedules, decided in Python between epochs (kernels get a number).

* ``constant``: λ_t = λ.
* ``decay``: λ_t = λ · d^t after t epochs (d = ``lr_decay``, e.g. 0.95): big steps while
  far from the optimum, small ones to settle into it instead of rattling around it.
* ``bold`` (the "bold driver", Battiti 1989): after each epoch compare the training loss J
  with the last accepted epoch's. If it fell, accept and grow λ by ``BOLD_UP``; if it rose,
  reject the epoch (the caller restores the parameters) and shrink λ by ``BOLD_DOWN``.
* ``adagrad``: λ is the base rate η of per-row adaptive steps, which the kernel scales by
  each row's accumulated squared gradients (``recsys.kernels.cpu.sgd``); η itself stays.
"""

from __future__ import annotations

import math

SCHEDULES = ("constant", "decay", "bold", "adagrad")
#: Bold driver factors: +5% after an epoch that lowers the loss, halve after one that raises it.
BOLD_UP = 1.05
BOLD_DOWN = 0.5


class LearningRate:
    """The learning rate of the coming epoch, updated by ``after_epoch``."""

    def __init__(self, lr: float, schedule: str = "constant", decay: float = 0.95):
        if schedule not in SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {', '.join(SCHEDULES)}, "
                             f"not {schedule!r}")
        self.initial = float(lr)
        self.rate = float(lr)
        self.schedule = schedule
        self.decay = float(decay)
        self.epochs = 0
        self.best_loss = math.inf

    def start(self, loss: float) -> None:
        """Give the loss before the first epoch, so the bold driver can reject that epoch."""
        self.best_loss = float(loss)

    @property
    def needs_loss(self) -> bool:
        return self.schedule == "bold"

    def after_epoch(self, loss: float | None = None) -> bool:
        """Move to the next epoch's rate; False when the epoch must be undone (bold driver)."""
        self.epochs += 1
        if self.schedule == "decay":
            self.rate = self.initial * self.decay ** self.epochs
        elif self.schedule == "bold":
            if loss is None:
                raise ValueError("the bold driver needs the epoch's loss")
            if math.isfinite(loss) and loss < self.best_loss:
                self.best_loss = loss
                self.rate *= BOLD_UP
                return True
            self.rate *= BOLD_DOWN
            return False
        return True
