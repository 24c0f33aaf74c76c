"""How far a long job is: a progress bar on a terminal, plain lines with the time left in a
file.

`Bar(description, unit)` is a context manager with `start(total, done=0)` (the total may be
known only once the job has read its data), `advance(n=1)` and `say(message)`. Where its
stream (stdout by default) is a terminal it draws a rich progress bar, and what the job
prints meanwhile, stdout and stderr, goes above it. Anywhere else (a log file, as under
Snakemake) it writes one line every `interval` seconds, and one at the end when it wrote any:

    lesions_k resnet56: 120/301 evaluations (40%), 0:05:02 so far, about 0:07:35 left

`say` prints one line of the job's own; in a file such a line counts as news, so the next
progress line waits its full interval (the trainer's line after every epoch already says the
time left). The interval is `interval` seconds, else $RESNET_REPRO_PROGRESS_SECONDS, else 30.
`NULL` is a bar that shows nothing, for callers that want none.
"""

from __future__ import annotations

import os
import sys
import time
from typing import IO, Any

from .basics import hms

INTERVAL_ENV = "RESNET_REPRO_PROGRESS_SECONDS"
DEFAULT_INTERVAL = 30.0


def is_terminal(stream: IO[str]) -> bool:
    """Whether `stream` is a terminal, as rich decides it (so FORCE_COLOR, TTY_COMPATIBLE and
    the like count as they do for rich)."""
    from rich.console import Console

    return Console(file=stream).is_terminal


class Bar:
    def __init__(
        self,
        description: str,
        unit: str = "",
        *,
        stream: IO[str] | None = None,
        interval: float | None = None,
        enabled: bool = True,
    ):
        self.description, self.unit = description, unit
        self.stream = stream
        if interval is None:
            interval = float(os.environ.get(INTERVAL_ENV) or DEFAULT_INTERVAL)
        self.interval = interval
        self.enabled = enabled
        self.total: int | None = None
        self.completed = self._first = 0
        self._rich: Any = None
        self._task: Any = None
        self._started = self._last_line = time.monotonic()
        self._lines = 0

    # ------------------------------------------------------------ the context

    def __enter__(self) -> Bar:
        if not self.enabled:
            return self
        stream = self.stream or sys.stdout
        if is_terminal(stream):
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._rich = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(self.unit),
                TimeElapsedColumn(),
                TextColumn("so far,"),
                TimeRemainingColumn(),
                TextColumn("left"),
                console=Console(file=stream),
                refresh_per_second=4,
            )
            self._rich.start()
        return self

    def __exit__(self, kind, value, tb) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None
        elif kind is None and self._lines and self.total is not None:
            self._line(final=True)

    # ------------------------------------------------------------ progress

    def start(self, total: int, done: int = 0) -> None:
        """The job has `total` units, `done` of them already (a resumed run)."""
        self.total, self.completed, self._first = int(total), int(done), int(done)
        self._started = self._last_line = time.monotonic()
        if self._rich is not None:
            if self._task is not None:
                self._rich.remove_task(self._task)
            self._task = self._rich.add_task(self.description, total=total, completed=done)

    def advance(self, n: int = 1) -> None:
        self.completed += n
        if self._rich is not None:
            if self._task is not None:
                self._rich.advance(self._task, n)
        elif self.enabled and self.total is not None:
            if time.monotonic() - self._last_line >= self.interval:
                self._line()

    def say(self, message: str) -> None:
        """Print a line of the job's own (above the bar on a terminal)."""
        if self._rich is not None:
            self._rich.console.print(message, markup=False, highlight=False, soft_wrap=True)
            return
        print(message, file=self.stream or sys.stdout, flush=True)
        self._last_line = time.monotonic()

    def seconds_left(self) -> float | None:
        """From the rate since `start`; None before the first unit."""
        done = self.completed - self._first
        if self.total is None or done <= 0:
            return None
        return (time.monotonic() - self._started) / done * (self.total - self.completed)

    def _line(self, final: bool = False) -> None:
        elapsed = time.monotonic() - self._started
        total = self.total or 0
        pct = 100.0 * self.completed / total if total else 100.0
        unit = f" {self.unit}" if self.unit else ""
        head = f"{self.description}: {self.completed}/{total}{unit} ({pct:.0f}%)"
        if final:
            text = f"{head}, done in {hms(elapsed)}"
        else:
            left = self.seconds_left()
            text = f"{head}, {hms(elapsed)} so far" + (
                f", about {hms(left)} left" if left is not None else ""
            )
        print(text, file=self.stream or sys.stdout, flush=True)
        self._last_line = time.monotonic()
        self._lines += 1


class _NullBar(Bar):
    """Shows nothing; `say` still prints."""

    def __init__(self) -> None:
        super().__init__("", enabled=False)

    def advance(self, n: int = 1) -> None:
        pass


NULL = _NullBar()
