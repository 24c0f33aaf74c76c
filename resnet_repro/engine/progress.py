"""What a training run tells the outside while it trains: progress.json beside its checkpoint
(for `resnet-repro status`) and, with `tracking.tensorboard`, its scalars for TensorBoard.

progress.json (layout: `runstate`) is rewritten atomically when the run starts or resumes and
after every evaluation, once the checkpoint of that evaluation is saved, so the iteration it
names is the one a resume starts from. It holds a few hundred bytes, never a tensor.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..config import Study, data_selection
from ..results import write_json
from ..runstate import PROGRESS_FILE, PROGRESS_VERSION, summarize_rows, this_boot
from .devices import Placement


class RunProgress:
    """The progress file (and TensorBoard events) of one run; `started` once the resume
    state is loaded, `evaluated` after each epoch's checkpoint, `close` at the end."""

    def __init__(
        self,
        study: Study,
        folder: Path,
        identity: Mapping[str, Any],
        identity_hash: str,
        placement: Placement,
        total_iterations: int,
        steps_per_epoch: int,
    ):
        model, seed = identity["model"], identity["seed"]
        self.path = Path(folder) / PROGRESS_FILE
        self.total, self.per_epoch = total_iterations, steps_per_epoch
        self.fixed = {
            "version": PROGRESS_VERSION,
            "model": model,
            "seed": seed,
            "identity": dict(identity),
            "identity_hash": identity_hash,
            "data_selection": data_selection(study),
            "device": placement.name,
            "device_type": placement.device.type,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "boot_id": this_boot(),
            "started_at": time.time(),
        }
        self.tensorboard = None
        self.written = 0  # rows already in the TensorBoard folder
        if study.tracking.tensorboard:
            from .tensorboard import RunEvents

            self.tensorboard = RunEvents(
                Path(study.tracking.tensorboard_dir) / f"{model}_seed{seed}"
            )

    def summary(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        return summarize_rows(rows, self.total, self.per_epoch)

    def _write(self, rows: Sequence[Mapping[str, Any]]) -> None:
        write_json({**self.fixed, **self.summary(rows), "updated_at": time.time()}, self.path)

    def started(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """The run (re)starts after `rows` (those of its checkpoint)."""
        if self.tensorboard is not None:
            self.tensorboard.restart(rows)
        self.written = len(rows)
        self._write(rows)

    def evaluated(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """An epoch ended with its evaluation (rows[-1], after the epoch's training-window
        rows), and its checkpoint is saved."""
        if self.tensorboard is not None:
            self.tensorboard.add(rows[self.written :])
        self.written = len(rows)
        self._write(rows)

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
