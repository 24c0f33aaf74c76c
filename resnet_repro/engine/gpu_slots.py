"""One GPU slot per training job, taken by lock file.

Snakemake never assigns GPU ids to local jobs (`--resources gpu=2` only caps how many run at
once), so each training process takes a free slot itself: an exclusive, non-blocking flock on
one file per (GPU, slot). The kernel drops the lock when the process dies, however it dies, so
a killed job never leaves a GPU reserved. `devices.place` then chooses that GPU through
CUDA_VISIBLE_DEVICES before CUDA starts, so the process never touches another GPU.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from ..config import ConfigError

LOCK_DIR_NAME = "resnet-repro-gpu-locks"


def default_lock_dir() -> Path:
    return Path(tempfile.gettempdir()) / LOCK_DIR_NAME


def scheduler_assigned_gpus(env: Mapping[str, str] | None = None) -> str | None:
    """The SLURM job id when SLURM gave this job its GPUs, else None.

    With SLURM's device constraints every job sees its own GPUs as CUDA_VISIBLE_DEVICES=0;
    jobs sharing a node's /tmp would then queue on one lock file although each holds its
    own GPU, so such a job takes no slot lock."""
    env = os.environ if env is None else env
    job = env.get("SLURM_JOB_ID")
    if not job or "CUDA_VISIBLE_DEVICES" not in env:
        return None
    if any(env.get(k) for k in ("SLURM_JOB_GPUS", "SLURM_STEP_GPUS", "SLURM_GPUS_ON_NODE")):
        return job
    return None


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


def _lock_dir_error(lock_dir: Path, e: OSError) -> ConfigError:
    return ConfigError(
        f"GPU lock folder {lock_dir} cannot be used ({e.strerror or e}); set "
        "device.lock_dir to a folder that every user of this machine can write"
    )


def _open_shared(lock_dir: Path) -> None:
    """The lock folder, usable by every user of the machine: world-writable with the sticky
    bit, like /tmp (the umask would otherwise lock out the second user)."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    if lock_dir.stat().st_uid == os.geteuid() and (lock_dir.stat().st_mode & 0o7777) != 0o1777:
        os.chmod(lock_dir, 0o1777)


def try_acquire_gpu_slot(
    gpu_ids: list[str], jobs_per_gpu: int, lock_dir: str | Path
) -> GpuSlot | None:
    """One non-blocking pass over all slots; spreads jobs over GPUs before packing any."""
    lock_dir = Path(lock_dir)
    try:
        _open_shared(lock_dir)
        for slot in range(jobs_per_gpu):
            for gpu in gpu_ids:
                path = _lock_file(lock_dir, gpu, slot)
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
                if os.fstat(fd).st_uid == os.geteuid():
                    os.fchmod(fd, 0o666)  # the umask applied at creation; other users lock it too
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                return GpuSlot(gpu, slot, path, fd)
    except OSError as e:
        raise _lock_dir_error(lock_dir, e) from None
    return None


def acquire_gpu_slot(
    gpu_ids: list[str],
    jobs_per_gpu: int,
    lock_dir: str | Path,
    timeout: float | None = None,
    poll_seconds: float = 2.0,
    log: Callable[[str], None] = print,
) -> GpuSlot:
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
            log(
                f"all {len(gpu_ids) * jobs_per_gpu} GPU slots are taken; waiting for one "
                f"(lock files in {lock_dir})"
            )
            announced = True
        time.sleep(poll_seconds)
