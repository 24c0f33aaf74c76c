"""Device and precision choice, and one GPU slot per training job by lock file.

Snakemake never assigns GPU ids to local jobs (`--resources gpu=2` only caps how many run at
once), so each training process takes a free slot itself: an exclusive, non-blocking flock on
one file per (GPU, slot). The kernel drops the lock when the process dies, however it dies, so
a killed job never leaves a GPU reserved. The GPU is chosen through CUDA_VISIBLE_DEVICES
before CUDA starts, so the process never touches another GPU.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import ConfigError, DeviceConfig
from .compile_policy import resolve_compile

LOCK_DIR_NAME = "resnet-repro-gpu-locks"


@dataclass(frozen=True)
class Placement:
    """Where and how a job computes; passed to the trainer, never read from globals."""

    device: torch.device
    precision: str  # "fp32", "tf32" (CUDA's TF32 matmuls and convolutions) or "bf16" (autocast)
    channels_last: bool
    compile: str  # "eager", "model" or "step" (engine/step.py)
    fused_optimizer: bool
    name: str  # human-readable device name for run.json and logs
    compile_mode: str = "default"  # torch.compile's mode: "reduce-overhead" = CUDA graphs
    deterministic: bool = False

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return torch.bfloat16 if self.precision == "bf16" else None


@contextlib.contextmanager
def numerics(placement: Placement) -> Iterator[None]:
    """The numeric settings of a placement, for the code inside the block, restored after it.

    `fp32` is fp32 on CUDA too: cuDNN convolutions would otherwise run in TF32 by default, so
    TF32 is off unless the precision is `tf32`. With `deterministic`, cuDNN picks deterministic
    algorithms without autotuning and torch refuses non-deterministic ones, so two runs on the
    same GPU give the same bits (CUBLAS_WORKSPACE_CONFIG, which cuBLAS reads when CUDA starts,
    is set by `place`)."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = (matmul.allow_tf32, torch.are_deterministic_algorithms_enabled())
    tf32 = placement.precision == "tf32"
    det = placement.deterministic
    try:
        matmul.allow_tf32 = tf32
        torch.use_deterministic_algorithms(det)
        with cudnn.flags(
            enabled=True,
            benchmark=cudnn.benchmark and not det,  # `place` set it from the config
            deterministic=det,
            allow_tf32=tf32,
        ):
            yield
    finally:
        matmul.allow_tf32 = saved[0]
        torch.use_deterministic_algorithms(saved[1])


@dataclass(frozen=True)
class GpuDetection:
    ids: list[str]  # GPU ids this process may use (what CUDA_VISIBLE_DEVICES takes)
    source: str  # how they were found, for the log


def _nvidia_smi_count() -> int | None:
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))


def _child_cuda_count() -> int:
    """Ask a child process: CUDA starts there, not here, so this process can still choose
    its GPU through CUDA_VISIBLE_DEVICES."""
    code = "import torch; print(torch.cuda.device_count())"
    try:
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
        )
        return int(out.stdout.strip() or 0)
    except (OSError, subprocess.SubprocessError, ValueError):
        return 0


def detect_gpus(env: dict[str, str] | None = None, root: str | Path = "/") -> GpuDetection:
    """GPU ids this process may use, found without starting CUDA in this process.

    In order: CUDA_VISIBLE_DEVICES (SLURM sets it to the job's GPUs); `nvidia-smi -L`; the
    NVIDIA driver's /proc/driver/nvidia/gpus/ and /dev/nvidiaN nodes (when nvidia-smi is not
    installed, as in many containers); on WSL (/dev/dxg) a child process asks CUDA itself.
    """
    env = os.environ if env is None else env
    root = Path(root)
    if "CUDA_VISIBLE_DEVICES" in env:
        ids = cuda_visible_ids(env["CUDA_VISIBLE_DEVICES"])
        return GpuDetection(ids, f"CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']!r}")
    if not torch.backends.cuda.is_built():
        return GpuDetection([], "this torch build has no CUDA")
    n = _nvidia_smi_count()
    if n is not None:
        return GpuDetection([str(i) for i in range(n)], "nvidia-smi -L")
    proc = root / "proc" / "driver" / "nvidia" / "gpus"
    if proc.is_dir() and any(proc.iterdir()):
        n = sum(1 for _ in proc.iterdir())
        return GpuDetection([str(i) for i in range(n)], f"{proc} (nvidia-smi not found)")
    dev = root / "dev"
    nodes = [p for p in dev.glob("nvidia*") if re.fullmatch(r"nvidia\d+", p.name)]
    if nodes:
        return GpuDetection(
            [str(i) for i in range(len(nodes))],
            f"{dev}/nvidiaN device nodes (nvidia-smi not found)",
        )
    if (dev / "dxg").exists():
        n = _child_cuda_count()
        return GpuDetection([str(i) for i in range(n)], "CUDA in a child process (WSL)")
    return GpuDetection(
        [], "no NVIDIA driver found (no nvidia-smi, /proc/driver/nvidia or /dev/nvidiaN)"
    )


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


def visible_gpu_ids(env: dict[str, str] | None = None) -> list[str]:
    return detect_gpus(env).ids


def scheduler_assigned_gpus(env: dict[str, str] | None = None) -> str | None:
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


# The measured reference of the estimate below (README, Performance): ResNet-20, whose
# forward pass is 41M multiply-accumulates per image, trains at 270 images/s with 2 threads
# on an AMD EPYC.
_REFERENCE_RATE, _REFERENCE_MACS, _REFERENCE_THREADS = 270.0, 40.8e6, 2


def estimated_cpu_hours(forward_macs: int, images: int, threads: int) -> float:
    """A rough time for training on `images` images on the CPU, scaled from the measured
    reference by the work per image and the thread count."""
    rate = (
        _REFERENCE_RATE * (_REFERENCE_MACS / forward_macs) * (max(1, threads) / _REFERENCE_THREADS)
    )
    return images / rate / 3600.0


def estimated_cpu_seconds_forward(forward_macs: int, images: float, threads: int) -> float:
    """A rough time for `images` forward passes in eval mode on the CPU (a probe's work),
    taken as half a training step's time on the reference above (a step adds the backward
    pass and the update; the factor is a round guess, meant to tell minutes from hours)."""
    return estimated_cpu_hours(forward_macs, int(images), threads) * 3600.0 / 2.0


def resolve_device_type(requested: str, gpu_ids: list[str]) -> str:
    if requested == "auto":
        return "cuda" if gpu_ids and torch.backends.cuda.is_built() else "cpu"
    if requested == "cuda" and not gpu_ids:
        raise ConfigError(
            "device.device: 'cuda' was asked for but no GPU is visible; "
            "allowed values: auto, cpu, cuda (auto falls back to cpu)"
        )
    return requested


def resolve_precision(requested: str, device_type: str) -> str:
    """fp32 on CPU; bf16 autocast by default on CUDA (it changes no recipe value)."""
    if requested == "auto":
        return "bf16" if device_type == "cuda" else "fp32"
    if requested in ("bf16", "tf32") and device_type != "cuda":
        raise ConfigError(
            f"device.precision: {requested!r} needs a CUDA device; allowed on CPU: auto, fp32"
        )
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


def place(
    cfg: DeviceConfig,
    log: Callable[[str], None] = print,
    lock_timeout: float | None = None,
    warn: Callable[[str], None] | None = None,
    cpu_threads: int | None = None,
    env: dict[str, str] | None = None,
) -> tuple[Placement, GpuSlot | None]:
    """Choose device and precision, and say which and why; on CUDA take a GPU slot (unless
    SLURM assigned the GPU) and select that GPU.

    Must run before anything starts CUDA in this process, since CUDA_VISIBLE_DEVICES is read
    once, when CUDA starts.
    """
    env = os.environ if env is None else env
    warn = warn or log
    if cfg.device == "cpu":
        found, why = GpuDetection([], ""), "device.device is cpu"
    else:
        found = detect_gpus(env)
        why = f"GPUs found by {found.source}" if found.ids else found.source
    device_type = resolve_device_type(cfg.device, found.ids)
    precision = resolve_precision(cfg.precision, device_type)
    threads = cpu_threads or cfg.cpu_threads
    if threads:
        torch.set_num_threads(threads)
    compile_, compile_mode = resolve_compile(cfg.compile, cfg.compile_mode, device_type)
    slot = None
    if device_type == "cuda":
        if cfg.deterministic:
            # cuBLAS reads it when CUDA starts; deterministic GEMMs need a fixed workspace.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        if torch.cuda.is_initialized():
            raise RuntimeError("CUDA started before a GPU slot was taken")
        slurm_job = scheduler_assigned_gpus(env)
        if slurm_job is not None:
            gpu_label = f"GPU {env['CUDA_VISIBLE_DEVICES']} of SLURM job {slurm_job}"
            why += "; SLURM assigned it, so no slot lock"
        else:
            lock_dir = Path(cfg.lock_dir) if cfg.lock_dir else default_lock_dir()
            slot = acquire_gpu_slot(
                found.ids, cfg.jobs_per_gpu, lock_dir, timeout=lock_timeout, log=log
            )
            os.environ["CUDA_VISIBLE_DEVICES"] = slot.gpu_id
            gpu_label = f"GPU {slot.gpu_id}, slot {slot.slot}"
        if not torch.cuda.is_available():
            raise ConfigError(
                f"a GPU is listed ({found.source}) but CUDA cannot use it; set "
                "device.device: cpu to train on the CPU"
            )
        torch.backends.cudnn.benchmark = cfg.cudnn_benchmark and not cfg.deterministic
        device = torch.device("cuda", 0)
        name = f"{torch.cuda.get_device_name(device)} ({gpu_label})"
    else:
        device = torch.device("cpu")
        name = cpu_name()
        if cfg.device == "auto":
            warn(f"no GPU found ({found.source}): training on the CPU")
    log(f"device: {name}, {precision} ({why})")
    placement = Placement(
        device=device,
        precision=precision,
        channels_last=cfg.channels_last and device_type == "cuda",
        compile=compile_,
        fused_optimizer=cfg.fused_optimizer and device_type == "cuda",
        name=name,
        compile_mode=compile_mode,
        deterministic=cfg.deterministic,
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
