"""The schedule of section 4.2 as pure functions (learning rate per iteration, warm-up,
epoch length and seeds), and the warm-up's running state.

Section 4.2: lr 0.1, divided by 10 at 32k and 48k iterations, stop at 64k; the 110-layer
ResNet warms up at lr 0.01 "until the training error is below 80% (about 400 iterations)".
The ImageNet-style study counts epochs and anneals by cosine instead (`scheduled_lr`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .. import basics
from ..basics import steps_per_epoch  # noqa: F401 (part of the schedule's interface)
from ..config import TrainConfig, WarmupConfig

# ---------------------------------------------------------------- pure schedule functions


def warmup_applies(arch: str, depth: int, warmup: WarmupConfig) -> bool:
    """Section 4.2 warms up the 110-layer ResNet ("we use 0.01 to warm up the training");
    by default residual nets of depth >= 110 (1202 too), not plain-110."""
    return warmup.min_depth is not None and arch in warmup.archs and depth >= warmup.min_depth


def lr_at(
    iteration: int, train: TrainConfig, warming_up: bool = False, per_epoch: int = 1
) -> float:
    """Learning rate of the step that starts at `iteration` (0-based).

    Section 4.2: start at 0.1, divide by 10 at 32k and 48k iterations; during the warm-up
    of the deepest ResNets the rate is 0.01 instead. The milestones hold whatever happens:
    a warm-up never lasts past the first one. Other schedules: `scheduled_lr`.
    """
    if warming_up and not milestone_passed(iteration, train, per_epoch):
        return train.warmup.lr
    return scheduled_lr(iteration, train, per_epoch)


def _schedule_time(iteration: int, train: TrainConfig, per_epoch: int) -> tuple[int, int]:
    """(t, end) in the schedule's unit: iterations, or whole epochs with train.epochs."""
    if train.epochs is not None:
        return iteration // per_epoch, train.epochs
    return iteration, train.iterations


def milestone_passed(iteration: int, train: TrainConfig, per_epoch: int = 1) -> bool:
    t, _ = _schedule_time(iteration, train, per_epoch)
    return any(t >= m for m in train.lr_milestones)


def warmup_end(
    iteration: int, window_error_pct: float | None, train: TrainConfig, per_epoch: int = 1
) -> str | None:
    """Why the warm-up ends after `iteration` steps, or None while it goes on.

    `window_error_pct` is the training error over the last `check_every` iterations, given
    at the iterations where it is checked (None elsewhere)."""
    w = train.warmup
    if window_error_pct is not None and window_error_pct < w.until_train_error_pct:
        return (
            f"training error {window_error_pct:.1f}% over the last {w.check_every} "
            f"iterations is below {w.until_train_error_pct:g}%"
        )
    if milestone_passed(iteration, train, per_epoch):
        return f"the first lr milestone ({train.lr_milestones[0]}) is reached"
    if iteration >= w.max_iterations:
        return (
            f"the cap of train.warmup.max_iterations = {w.max_iterations} iterations is "
            f"reached without the training error falling below "
            f"{w.until_train_error_pct:g}%"
        )
    return None


def scheduled_lr(iteration: int, train: TrainConfig, per_epoch: int = 1) -> float:
    """The schedule's rate at `iteration` (0-based), `per_epoch` iterations to an epoch.

    With train.iterations the schedule counts iterations (the paper's); with train.epochs it
    counts whole epochs, the rate changing at epoch starts (as a per-epoch
    `torch.optim.lr_scheduler` step does in the ImageNet-style recipe). "step": lr times
    lr_decay per milestone passed; "cosine": lr * (1 + cos(pi t / T)) / 2, from lr down to 0
    at the end T (Loshchilov & Hutter 2017, SGDR, without restarts; CosineAnnealingLR with
    eta_min 0).
    """
    t, end = _schedule_time(iteration, train, per_epoch)
    if train.schedule == "cosine":
        return train.lr * 0.5 * (1.0 + math.cos(math.pi * min(t, end) / end))
    decays = sum(1 for m in train.lr_milestones if t >= m)
    return train.lr * train.lr_decay**decays


def total_iterations(train: TrainConfig, n_train: int) -> int:
    """Length of the run in iterations: train.iterations, or train.epochs full epochs
    (`basics.total_iterations`, which `status` counts with too)."""
    return basics.total_iterations(train.iterations, train.epochs, n_train, train.batch_size)


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of an epoch's shuffle and augmentation, so a resumed run draws exactly what an
    uninterrupted one would."""
    return int(
        np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0] % (2**63)
    )


class WarmupState:
    """Where the warm-up stands: whether it is on, and the training error of the current
    check window, which runs across epoch boundaries (section 4.2 judges the training error,
    not an epoch's). The window's count stays on the device between checks."""

    def __init__(
        self,
        active: bool,
        applied: bool,
        wrong: torch.Tensor,
        seen: int,
        ended_at: int | None = None,
        reason: str | None = None,
    ):
        self.active, self.applied, self.wrong, self.seen = active, applied, wrong, seen
        self.ended_at, self.reason = ended_at, reason

    @classmethod
    def start(cls, applies: bool, device: torch.device) -> WarmupState:
        return cls(applies, applies, torch.zeros((), dtype=torch.int64, device=device), 0)

    @classmethod
    def restore(cls, state: dict[str, Any], device: torch.device) -> WarmupState:
        return cls(
            state["active"],
            state["applied"],
            torch.tensor(state["window_wrong"], dtype=torch.int64, device=device),
            state["window_seen"],
            state["ended_at"],
            state["reason"],
        )

    def step(
        self,
        iteration: int,
        batch_wrong: torch.Tensor,
        n: int,
        train: TrainConfig,
        per_epoch: int = 1,
    ) -> str | None:
        """Count one step's wrong predictions; at a check (every `check_every` iterations,
        the only host read of a warm-up step) or at the cap or first milestone, decide."""
        self.wrong += batch_wrong
        self.seen += n
        window_error = None
        if iteration % train.warmup.check_every == 0:
            window_error = 100.0 * self.wrong.item() / self.seen
            self.wrong.zero_()
            self.seen = 0
        reason = warmup_end(iteration, window_error, train, per_epoch)
        if reason is not None:
            self.active, self.ended_at, self.reason = False, iteration, reason
        return reason

    def to_state(self) -> dict[str, Any]:
        return {
            "active": self.active,
            "applied": self.applied,
            "window_wrong": int(self.wrong.item()),
            "window_seen": self.seen,
            "ended_at": self.ended_at,
            "reason": self.reason,
        }

    def summary(self) -> dict[str, Any]:
        return {"applied": self.applied, "ended_at_iteration": self.ended_at, "reason": self.reason}
