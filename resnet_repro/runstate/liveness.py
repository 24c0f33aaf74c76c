"""Is a run's trainer alive? By process id on this machine (and this boot), by the age of its
progress.json on another (a cluster node)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .files import finite

# A trainer on another machine (a cluster node) is taken for alive while its progress.json is
# younger than this many of its epochs, and at least this many seconds.
_REMOTE_EPOCHS, _REMOTE_MIN_SECONDS = 3, 900.0


# ---------------------------------------------------------------- the trainer's process


def this_boot() -> str | None:
    """This machine's boot id (Linux), so that a process id from before a reboot is not
    taken for a live trainer."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists on this machine and is a Python process (a trainer);
    signal 0 only asks, it delivers nothing."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OSError, OverflowError, ValueError):
        return False
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return b"python" in cmd or b"resnet-repro" in cmd


@dataclass(frozen=True)
class Here:
    """The machine `status` runs on and the time it looks; injectable for tests."""

    host: str
    boot_id: str | None
    now: float
    alive: Callable[[int], bool] = pid_alive

    @classmethod
    def now_here(cls) -> Here:
        return cls(socket.gethostname(), this_boot(), time.time())


def writer_alive(progress: Mapping[str, Any], here: Here) -> tuple[bool, str]:
    """Whether the trainer that wrote `progress` still runs, and how that was told. On this
    machine by its process id; on another (a cluster node) by the file's age."""
    age = here.now - (finite(progress.get("updated_at")) or 0.0)
    host = progress.get("host")
    if host == here.host:
        if progress.get("boot_id") not in (None, here.boot_id):
            return False, "its trainer ran before this machine restarted"
        pid = progress.get("pid")
        return isinstance(pid, int) and here.alive(pid), ""
    spi = finite(progress.get("seconds_per_iteration")) or 0.0
    grace = max(_REMOTE_MIN_SECONDS, _REMOTE_EPOCHS * spi * progress.get("steps_per_epoch", 1))
    return age <= grace, f"on {host}, written {_ago(age)} ago"


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"
