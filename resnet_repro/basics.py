"""What `resnet-repro status`, the progress bar and the trainer all need, written once: time as
h:mm:ss, the GPUs a process may use (by CUDA's own reading of CUDA_VISIBLE_DEVICES, then the
NVIDIA driver), the length of a training schedule, and the functions the two registries
(net families, probes) name as text, imported when first called.

It imports only the standard library, so that `status` (which must answer in well under a
second, without torch) and the engine can share it; it sits below `config` in the layers, so
the schedule's arithmetic takes plain integers, not a TrainConfig.
"""

from __future__ import annotations

import importlib
import math
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------- time


def hms(seconds: float | None) -> str:
    """`seconds` as h:mm:ss, to the nearest second (negative as 0:00:00); "?" for a time not
    known (None, NaN or infinite), which `status` shows for a run without a rate yet."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


# ---------------------------------------------------------------- GPUs


@dataclass(frozen=True)
class GpuDetection:
    ids: list[str]  # GPU ids this process may use (what CUDA_VISIBLE_DEVICES takes)
    source: str  # how they were found, for the log


def cuda_visible_ids(value: str) -> list[str]:
    """The GPUs CUDA_VISIBLE_DEVICES lets a process see, read as CUDA reads it: the list ends
    at the first entry that is not a device (so "-1", "" and SLURM's "NoDevFiles" hide every
    GPU, and "0,-1,1" shows GPU 0 only). Entries are indices or GPU-/MIG- UUIDs."""
    ids = []
    for entry in (e.strip() for e in value.split(",")):
        if not (entry.isdigit() or entry.startswith(("GPU-", "MIG-"))):
            break
        ids.append(entry)
    return ids


def gpus_from_env(env: Mapping[str, str]) -> GpuDetection | None:
    """The GPUs CUDA_VISIBLE_DEVICES names (SLURM sets it to the job's GPUs); None when it is
    not set, so that the driver decides."""
    if "CUDA_VISIBLE_DEVICES" not in env:
        return None
    value = env["CUDA_VISIBLE_DEVICES"]
    return GpuDetection(cuda_visible_ids(value), f"CUDA_VISIBLE_DEVICES={value!r}")


def _nvidia_smi_count(timeout: float) -> int | None:
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))


def _numbered(n: int) -> list[str]:
    return [str(i) for i in range(n)]


def gpus_from_driver(root: str | Path = "/", timeout: float = 30.0) -> GpuDetection | None:
    """The GPUs the NVIDIA driver shows, without starting CUDA: `nvidia-smi -L` (first: in a
    container it lists the container's GPUs, where /proc may list the host's), else the
    driver's /proc/driver/nvidia/gpus/ entries, else the /dev/nvidiaN nodes (when nvidia-smi
    is not installed, as in many containers). None when the driver shows nothing."""
    n = _nvidia_smi_count(timeout)
    if n is not None:
        return GpuDetection(_numbered(n), "nvidia-smi -L")
    root = Path(root)
    proc = root / "proc" / "driver" / "nvidia" / "gpus"
    if proc.is_dir() and any(proc.iterdir()):
        n = sum(1 for _ in proc.iterdir())
        return GpuDetection(_numbered(n), f"{proc} (nvidia-smi not found)")
    dev = root / "dev"
    nodes = [p for p in dev.glob("nvidia*") if re.fullmatch(r"nvidia\d+", p.name)]
    if nodes:
        return GpuDetection(
            _numbered(len(nodes)), f"{dev}/nvidiaN device nodes (nvidia-smi not found)"
        )
    return None


NO_DRIVER = "no NVIDIA driver found (no nvidia-smi, /proc/driver/nvidia or /dev/nvidiaN)"


# ---------------------------------------------------------------- the schedule's length


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """Full batches per epoch; the few images left over are drawn in later epochs' shuffles.
    A set smaller than one batch (tiny test studies) is one batch."""
    return max(1, int(n_train) // int(batch_size))


def total_iterations(
    iterations: int | None, epochs: int | None, n_train: int, batch_size: int
) -> int:
    """Length of a run in iterations: `epochs` full epochs when the recipe counts epochs
    (train.epochs), else `iterations` (train.iterations, the paper's 64k)."""
    if epochs is not None:
        return int(epochs) * steps_per_epoch(n_train, batch_size)
    if iterations is None:
        raise ValueError("a schedule needs train.iterations or train.epochs")
    return int(iterations)


# ---------------------------------------------------------------- named functions


def resolve(ref: str | Callable[..., Any]) -> Any:
    """What a "module:name" reference in the package names (such as
    "nets.cifar_nets:Block"), its module imported now; a callable is itself. The registries
    name their builders, measures and figures this way, so that reading them stays cheap for
    every command and every Snakemake start."""
    if callable(ref):
        return ref
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), name)
