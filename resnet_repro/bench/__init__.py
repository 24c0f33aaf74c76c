"""The throughput benchmark: training images per second, side by side in one run, for

* ``trainer``: our training step as `train.train_run` runs it (`step.TrainStep`, eager or
  compiled as `device.compile` says): the data set on the device, each epoch's permutation,
  crops and flips drawn at its start, the section 4.2 augmentation made on the device, SGD,
  and the loss and error summed in device tensors (no host sync per step);
* ``dataloader``: what users would pick instead: torchvision transforms (RandomCrop(32,
  padding=4), RandomHorizontalFlip, ToTensor, Normalize) over a Dataset of PIL images, as
  torchvision's CIFAR10 class does it, in a `torch.utils.data.DataLoader` with worker
  processes, the batches moved to the device with ``non_blocking=True`` and fed to the same
  `step.TrainStep`;
* ``ceiling``: forward, backward and step on one fixed batch already on the device, the bound
  that no input pipeline can beat.

Each variant trains a fresh model and optimizer built the same way from the same seed, so the
three differ only in how the batches are made. Timing: `warmup_steps` steps first (worker
start-up, cuDNN autotuning and compilation fall there), then `steps` timed steps; the device is
synchronised only at the two timing boundaries.

Optional: ``ablate`` measures the trainer again with each GPU speed switch turned off (or, for
compile, toggled) one at a time, which shows what each switch buys; on a CPU, where these
switches do not apply, they are reported as skipped with the reason. ``jobs_per_gpu=K``
(K > 1) runs K trainer measurements at once in K spawned processes on the same device and
reports their aggregate images per second: whether packing several training jobs on one GPU
pays when one job cannot fill it.

``resnet-repro bench-study`` measures the trainer for every model of a study config and
projects the whole study's training time onto N devices (`projection`): the figure behind
"the full study on two GPUs takes ... minutes".

The public API is `run_benchmark` and `format_table`; the ``resnet-repro bench`` and
``bench-study`` subcommands (`cli/bench.py`) read their arguments and call them.

The modules, one concern each: `timing` (timed steps, peak memory, machine), `variants` (the
three measured pipelines), `ablation` (the speed switches), `packing` (K jobs on one device),
`run` (`run_benchmark`), `report` (`format_table`) and `projection` (the study's projected
time). This package re-exports their names, so
`from resnet_repro.bench import ...` works as for one module.
"""

from __future__ import annotations

from .ablation import CPU_SKIP_REASONS, SWITCHES, run_ablation
from .packing import run_packed
from .report import format_table
from .run import DEFAULT_BATCH_SIZE, DEFAULT_STEPS, DEFAULT_WARMUP_STEPS, run_benchmark
from .timing import PeakMemory, default_workers, machine_info
from .variants import (
    VARIANTS,
    PilCifar,
    bench_arrays,
    conventional_transform,
    measure_ceiling,
    measure_dataloader,
    measure_trainer,
)

__all__ = [
    "CPU_SKIP_REASONS",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_STEPS",
    "DEFAULT_WARMUP_STEPS",
    "SWITCHES",
    "VARIANTS",
    "PeakMemory",
    "PilCifar",
    "bench_arrays",
    "conventional_transform",
    "default_workers",
    "format_table",
    "machine_info",
    "measure_ceiling",
    "measure_dataloader",
    "measure_trainer",
    "run_ablation",
    "run_benchmark",
    "run_packed",
]
