"""The ablation: the trainer measured again with each GPU speed switch changed, one at a time,
to show what each switch buys (on a CPU, where these switches do not apply, each is reported
as skipped with the reason), and the compile table: every `device.compile` mode with and
without channels_last. Each measurement runs in a fresh process."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..config import Study
from ..engine.devices import Placement
from ..engine.step import COMPILE_MODES
from .packing import run_packed
from .timing import cudnn_benchmark_setting

SWITCHES = ("precision", "channels_last", "fused_optimizer", "cudnn_benchmark")

# Why a switch is not measured on a CPU (where devices.place leaves it without effect).
CPU_SKIP_REASONS = {
    "precision": "bf16 autocast and TF32 are CUDA switches; on the CPU every variant runs in fp32",
    "channels_last": "measured with each compile mode in the compile table below",
    "fused_optimizer": "the fused SGD kernel is used on CUDA only; the CPU uses foreach SGD",
    "cudnn_benchmark": "cuDNN autotuning exists on CUDA only",
}
PRECISIONS = ("bf16", "tf32", "fp32")


def ablation_plan(placement: Placement) -> list[dict[str, Any]]:
    """One entry per switch: what the measured run changes, or why it is skipped."""
    out = []
    cuda = placement.device.type == "cuda"
    cudnn = cudnn_benchmark_setting(placement.device)
    configured = {
        "precision": placement.precision,
        "channels_last": placement.channels_last,
        "fused_optimizer": placement.fused_optimizer,
        "cudnn_benchmark": cudnn,
    }
    for switch in SWITCHES:
        entry: dict[str, Any] = {"switch": switch, "configured": configured[switch]}
        if not cuda:
            out.append({**entry, "status": "skipped", "reason": CPU_SKIP_REASONS[switch]})
            continue
        if switch == "precision":
            # Every other precision, one entry each: what bf16 and TF32 buy over fp32.
            for other in PRECISIONS:
                if other != placement.precision:
                    out.append({**entry, "status": "measure", "changed_to": other})
            continue
        if configured[switch]:
            entry.update(status="measure", changed_to=False)
        else:
            entry.update(
                status="skipped",
                reason=f"{switch} is already off in the configured "
                "settings; turn it on to measure what it buys",
            )
        out.append(entry)
    return out


def ablated_placement(placement: Placement, switch: str, value: Any) -> Placement:
    """`placement` with `switch` set to `value`, as its ablation measures it; cudnn_benchmark,
    a process-wide flag rather than a placement field, leaves the placement as it is."""
    if switch == "cudnn_benchmark":
        return placement  # a process-wide flag, set in the measuring process
    return dataclasses.replace(placement, **{switch: value})


def _fresh_process(
    study: Study,
    model_name: str,
    placement: Placement,
    batch_size: int,
    warmup_steps: int,
    steps: int,
    seed: int,
    log: Callable[[str], None],
    cudnn_benchmark: bool | None = None,
) -> dict[str, Any]:
    """The trainer measured in a new process: cuDNN plans tuned, and graphs compiled, earlier
    in this process would otherwise carry over into the measurement."""
    saved = torch.backends.cudnn.benchmark
    if cudnn_benchmark is not None:
        torch.backends.cudnn.benchmark = cudnn_benchmark  # handed to the new process
    try:
        return run_packed(
            study, model_name, placement, 1, batch_size, warmup_steps, steps, seed, log
        )
    finally:
        torch.backends.cudnn.benchmark = saved


def run_ablation(
    model_name: str,
    study: Study,
    placement: Placement,
    batch_size: int,
    warmup_steps: int,
    steps: int,
    seed: int,
    baseline_ips: float,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Each measurable switch changed alone, each in a fresh process."""
    entries = ablation_plan(placement)
    for entry in entries:
        if entry["status"] != "measure":
            continue
        switch, value = entry["switch"], entry["changed_to"]
        log(f"ablation: trainer with {switch} = {value} (fresh process)")
        timing = _fresh_process(
            study,
            model_name,
            ablated_placement(placement, switch, value),
            batch_size,
            warmup_steps,
            steps,
            seed,
            log,
            cudnn_benchmark=bool(value) if switch == "cudnn_benchmark" else None,
        )
        if "error" in timing:
            entry.update(status="failed", reason=timing["error"])
            continue
        ips = timing["images_per_second"]
        entry.update(
            status="measured",
            **_job_timing(timing),
            relative_to_configured=ips / baseline_ips,
            # > 1: the configured setting of this switch is faster by this factor.
            switch_speedup=baseline_ips / ips,
        )
    return entries


def run_compile_grid(
    model_name: str,
    study: Study,
    placement: Placement,
    batch_size: int,
    warmup_steps: int,
    steps: int,
    seed: int,
    log: Callable[[str], None] = print,
    modes: Sequence[str] = COMPILE_MODES,
) -> list[dict[str, Any]]:
    """The trainer with each `device.compile` mode (eager, compiled model, compiled step),
    with and without channels_last, each in a fresh process (so each pays its own compile,
    reported apart as the first step's seconds), on the device at hand."""
    rows = []
    for compile_ in modes:
        for channels_last in (False, True):
            log(f"compile table: trainer with compile={compile_}, channels_last={channels_last}")
            variant = dataclasses.replace(placement, compile=compile_, channels_last=channels_last)
            timing = _fresh_process(
                study, model_name, variant, batch_size, warmup_steps, steps, seed, log
            )
            row: dict[str, Any] = {"compile": compile_, "channels_last": channels_last}
            if "error" in timing:
                row.update(status="failed", reason=timing["error"])
            else:
                row.update(status="measured", **_job_timing(timing))
            rows.append(row)
    return rows


def _job_timing(packed: dict[str, Any]) -> dict[str, Any]:
    """The one job's figures from a one-job packed measurement."""
    job = packed["jobs_timing"][0]
    keep = ("images_per_second", "ms_per_step", "ops_per_step", "first_step_seconds")
    out = {k: job[k] for k in keep if k in job}
    if job.get("peak_memory_mb") is not None:
        out["peak_memory_mb"] = job["peak_memory_mb"]
    return out
