"""The trainer's host work around each training step, in one place for the trainer
(`train.train_run`) and the benchmark's trainer variant (`bench.variants.measure_trainer`),
so that the benchmark times what training runs.

Per step: the scheduled learning rate, set on the step only when it changes (a fill of a
device tensor, `step.TrainStep.set_lr`); the step itself; the progress bar; the training
window, whose sums the step adds inside its graph and which is read on the host once per
window (`windows.TrainingWindows`); and while the deepest nets warm up, the warm-up's check
(`schedule.WarmupState`). Per epoch: the epoch's randomness, drawn into the step's buffers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import progressbar
from ..config import TrainConfig
from .schedule import WarmupState, lr_at
from .step import TrainStep
from .windows import TrainingWindows


class StepLoop:
    """The steps of a run of `total` iterations from `iteration` on, epoch by epoch:
    `start_epoch`, then one call per step until `epoch_done`. A call returns the training
    window's row values when that step closes a window, else None."""

    def __init__(
        self,
        step: TrainStep,
        train: TrainConfig,
        total: int,
        iteration: int = 0,
        warm: WarmupState | None = None,
        window_state: dict[str, Any] | None = None,
        log: Callable[[str], None] = print,
        bar: progressbar.Bar = progressbar.NULL,
    ):
        device = step.placement.device
        self.step, self.train, self.total, self.iteration = step, train, total, iteration
        self.per_epoch = step.draws.steps
        self.warm = warm if warm is not None else WarmupState.start(False, device)
        self.log, self.bar = log, bar
        self.windows = TrainingWindows(train.window_iterations, device, iteration, window_state)
        # Before the first step: a compiled step is traced with the meters it has then.
        step.add_meter(self.windows.loss_sum, self.windows.wrong)
        self.epoch = 0
        self.left = 0  # steps left in the current epoch
        self.lr: float | None = None  # the rate of the last step

    @property
    def epoch_done(self) -> bool:
        return self.left <= 0

    def start_epoch(self, seed: int, epoch: int) -> int:
        """Draw epoch `epoch`'s randomness; returns its steps (the last epoch of a run may be
        cut short by the end of the schedule)."""
        self.epoch = epoch
        self.left = min(self.per_epoch, self.total - self.iteration)
        self.step.start_epoch(seed, epoch)
        self.lr = None  # an epoch's first step sets the rate afresh
        return self.left

    def __call__(self) -> dict[str, Any] | None:
        train, step = self.train, self.step
        lr = lr_at(self.iteration, train, self.warm.active, self.per_epoch)
        if lr != self.lr:
            self.lr = lr
            step.set_lr(lr)
        _, batch_wrong = step()
        self.iteration += 1
        self.left -= 1
        self.bar.advance()
        window = self.windows.advance(step.batch_size, self.iteration, self.total)
        if self.warm.active:
            # Section 4.2: "0.01 to warm up the training until the training error is below
            # 80% (about 400 iterations), and then go back to 0.1".
            reason = self.warm.step(
                self.iteration, batch_wrong, step.batch_size, train, self.per_epoch
            )
            if reason is not None:
                self.log(f"warm-up ends at iteration {self.iteration}: {reason}")
        return window
