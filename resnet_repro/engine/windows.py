"""Training loss and error over fixed windows of iterations, for Figure 6's dashed curves.

The paper's Figure 6 draws the training error against iterations; an epoch mean gives a short
study only a handful of points. `TrainingWindows` sums each step's loss and wrong predictions
on the device and reads them once per window of `length` iterations (one host sync per
window, none per step). Windows are fixed in iterations, not epochs: window j covers the
iterations j*length + 1 .. (j+1)*length of the run, across epoch boundaries; the last one ends
with the run and may be shorter. An open window's sums travel in the checkpoint
(`to_state` / `state=`), so a resumed run writes the same windows as an uninterrupted one; a
checkpoint without them (written before windows existed) starts a shorter window at the
resume.

Each closed window becomes a metrics row of kind "window" (`results.METRICS_SCHEMA`).
"""

from __future__ import annotations

import math
from typing import Any

import torch


class TrainingWindows:
    """Loss and error sums of the training batches of the current window, on the device."""

    def __init__(
        self,
        length: int,
        device: torch.device,
        iteration: int,
        state: dict[str, Any] | None = None,
    ):
        if length < 1:
            raise ValueError(f"a training window holds at least 1 iteration, not {length}")
        self.length = length
        self.start = iteration  # iterations done when the open window began
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.wrong = torch.zeros((), dtype=torch.int64, device=device)
        self.seen = 0
        if state is not None and state.get("start") is not None:
            self.start = int(state["start"])
            self.loss_sum += float(state["loss_sum"])
            self.wrong += int(state["wrong"])
            self.seen = int(state["seen"])

    def add(
        self, loss: torch.Tensor, wrong: torch.Tensor, n: int, iteration: int, end: int
    ) -> dict[str, Any] | None:
        """Add one step (mean `loss` and `wrong` count of `n` images, device tensors) done as
        iteration number `iteration` (1-based) of a run of `end` iterations. Returns the
        window's row values when this step closes it (at a multiple of the length, or at
        `end`), else None."""
        self.loss_sum += loss.double() * n
        self.wrong += wrong
        self.seen += n
        if iteration % self.length == 0 or iteration >= end:
            return self.close(iteration)
        return None

    def close(self, iteration: int) -> dict[str, Any] | None:
        """The open window's row values (one host sync), then a new window from `iteration`;
        None for an empty window."""
        if self.seen == 0:
            self.start = iteration
            return None
        loss_sum, wrong = torch.stack([self.loss_sum, self.wrong.double()]).tolist()
        loss = loss_sum / self.seen
        row = {
            "kind": "window",
            "iteration": iteration,
            "window_iterations": iteration - self.start,
            "train_loss": loss,
            "train_error_pct": 100.0 * wrong / self.seen,
            "status": "ok" if math.isfinite(loss) else "diverged",
        }
        self.loss_sum.zero_()
        self.wrong.zero_()
        self.seen = 0
        self.start = iteration
        return row

    def to_state(self) -> dict[str, Any]:
        """The open window, for the checkpoint (one host sync; checkpoints are rare)."""
        loss_sum, wrong = torch.stack([self.loss_sum, self.wrong.double()]).tolist()
        return {"start": self.start, "loss_sum": loss_sum, "wrong": int(wrong), "seen": self.seen}
