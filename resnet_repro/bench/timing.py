"""How the benchmark times steps and measures memory: warm-up then timed steps with the device
synchronised only at the timing boundaries, the peak memory of each measurement, and the
machine the numbers come from."""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

from ..engine.devices import Placement, cpu_name, numerics
from ..engine.step import TrainStep
from .ops import ops_per_step


def default_workers() -> int:
    """DataLoader workers when none are asked for: min(8, CPUs this process may use)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(8, cpus))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cudnn_benchmark_setting(device: torch.device) -> bool | None:
    """Whether cuDNN autotuning is on for `device`: the process-wide
    ``torch.backends.cudnn.benchmark`` flag on CUDA, None elsewhere (where it does not apply)."""
    return bool(torch.backends.cudnn.benchmark) if device.type == "cuda" else None


def time_steps(
    step: Callable[[], int],
    warmup_steps: int,
    steps: int,
    placement: Placement,
    train_step: TrainStep,
    before_timing: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Run `warmup_steps` untimed steps, then `steps` timed ones; `step` returns the images it
    trained on. The device is synchronised only at the timing boundaries. The numeric settings
    are the placement's (`numerics`), as in training; the kernel-launching operations of one
    step are counted after the warm-up, outside the timed steps."""
    with numerics(placement):
        return _timed(step, warmup_steps, steps, placement, train_step, before_timing)


def _timed(step, warmup_steps, steps, placement, train_step, before_timing) -> dict[str, Any]:
    device = placement.device
    first = None
    for i in range(warmup_steps):
        start = time.perf_counter()
        step()
        if i == 0:
            _sync(device)
            first = time.perf_counter() - start  # compilation, autotuning, first launches
    _sync(device)
    ops = ops_per_step(step, device)
    _sync(device)
    train_step.reset_meter()  # zeroing device tensors is queued work: before the clock starts
    _sync(device)
    if before_timing is not None:
        before_timing()
    images = 0
    t0 = time.perf_counter()
    for _ in range(steps):
        images += step()
    _sync(device)
    t1 = time.perf_counter()
    loss, error, _ = train_step.read_meter()
    seconds = t1 - t0
    return {
        "images_per_second": images / seconds,
        "steps": steps,
        "images": images,
        "seconds": seconds,
        "ms_per_step": 1000.0 * seconds / steps,
        "warmup_steps": warmup_steps,
        "train_loss": loss,
        "train_error_pct": error,
        "ops_per_step": ops,
        "first_step_seconds": first,
        "t0": t0,
        "t1": t1,
    }


def without_clock_marks(timing: dict[str, Any]) -> dict[str, Any]:
    """A `time_steps` result without its ``t0`` and ``t1`` clock readings: these only serve to
    line up measurements taken at once (`packing`), not to be reported."""
    return {k: v for k, v in timing.items() if k not in ("t0", "t1")}


class PeakMemory:
    """Peak memory: per variant on CUDA (whose peak counter can be reset), and for the whole
    run (on the CPU the process's peak RSS, which cannot be reset)."""

    def __init__(self, device: torch.device):
        self.device = device
        self._overall = 0

    def start(self) -> None:
        """Begin a measurement: the peak counter restarts, the run's peak is kept."""
        if self.device.type == "cuda":
            self._overall = max(self._overall, torch.cuda.max_memory_allocated(self.device))
            torch.cuda.reset_peak_memory_stats(self.device)

    def since_start(self) -> dict[str, Any]:
        if self.device.type != "cuda":
            return {}
        return {"peak_memory_mb": torch.cuda.max_memory_allocated(self.device) / 2**20}

    def overall(self) -> tuple[float | None, str]:
        if self.device.type == "cuda":
            peak = max(self._overall, torch.cuda.max_memory_allocated(self.device))
            return peak / 2**20, "torch.cuda.max_memory_allocated"
        try:
            import resource
        except ImportError:  # not on Windows
            return None, "unavailable"
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # Linux reports kilobytes, macOS bytes.
        mb = rss / 2**20 if sys.platform == "darwin" else rss / 1024
        return mb, (
            "peak RSS of this process (resource.getrusage; DataLoader workers and "
            "packed jobs not counted)"
        )


def machine_info(placement: Placement) -> dict[str, Any]:
    import torchvision

    gpu = torch.cuda.get_device_name(placement.device) if placement.device.type == "cuda" else None
    return {
        "cpu": cpu_name(),
        "gpu": gpu,
        "device": placement.name,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
    }
