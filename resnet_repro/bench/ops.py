"""The work a training step asks of the device: its kernel-launching operations, counted with
torch's profiler on the device at hand, so that a CPU run already shows what a GPU will have
to launch (small CIFAR nets at batch 128 are launch-bound on a GPU).

On CUDA the count is the runtime's launch calls (a replayed CUDA graph is one launch). On the
CPU it is the operators that run a kernel: the leaf aten operators of the profile minus those
that only allocate or re-view memory, plus the C++ kernels inductor generated for compiled
graphs (visible to the profiler once `kernel_profiling` is on, before anything compiles).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile

CUDA_LAUNCHES = frozenset(
    {
        "cudaLaunchKernel",
        "cudaLaunchKernelExC",
        "cuLaunchKernel",
        "cuLaunchKernelEx",
        "cudaGraphLaunch",
        "cudaMemcpyAsync",
        "cudaMemsetAsync",
    }
)
# aten operators that allocate, re-view or read metadata only: no kernel runs.
NO_KERNEL = frozenset(
    f"aten::{name}"
    for name in (
        "empty",
        "empty_strided",
        "empty_like",
        "as_strided",
        "as_strided_",
        "view",
        "_reshape_alias",
        "reshape",
        "resize_",
        "resolve_conj",
        "resolve_neg",
        "detach",
        "alias",
        "lift_fresh",
        "unsqueeze",
        "squeeze",
        "expand",
        "t",
        "transpose",
        "permute",
        "slice",
        "select",
        "set_",
        "_unsafe_view",
    )
)


def kernel_profiling() -> None:
    """Make inductor's generated CPU kernels visible to the profiler (a code-generation
    option: it applies to what is compiled after this call)."""
    import torch._inductor.config

    torch._inductor.config.cpp.enable_kernel_profile = True


def count_kernel_ops(events, device_type: str) -> int:
    """Kernel-launching operations among profiler events (see the module docstring)."""
    if device_type == "cuda":
        return sum(1 for e in events if e.name in CUDA_LAUNCHES)
    return sum(
        1
        for e in events
        if not e.cpu_children
        and ((e.name.startswith("aten::") and e.name not in NO_KERNEL) or "cpp_fused" in e.name)
    )


def ops_per_step(step: Callable[[], object], device: torch.device) -> int:
    """Run one `step` under the profiler and count its kernel-launching operations."""
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return count_kernel_ops(prof.events(), device.type)
