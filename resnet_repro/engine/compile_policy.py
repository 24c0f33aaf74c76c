"""What `device.compile: auto` means, as the benchmark decided it (README, Performance).

On CUDA the compiled step, with CUDA graphs: small CIFAR nets at batch 128 are launch-bound,
and an eager step leaves the GPU idle between kernel launches. On the CPU the compiled step
trained ResNet-20 and ResNet-56 30-50% faster than eager (2026-11-30, 2 cores), after 25-60 s
of compiling that a run repays within a few hundred iterations; so `auto` compiles the step of
a CPU training run of at least `CPU_STEP_MIN_ITERATIONS` iterations, when a C++ compiler is
there for inductor's CPU backend, and keeps short runs (tests, smoke studies) eager.
"""

from __future__ import annotations

import os
import shutil

from ..config import ConfigError

AUTO_COMPILE = {"cuda": "step", "cpu": "eager"}  # before the run's length is known
CPU_STEP_MIN_ITERATIONS = 2000  # about 3x the longest break-even measured (ResNet-20)


def resolve_compile(requested: str, mode: str, device_type: str) -> tuple[str, str]:
    """(device.compile, torch.compile mode): auto picks per device type; mode auto is CUDA
    graphs ("reduce-overhead") on CUDA and inductor's default elsewhere."""
    compile_ = AUTO_COMPILE[device_type] if requested == "auto" else requested
    if mode == "auto":
        mode = "reduce-overhead" if device_type == "cuda" else "default"
    if mode == "reduce-overhead" and device_type != "cuda":
        raise ConfigError(
            "device.compile_mode: 'reduce-overhead' (CUDA graphs) needs a CUDA device; "
            "allowed on CPU: auto, default, max-autotune-no-cudagraphs"
        )
    return compile_, mode


def cxx_compiler() -> str | None:
    """The C++ compiler inductor would build the CPU kernels with ($CXX, else g++, c++ or
    clang++ on the PATH), or None."""
    for name in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def compile_for_run(
    requested: str, resolved: str, device_type: str, iterations: int, compiler: str | None
) -> tuple[str, str | None]:
    """The compile mode of one training run of `iterations` iterations, and a line that says
    why when `auto` chose by the run's length: `resolved` (from `resolve_compile`) unless the
    config asked for auto on the CPU, where a run this long gets the compiled step if
    `compiler` (`cxx_compiler()`) was found."""
    if requested != "auto" or device_type != "cpu" or iterations < CPU_STEP_MIN_ITERATIONS:
        return resolved, None
    if compiler is None:
        return resolved, (
            f"device.compile auto: eager; the compiled step would train this {iterations}-"
            "iteration run about 40% faster on the CPU but needs a C++ compiler (g++ or "
            "clang++, or $CXX), and none was found"
        )
    return "step", (
        f"device.compile auto: the compiled step ({iterations} iterations on the CPU repay "
        f"its compilation of about a minute; at least {CPU_STEP_MIN_ITERATIONS} get it)"
    )
