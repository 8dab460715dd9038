"""Learning-rate schedules, decided in Python between epochs (kernels get a number).

* ``constant``: λ_t = λ.
* ``decay`` (the default, λ 0.03, d 0.88): λ_t = λ · d^t after t epochs (d = ``lr_decay``):
  big steps while far from the optimum, small ones to settle into it instead of rattling
  around it. The total step Σ_t λ_t < λ / (1 − d) is bounded, so the epochs after the best
  one move the model little.
* ``bold`` (the "bold driver", Battiti 1989): after each epoch compare the training loss J
  with the last accepted epoch's. If it fell, accept and grow λ by ``BOLD_UP``; if it rose,
  reject the epoch (the caller restores the parameters) and shrink λ by ``BOLD_DOWN``.
* ``adagrad``: λ is the base rate η of per-row adaptive steps, which the kernel scales by
  each row's accumulated squared gradients (``recsys.kernels.cpu.sgd``); η itself stays.

**Warm-up** (``warmup_epochs`` W, method sgd under ``decay``; default 3):
the first W epochs take AdaGrad steps at base rate ``warmup_lr`` (default 0.1), with the
factors regularized by ``warmup_reg`` (default 0.065) instead of ``reg``, and the
schedule starts after them, λ_t = λ · d^(t − W). Why: from the small initial factors that
keep rarely rated rows quiet (init_std 0.005), plain SGD first sits on a plateau where
only the biases learn, until the factors have grown, and the rate decays while it waits.
The plateau is longest where rows have few ratings (at λ 0.03: MovieLens 100k's training
folds about 7 epochs, a generated set of the same shape about 6, a generated set with 3x
the ratings per row 3). AdaGrad's steps, normalized per row, leave it in about 3 epochs
whatever the density, and plain SGD with its decaying rate then settles the model better
than AdaGrad alone does (MovieLens 100k u1..u5: 0.9043 in 13 epochs, 3 of them warm-up,
against 0.9046 in 35 epochs of 0.03 × 0.94 without; AdaGrad alone at its best setting
0.9058; docs/results.md, "The AdaGrad warm-up"). With ``reg='auto'`` the warm-up runs
once for all of its trials, and the final fit starts after it
(``recsys.models.regsearch``; the defaults, 15 epochs of which 3 warm-up, 0.9046).
"""

from __future__ import annotations

import math

SCHEDULES = ("constant", "decay", "bold", "adagrad")
#: The schedule a warm-up precedes (a constant rate is plain SGD throughout, as Funk ran it).
WARMED = ("decay",)


def warmup_run(method: str, schedule: str, warmup_epochs) -> int:
    """The warm-up epochs a fit of ``method`` under ``schedule`` runs when asked for
    ``warmup_epochs``: all of them for SGD under a schedule that takes one, else none
    (the only place that rule is written)."""
    return int(warmup_epochs or 0) if method == "sgd" and schedule in WARMED else 0
#: Bold driver factors: +5% after an epoch that lowers the loss, halve after one that raises it.
BOLD_UP = 1.05
BOLD_DOWN = 0.5


class LearningRate:
    """The learning rate of the coming epoch, updated by ``after_epoch``."""

    def __init__(self, lr: float, schedule: str = "constant", decay: float = 0.95,
                 warmup: int = 0, warmup_lr: float = 0.1):
        if schedule not in SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {', '.join(SCHEDULES)}, "
                             f"not {schedule!r}")
        if warmup and schedule not in WARMED:
            raise ValueError(f"a warm-up needs lr_schedule {' or '.join(WARMED)}, not "
                             f"{schedule!r}")  # the trainer passes 0 for the others
        self.initial = float(lr)
        self.schedule = schedule
        self.decay = float(decay)
        self.warmup = int(warmup)
        self.warmup_lr = float(warmup_lr)
        self.epochs = 0
        self.rate = self._rate()
        self.best_loss = math.inf

    @property
    def warming(self) -> bool:
        """Whether the coming epoch is a warm-up epoch (AdaGrad steps at ``warmup_reg``)."""
        return self.epochs < self.warmup

    @property
    def adaptive(self) -> bool:
        """Whether the coming epoch takes AdaGrad steps (the adagrad schedule or a warm-up
        epoch)."""
        return self.schedule == "adagrad" or self.warming

    def _rate(self) -> float:
        if self.epochs < self.warmup:
            return self.warmup_lr
        if self.schedule == "decay":
            return self.initial * self.decay ** (self.epochs - self.warmup)
        return self.initial

    def start(self, loss: float) -> None:
        """Give the loss before the first epoch, so the bold driver can reject that epoch."""
        self.best_loss = float(loss)

    @property
    def needs_loss(self) -> bool:
        return self.schedule == "bold"

    def after_epoch(self, loss: float | None = None) -> bool:
        """Move to the next epoch's rate; False when the epoch must be undone (bold driver)."""
        self.epochs += 1
        if self.schedule == "bold":
            if loss is None:
                raise ValueError("the bold driver needs the epoch's loss")
            if math.isfinite(loss) and loss < self.best_loss:
                self.best_loss = loss
                self.rate *= BOLD_UP
                return True
            self.rate *= BOLD_DOWN
            return False
        self.rate = self._rate()
        return True


def ended_rate(history: list, lr: float, decay: float, n_epochs: int,
               warmup: int = 0) -> float:
    """The plain-SGD rate a fit under ``decay`` ended with: its last plain epoch's (from
    the fit's ``history``, whose warm-up epochs are marked ``adaptive``), or, with no
    history kept, λ·d^(n−1−W) from its parameters (``warmup`` W). A fit that ran only
    warm-up epochs had not started its schedule: λ."""
    if not history:
        if int(n_epochs) <= warmup:
            return float(lr)
        return float(lr) * float(decay) ** max(int(n_epochs) - 1 - warmup, 0)
    plain = [h for h in history if not h.get("adaptive")]
    if not plain:
        return float(lr)
    if plain[-1].get("lr") is None:
        return float(lr) * float(decay) ** max(len(plain) - 1, 0)
    return float(plain[-1]["lr"])


def continued_rate(history: list, lr: float, decay: float, n_epochs: int, warmup: int,
                   next_decay: float) -> float:
    """The first rate of a warm start that goes on with a fit's decay schedule: the rate
    the fit ended with times ``next_decay`` (the continuation's factor), or, if the fit
    ran only its warm-up, the schedule's first rate λ (it had not begun)."""
    if history:
        begun = any(not h.get("adaptive") for h in history)
    else:
        begun = int(n_epochs) > warmup
    ended = ended_rate(history, lr, decay, n_epochs, warmup)
    return float(next_decay) * ended if begun else ended
