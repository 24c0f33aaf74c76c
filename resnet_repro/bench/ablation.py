"""The ablation: the trainer measured again with each GPU speed switch changed, one at a time,
to show what each switch buys; on a CPU, where these switches do not apply, each is reported
as skipped with the reason."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch

from .. import data as data_mod
from ..config import Study
from ..engine.devices import Placement
from .timing import PeakMemory, _cudnn_benchmark, _public
from .variants import measure_trainer

SWITCHES = ("precision", "channels_last", "fused_optimizer", "cudnn_benchmark", "compile")

# Why a switch is not measured on a CPU (where devices.place leaves it without effect).
CPU_SKIP_REASONS = {
    "precision": "bf16 autocast is a CUDA switch; on the CPU every variant runs in fp32",
    "channels_last": "channels_last is applied on CUDA only (devices.place turns it off on "
    "the CPU)",
    "fused_optimizer": "the fused SGD kernel is used on CUDA only; the CPU uses foreach SGD",
    "cudnn_benchmark": "cuDNN autotuning exists on CUDA only",
    "compile": "compile is benchmarked as a GPU switch; on the CPU its minutes of compile "
    "time (and C++ toolchain) make a short benchmark meaningless",
}


def _ablations(placement: Placement) -> list[dict[str, Any]]:
    """One entry per switch: what the measured run changes, or why it is skipped."""
    out = []
    cuda = placement.device.type == "cuda"
    cudnn = _cudnn_benchmark(placement.device)
    configured = {
        "precision": placement.precision,
        "channels_last": placement.channels_last,
        "fused_optimizer": placement.fused_optimizer,
        "cudnn_benchmark": cudnn,
        "compile": placement.compile,
    }
    for switch in SWITCHES:
        entry: dict[str, Any] = {"switch": switch, "configured": configured[switch]}
        if not cuda:
            entry.update(status="skipped", reason=CPU_SKIP_REASONS[switch])
        elif switch == "precision":
            if placement.precision == "bf16":
                entry.update(status="measure", changed_to="fp32")
            else:
                entry.update(
                    status="skipped",
                    reason="already fp32 in the configured "
                    "settings; set --precision bf16 to measure what bf16 buys",
                )
        elif switch == "compile":
            entry.update(status="measure", changed_to=not placement.compile)
        elif configured[switch]:
            entry.update(status="measure", changed_to=False)
        else:
            entry.update(
                status="skipped",
                reason=f"{switch} is already off in the configured "
                "settings; turn it on to measure what it buys",
            )
        out.append(entry)
    return out


def _ablated_placement(placement: Placement, switch: str, value: Any) -> Placement:
    if switch == "cudnn_benchmark":
        return placement  # a process-wide flag, set around the measurement
    return dataclasses.replace(placement, **{switch: value})


def run_ablation(
    dd: data_mod.DeviceData,
    model_name: str,
    study: Study,
    placement: Placement,
    batch_size: int,
    warmup_steps: int,
    steps: int,
    seed: int,
    baseline_ips: float,
    log: Callable[[str], None] = print,
    memory: PeakMemory | None = None,
) -> list[dict[str, Any]]:
    memory = memory or PeakMemory(placement.device)
    entries = _ablations(placement)
    for entry in entries:
        if entry["status"] != "measure":
            continue
        switch, value = entry["switch"], entry["changed_to"]
        log(f"ablation: trainer with {switch} = {value}")
        saved = torch.backends.cudnn.benchmark
        if switch == "cudnn_benchmark":
            torch.backends.cudnn.benchmark = bool(value)
        try:
            memory.start()
            timing = measure_trainer(
                dd,
                model_name,
                study,
                _ablated_placement(placement, switch, value),
                batch_size,
                warmup_steps,
                steps,
                seed,
            )
        finally:
            torch.backends.cudnn.benchmark = saved
        ips = timing["images_per_second"]
        entry.update(
            status="measured",
            **_public(timing),
            **memory.since_start(),
            relative_to_configured=ips / baseline_ips,
            # > 1: the configured setting of this switch is faster by this factor.
            switch_speedup=baseline_ips / ips,
        )
    return entries
