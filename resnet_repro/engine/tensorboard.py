"""TensorBoard event files of a run's metrics rows: the same scalars whether written live by
the trainer (`tracking.tensorboard: true`) or afterwards from a finished run's
metrics.parquet (`resnet-repro tensorboard`), which stays the one source of truth.

One folder per run ({model}_seed{seed}), one point per evaluation at step = iteration:
loss/{train,val,test}, error_pct/{train,val,test}, lr and images_per_second. A run that
(re)starts rewrites its folder: the old event files are removed and the rows of its
checkpoint written again before training goes on, so no file ever holds a step twice, and
the new file starts with a restart marker (SessionLog.START at step 0) that makes a
TensorBoard already showing the old file drop what it had read.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..config import ConfigError

# metrics column -> TensorBoard tag
SCALARS = {
    "train_loss": "loss/train",
    "val_loss": "loss/val",
    "test_loss": "loss/test",
    "train_error_pct": "error_pct/train",
    "val_error_pct": "error_pct/val",
    "test_error_pct": "error_pct/test",
    "lr": "lr",
    "images_per_second": "images_per_second",
}
# A training-window row (engine/windows.py) has only training values; its own tags keep the
# finer curve apart from the epoch means, which end at the same iterations.
WINDOW_SCALARS = {"train_loss": "loss/train_window", "train_error_pct": "error_pct/train_window"}
EVENT_FILES = "events.out.tfevents.*"


def _summary_writer(logdir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError(
            "TensorBoard files need the tensorboard package: pip install -e '.[tensorboard]' "
            "(or set tracking.tensorboard: false)"
        ) from None
    logdir.mkdir(parents=True, exist_ok=True)
    for old in logdir.glob(EVENT_FILES):
        old.unlink()
    return SummaryWriter(str(logdir), purge_step=0)


def _add_row(writer, row: Mapping[str, Any]) -> None:
    step = int(row["iteration"])
    scalars = WINDOW_SCALARS if row.get("kind") == "window" else SCALARS
    for column, tag in scalars.items():
        value = row.get(column)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue  # no validation split; a diverged epoch's loss stays out of the chart
        writer.add_scalar(tag, float(value), step)


class RunEvents:
    """The live event file of one training run."""

    def __init__(self, logdir: Path):
        self.logdir = Path(logdir)
        self.writer = None

    def restart(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Start the folder afresh with the rows the run resumes from."""
        self.close()
        self.writer = _summary_writer(self.logdir)
        for row in rows:
            _add_row(self.writer, row)
        self.writer.flush()

    def add(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            _add_row(self.writer, row)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def write_run_events(rows: Iterable[Mapping[str, Any]], logdir: Path) -> None:
    """A finished run's event folder from its metrics rows (replacing what was there)."""
    events = RunEvents(logdir)
    events.restart(rows)
    events.close()
