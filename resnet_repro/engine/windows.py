"""Training loss and error over fixed windows of iterations, for Figure 6's dashed curves.

The paper's Figure 6 draws the training error against iterations; an epoch mean gives a short
study only a handful of points. `TrainingWindows` holds each window's sums of the steps' loss
and wrong predictions on the device and reads them once per window of `length` iterations
(one host sync per window, none per step). The trainer lets the step add into them inside its
graph (`step.TrainStep.add_meter`), so a window costs no launch per step. Windows are fixed
in iterations, not epochs: window j covers the iterations j*length + 1 .. (j+1)*length of the
run, across epoch boundaries; the last one ends with the run and may be shorter. An open
window's sums travel in the checkpoint (`to_state` / `state=`), so a resumed run writes the
same windows as an uninterrupted one; a checkpoint without them (written before windows
existed) starts a shorter window at the resume.

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
        # Shape (1,) as the step's own meter: a compiled step guards on a 0-d float's value.
        self.loss_sum = torch.zeros(1, dtype=torch.float64, device=device)
        self.wrong = torch.zeros((), dtype=torch.int64, device=device)
        self.seen = 0
        if state is not None and state.get("start") is not None:
            self.start = int(state["start"])
            self.loss_sum += float(state["loss_sum"])
            self.wrong += int(state["wrong"])
            self.seen = int(state["seen"])

    def advance(self, n: int, iteration: int, end: int) -> dict[str, Any] | None:
        """One step of `n` images, done as iteration number `iteration` (1-based) of a run of
        `end` iterations, whose loss (times `n`) and wrong count the step has added into
        `loss_sum` and `wrong` itself. Returns the window's row values when this step closes
        it (at a multiple of the length, or at `end`), else None."""
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
        loss_sum, wrong = torch.cat([self.loss_sum, self.wrong.double().view(1)]).tolist()
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
        loss_sum, wrong = torch.cat([self.loss_sum, self.wrong.double().view(1)]).tolist()
        return {"start": self.start, "loss_sum": loss_sum, "wrong": int(wrong), "seen": self.seen}
