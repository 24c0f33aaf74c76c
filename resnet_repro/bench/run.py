"""`run_benchmark`: the variants side by side on one placement, then the optional ablation and
packing, as one JSON-ready dict with the settings and the machine."""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from typing import Any

import torch

from .. import data as data_mod
from ..config import ConfigError, Study, parse_model_name
from ..engine.devices import Placement
from ..engine.step import COMPILE_MODES
from .ablation import run_ablation, run_compile_grid
from .ops import kernel_profiling
from .packing import run_packed
from .timing import (
    PeakMemory,
    cudnn_benchmark_setting,
    default_workers,
    machine_info,
    without_clock_marks,
)
from .variants import VARIANTS, bench_arrays, measure_ceiling, measure_dataloader, measure_trainer

DEFAULT_BATCH_SIZE = 128
DEFAULT_WARMUP_STEPS = 20
DEFAULT_STEPS = 100


def run_benchmark(
    study: Study,
    model: str,
    placement: Placement,
    batch_size: int = DEFAULT_BATCH_SIZE,
    warmup_steps: int = DEFAULT_WARMUP_STEPS,
    steps: int = DEFAULT_STEPS,
    workers: int | None = None,
    variants: Sequence[str] = VARIANTS,
    ablate: bool = False,
    compile_modes: Sequence[str] = COMPILE_MODES,
    jobs_per_gpu: int = 1,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Measure the variants (and optionally the ablation and packing) on `placement`, which
    must come from devices.place (so a GPU slot is held and cuDNN is set). The data are the
    study's `data` settings (synthetic data or CIFAR-10); the seed is the study's first.

    Returns a JSON-ready dict: one entry per variant (`images_per_second`, `steps`,
    `seconds`, `ms_per_step`, ...), `ablation` (list or None), `packed` (dict or None),
    `peak_memory_mb`, `machine` and `settings`."""
    parse_model_name(model)
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        raise ConfigError(f"bench variants {list(variants)}: allowed values {list(VARIANTS)}")
    if batch_size < 1 or steps < 1 or warmup_steps < 0 or jobs_per_gpu < 1:
        raise ConfigError(
            f"bench: batch size ({batch_size}), steps ({steps}) and jobs per "
            f"GPU ({jobs_per_gpu}) must be >= 1, warm-up steps ({warmup_steps}) "
            ">= 0"
        )
    workers = default_workers() if workers is None else workers
    if workers < 0:
        raise ConfigError(f"bench: workers must be >= 0, got {workers}")
    device = placement.device
    kernel_profiling()  # before anything compiles: the ops count sees compiled CPU kernels
    seed = study.study.seeds[0]
    arrays = bench_arrays(study.data)
    n_train = len(arrays.train_y)
    memory = PeakMemory(device)
    memory.start()
    dd = data_mod.to_device(arrays, device, study.data.normalization)

    result: dict[str, Any] = {}
    args = (model, study, placement, batch_size, warmup_steps, steps, seed)
    todo = list(dict.fromkeys(list(variants) + (["trainer"] if ablate else [])))
    for variant in VARIANTS:
        if variant not in todo:
            continue
        log(
            f"measuring {variant}: {model}, batch {batch_size}, {warmup_steps} warm-up + "
            f"{steps} timed steps on {placement.name}"
        )
        memory.start()
        if variant == "trainer":
            timing = measure_trainer(dd, *args)
        elif variant == "dataloader":
            timing = measure_dataloader(arrays, *args, workers=workers)
        else:
            timing = measure_ceiling(dd, *args)
        result[variant] = {**without_clock_marks(timing), **memory.since_start()}
        log(f"  {variant}: {timing['images_per_second']:,.0f} images/s")
    if "ceiling" in result:
        for variant in ("trainer", "dataloader"):
            if variant in result:
                result[variant]["relative_to_ceiling"] = (
                    result[variant]["images_per_second"] / result["ceiling"]["images_per_second"]
                )
        result["ceiling"]["relative_to_ceiling"] = 1.0

    result["ablation"] = result["compile"] = None
    if ablate:
        result["ablation"] = run_ablation(
            model,
            study,
            placement,
            batch_size,
            warmup_steps,
            steps,
            seed,
            result["trainer"]["images_per_second"],
            log,
        )
        result["compile"] = run_compile_grid(
            model, study, placement, batch_size, warmup_steps, steps, seed, log, compile_modes
        )
    result["peak_memory_mb"], result["peak_memory_source"] = memory.overall()

    if jobs_per_gpu > 1:
        del dd  # the jobs bring their own copies
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        packed = run_packed(
            study, model, placement, jobs_per_gpu, batch_size, warmup_steps, steps, seed, log
        )
        if "error" not in packed and "trainer" in result:
            packed["relative_to_one_job"] = (
                packed["images_per_second"] / result["trainer"]["images_per_second"]
            )
        if "error" in packed:
            log(f"packing failed: {packed['error']}")
        result["packed"] = packed
    else:
        result["packed"] = None

    result["machine"] = machine_info(placement)
    result["settings"] = {
        "model": model,
        "shortcut": study.study.shortcut,
        "batch_size": batch_size,
        "precision": placement.precision,
        "channels_last": placement.channels_last,
        "compile": placement.compile,
        "compile_mode": placement.compile_mode,
        "deterministic": placement.deterministic,
        "fused_optimizer": placement.fused_optimizer,
        "cudnn_benchmark": cudnn_benchmark_setting(device),
        "workers": workers,
        "dataloader_start_method": (
            torch.multiprocessing.get_start_method() if workers > 0 else None
        ),
        "warmup_steps": warmup_steps,
        "steps": steps,
        "seed": seed,
        "variants": [v for v in VARIANTS if v in result],
        "ablate": ablate,
        "jobs_per_gpu": jobs_per_gpu,
        "data": {
            "source": study.data.source,
            "root": study.data.root if study.data.source == "cifar10" else None,
            "train_images": n_train,
        },
        "optimizer": {
            "lr": study.train.lr,
            "momentum": study.train.momentum,
            "weight_decay": study.train.weight_decay,
            "kind": "fused SGD" if placement.fused_optimizer else "foreach SGD",
        },
    }
    return result
