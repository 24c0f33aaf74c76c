"""Where and how a job computes: the device (CPU, or a GPU found without starting CUDA and
held by a slot lock, `gpu_slots`), the precision, and the numeric switches (TF32,
deterministic algorithms) set around the code that computes.

The GPU is chosen through CUDA_VISIBLE_DEVICES before CUDA starts, so the process never
touches another GPU. Which GPUs there are is read by CUDA's rules in `basics`, shared with
`resnet-repro status`; this module adds what needs torch (whether it was built with CUDA, and
on WSL a child process's count).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from ..basics import NO_DRIVER, GpuDetection, gpus_from_driver, gpus_from_env
from ..config import ConfigError, DeviceConfig
from .compile_policy import resolve_compile
from .gpu_slots import GpuSlot, acquire_gpu_slot, default_lock_dir, scheduler_assigned_gpus


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


def detect_gpus(env: Mapping[str, str] | None = None, root: str | Path = "/") -> GpuDetection:
    """GPU ids this process may use, found without starting CUDA in this process.

    In order: CUDA_VISIBLE_DEVICES, read as CUDA reads it; nothing when this torch has no
    CUDA; the NVIDIA driver (`basics.gpus_from_driver`, which `status` asks too); on WSL
    (/dev/dxg, where the driver shows neither) a child process asks CUDA itself.
    """
    env = os.environ if env is None else env
    found = gpus_from_env(env)
    if found is not None:
        return found
    if not torch.backends.cuda.is_built():
        return GpuDetection([], "this torch build has no CUDA")
    found = gpus_from_driver(root)
    if found is not None:
        return found
    if (Path(root) / "dev" / "dxg").exists():
        n = _child_cuda_count()
        return GpuDetection([str(i) for i in range(n)], "CUDA in a child process (WSL)")
    return GpuDetection([], NO_DRIVER)


def visible_gpu_ids(env: Mapping[str, str] | None = None) -> list[str]:
    return detect_gpus(env).ids


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


def place(
    cfg: DeviceConfig,
    log: Callable[[str], None] = print,
    lock_timeout: float | None = None,
    warn: Callable[[str], None] | None = None,
    cpu_threads: int | None = None,
    env: Mapping[str, str] | None = None,
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
