"""Device and precision choice, and one GPU slot per training job by lock file.

Snakemake never assigns GPU ids to local jobs (`--resources gpu=2` only caps how many run at
once), so each training process takes a free slot itself: an exclusive, non-blocking flock on
one file per (GPU, slot). The kernel drops the lock when the process dies, however it dies, so
a killed job never leaves a GPU reserved. The GPU is chosen through CUDA_VISIBLE_DEVICES
before CUDA starts, so the process never touches another GPU.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .config import ConfigError, DeviceConfig

LOCK_DIR_NAME = "resnet-repro-gpu-locks"


@dataclass(frozen=True)
class Placement:
    """Where and how a job computes; passed to the trainer, never read from globals."""

    device: torch.device
    precision: str          # "fp32" or "bf16" (autocast)
    channels_last: bool
    compile: bool
    fused_optimizer: bool
    name: str               # human-readable device name for run.json and logs

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return torch.bfloat16 if self.precision == "bf16" else None


def visible_gpu_ids(env: dict[str, str] | None = None) -> list[str]:
    """GPU ids this process may use, found without starting CUDA.

    CUDA_VISIBLE_DEVICES wins (SLURM sets it to the job's GPUs); else `nvidia-smi -L` counts
    the machine's GPUs; no driver means no GPU.
    """
    env = os.environ if env is None else env
    if "CUDA_VISIBLE_DEVICES" in env:
        return [g.strip() for g in env["CUDA_VISIBLE_DEVICES"].split(",") if g.strip()]
    if not torch.backends.cuda.is_built() or shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    n = sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))
    return [str(i) for i in range(n)]


def resolve_device_type(requested: str, gpu_ids: list[str]) -> str:
    if requested == "auto":
        return "cuda" if gpu_ids and torch.backends.cuda.is_built() else "cpu"
    if requested == "cuda" and not gpu_ids:
        raise ConfigError("device.device: 'cuda' was asked for but no GPU is visible; "
                          "allowed values: auto, cpu, cuda (auto falls back to cpu)")
    return requested


def resolve_precision(requested: str, device_type: str) -> str:
    """fp32 on CPU; bf16 autocast by default on CUDA (it changes no recipe value)."""
    if requested == "auto":
        return "bf16" if device_type == "cuda" else "fp32"
    if requested == "bf16" and device_type != "cuda":
        raise ConfigError("device.precision: 'bf16' needs a CUDA device; allowed on CPU: "
                          "auto, fp32")
    return requested


def default_lock_dir() -> Path:
    return Path(tempfile.gettempdir()) / LOCK_DIR_NAME


class GpuSlot:
    """An exclusive lock on one (GPU, slot) file; held until release() or process exit."""

    def __init__(self, gpu_id: str, slot: int, path: Path, fd: int):
        self.gpu_id, self.slot, self.path, self._fd = gpu_id, slot, path, fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __repr__(self) -> str:
        return f"GpuSlot(gpu={self.gpu_id}, slot={self.slot})"


def _lock_file(lock_dir: Path, gpu_id: str, slot: int) -> Path:
    # GPU ids may be UUIDs (MIG, SLURM); keep the file name portable.
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", gpu_id)
    return lock_dir / f"gpu-{safe}.slot{slot}.lock"


def try_acquire_gpu_slot(gpu_ids: list[str], jobs_per_gpu: int,
                         lock_dir: str | Path) -> GpuSlot | None:
    """One non-blocking pass over all slots; spreads jobs over GPUs before packing any."""
    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    for slot in range(jobs_per_gpu):
        for gpu in gpu_ids:
            path = _lock_file(lock_dir, gpu, slot)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return GpuSlot(gpu, slot, path, fd)
    return None


def acquire_gpu_slot(gpu_ids: list[str], jobs_per_gpu: int, lock_dir: str | Path,
                     timeout: float | None = None, poll_seconds: float = 2.0,
                     log: Callable[[str], None] = print) -> GpuSlot:
    """Wait for a free (GPU, slot); raise TimeoutError after `timeout` seconds."""
    if not gpu_ids:
        raise ConfigError("no GPU is visible to take a slot on")
    start = time.monotonic()
    announced = False
    while True:
        slot = try_acquire_gpu_slot(gpu_ids, jobs_per_gpu, lock_dir)
        if slot is not None:
            return slot
        if timeout is not None and time.monotonic() - start >= timeout:
            raise TimeoutError(f"no free GPU slot among GPUs {gpu_ids} after {timeout:.0f} s")
        if not announced:
            log(f"all {len(gpu_ids) * jobs_per_gpu} GPU slots are taken; waiting for one "
                f"(lock files in {lock_dir})")
            announced = True
        time.sleep(poll_seconds)


def place(cfg: DeviceConfig, log: Callable[[str], None] = print,
          lock_timeout: float | None = None) -> tuple[Placement, GpuSlot | None]:
    """Choose device and precision; on CUDA take a GPU slot and select that GPU.

    Must run before anything starts CUDA in this process, since CUDA_VISIBLE_DEVICES is read
    once, when CUDA starts.
    """
    gpu_ids = visible_gpu_ids() if cfg.device != "cpu" else []
    device_type = resolve_device_type(cfg.device, gpu_ids)
    precision = resolve_precision(cfg.precision, device_type)
    if cfg.cpu_threads:
        torch.set_num_threads(cfg.cpu_threads)
    slot = None
    if device_type == "cuda":
        if torch.cuda.is_initialized():
            raise RuntimeError("CUDA started before a GPU slot was taken")
        lock_dir = Path(cfg.lock_dir) if cfg.lock_dir else default_lock_dir()
        slot = acquire_gpu_slot(gpu_ids, cfg.jobs_per_gpu, lock_dir, timeout=lock_timeout,
                                log=log)
        os.environ["CUDA_VISIBLE_DEVICES"] = slot.gpu_id
        if not torch.cuda.is_available():
            raise ConfigError(f"GPU {slot.gpu_id} is listed but CUDA cannot use it; set "
                              "device.device: cpu to train on the CPU")
        torch.backends.cudnn.benchmark = cfg.cudnn_benchmark
        device = torch.device("cuda", 0)
        name = f"{torch.cuda.get_device_name(device)} (GPU {slot.gpu_id}, slot {slot.slot})"
    else:
        device = torch.device("cpu")
        name = cpu_name()
    placement = Placement(
        device=device, precision=precision,
        channels_last=cfg.channels_last and device_type == "cuda",
        compile=cfg.compile, fused_optimizer=cfg.fused_optimizer and device_type == "cuda",
        name=name,
    )
    return placement, slot


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return f"CPU: {line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    import platform

    return f"CPU: {platform.processor() or platform.machine()} ({os.cpu_count()} cores)"
