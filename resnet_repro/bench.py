"""The throughput benchmark: training images per second, side by side in one run, for

* ``trainer``: our training step as `train.train_run` runs it: the data set on the device,
  a new `data.epoch_order` permutation each epoch, the section 4.2 augmentation made on the
  device by `train.training_batch`, `train.train_step` with the optimizer of
  `train.make_optimizer`, and the loss and error summed in device tensors (no host sync per
  step);
* ``dataloader``: what users would pick instead: torchvision transforms (RandomCrop(32,
  padding=4), RandomHorizontalFlip, ToTensor, Normalize) over a Dataset of PIL images, as
  torchvision's CIFAR10 class does it, in a `torch.utils.data.DataLoader` with worker
  processes, the batches moved to the device with ``non_blocking=True`` and fed to the same
  `train.train_step`;
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

The public API is `run_benchmark`, `format_table`, `add_arguments` and `run_from_args`; the
``resnet-repro bench`` subcommand only wires the last two to argparse.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import itertools
import multiprocessing
import os
import platform
import queue as queue_mod
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from . import data as data_mod
from .config import (
    ConfigError,
    Study,
    TrainConfig,
    deep_merge,
    parse_model_name,
    read_yaml,
    study_from_dict,
)
from .devices import Placement, cpu_name, place
from .results import write_json
from .train import (
    DeviceMeter,
    epoch_batches,
    epoch_seed,
    lr_at,
    set_lr,
    setup_model,
    steps_per_epoch,
    train_step,
    training_batch,
)

VARIANTS = ("trainer", "dataloader", "ceiling")
DEFAULT_TRAIN_IMAGES = 10_000
DEFAULT_BATCH_SIZE = 128
DEFAULT_WARMUP_STEPS = 20
DEFAULT_STEPS = 100
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


# ---------------------------------------------------------------- small helpers


def default_workers() -> int:
    """DataLoader workers when none are asked for: min(8, CPUs this process may use)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(8, cpus))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _cudnn_benchmark(device: torch.device) -> bool | None:
    return bool(torch.backends.cudnn.benchmark) if device.type == "cuda" else None


def _bench_train_config(study: Study, batch_size: int) -> TrainConfig:
    return dataclasses.replace(study.train, batch_size=batch_size)


def bench_arrays(cfg: data_mod.DataConfig) -> data_mod.CifarArrays:
    """The training images of the study's data settings (split and subset applied as in
    training); the test set is cut to one image, since nothing is evaluated."""
    return data_mod.load_arrays(dataclasses.replace(cfg, test_subset=1))


def _time_steps(
    step: Callable[[], int],
    warmup_steps: int,
    steps: int,
    device: torch.device,
    acc: DeviceMeter,
    before_timing: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Run `warmup_steps` untimed steps, then `steps` timed ones; `step` returns the images it
    trained on. The device is synchronised only at the timing boundaries."""
    for _ in range(warmup_steps):
        step()
    _sync(device)
    acc.reset()  # zeroing device tensors is queued work: done before the clock starts
    _sync(device)
    if before_timing is not None:
        before_timing()
    images = 0
    t0 = time.perf_counter()
    for _ in range(steps):
        images += step()
    _sync(device)
    t1 = time.perf_counter()
    loss, error = acc.read()
    seconds = t1 - t0
    return {
        "images_per_second": images / seconds,
        "steps": steps,
        "images": images,
        "seconds": seconds,
        "ms_per_step": 1000.0 * seconds / steps,
        "warmup_steps": warmup_steps,
        "train_loss": loss,
        "train_error_pct": error,
        "t0": t0,
        "t1": t1,
    }


def _public(timing: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in timing.items() if k not in ("t0", "t1")}


class PeakMemory:
    """Peak memory: per variant on CUDA (whose peak counter can be reset), and for the whole
    run (on the CPU the process's peak RSS, which cannot be reset)."""

    def __init__(self, device: torch.device):
        self.device = device
        self._overall = 0

    def start(self) -> None:
        """Begin a measurement: the peak counter restarts, the run's peak is kept."""
        if self.device.type == "cuda":
            self._overall = max(self._overall, torch.cuda.max_memory_allocated(self.device))
            torch.cuda.reset_peak_memory_stats(self.device)

    def since_start(self) -> dict[str, Any]:
        if self.device.type != "cuda":
            return {}
        return {"peak_memory_mb": torch.cuda.max_memory_allocated(self.device) / 2**20}

    def overall(self) -> tuple[float | None, str]:
        if self.device.type == "cuda":
            peak = max(self._overall, torch.cuda.max_memory_allocated(self.device))
            return peak / 2**20, "torch.cuda.max_memory_allocated"
        try:
            import resource
        except ImportError:  # not on Windows
            return None, "unavailable"
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # Linux reports kilobytes, macOS bytes.
        mb = rss / 2**20 if sys.platform == "darwin" else rss / 1024
        return mb, (
            "peak RSS of this process (resource.getrusage; DataLoader workers and "
            "packed jobs not counted)"
        )


# ---------------------------------------------------------------- the three variants


def measure_trainer(
    dd: data_mod.DeviceData,
    model_name: str,
    study: Study,
    placement: Placement,
    batch_size: int,
    warmup_steps: int,
    steps: int,
    seed: int,
    before_timing: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Our training step: the loop body of train.train_run, with data on the device."""
    device = placement.device
    train = _bench_train_config(study, batch_size)
    _, step_model, optimizer = setup_model(
        model_name, study.study.shortcut, train, placement, seed, study.model_width(model_name)
    )
    per_epoch = steps_per_epoch(len(dd.train_y), batch_size)
    batches = itertools.chain.from_iterable(
        epoch_batches(dd, seed, epoch, per_epoch, train, placement) for epoch in itertools.count(1)
    )
    acc = DeviceMeter(device)
    state = {"iteration": 0, "lr": train.lr}

    def step() -> int:
        # The host work train_run does per step.
        new_lr = lr_at(state["iteration"], train, per_epoch=per_epoch)
        if new_lr != state["lr"]:
            state["lr"] = new_lr
            set_lr(optimizer, new_lr)
        x, y = next(batches)
        loss, wrong = train_step(step_model, optimizer, x, y, placement)
        acc.add(loss, wrong, len(y))
        state["iteration"] += 1
        return len(y)

    return _time_steps(step, warmup_steps, steps, device, acc, before_timing)


class PilCifar(torch.utils.data.Dataset):
    """CIFAR images held as uint8 HWC arrays and handed to the transform as PIL images, the
    way torchvision.datasets.CIFAR10 does it."""

    def __init__(self, images_nchw: np.ndarray, labels: np.ndarray, transform: Callable):
        self.images = np.ascontiguousarray(images_nchw.transpose(0, 2, 3, 1))
        self.labels = labels.astype(np.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def conventional_transform(
    train_x: np.ndarray, padding: int = 4, flip: bool = True, divide_by_std: bool = False
):
    """RandomCrop(32, padding) + RandomHorizontalFlip + ToTensor + Normalize. Normalize gets
    the per-channel training mean and std 1, the nearest torchvision gets to the paper's
    per-pixel mean subtraction (the cost is the same either way), or the per-channel std
    with `divide_by_std` (data.normalization: per_channel_mean_std, the ImageNet-style
    recipe)."""
    from torchvision import transforms as T

    per_channel = train_x.reshape(len(train_x), 3, -1).transpose(1, 0, 2).reshape(3, -1)
    mean = (per_channel.mean(axis=1) / 255.0).tolist()
    std = (per_channel.std(axis=1) / 255.0).tolist() if divide_by_std else [1.0, 1.0, 1.0]
    steps: list[Any] = [T.RandomCrop(32, padding=padding)] if padding > 0 else []
    if flip:
        steps.append(T.RandomHorizontalFlip())
    steps += [T.ToTensor(), T.Normalize(mean, std)]
    return T.Compose(steps)


def measure_dataloader(
    arrays: data_mod.CifarArrays,
    model_name: str,
    study: Study,
    placement: Placement,
    batch_size: int,
    warmup_steps: int,
    steps: int,
    seed: int,
    workers: int,
) -> dict[str, Any]:
    """The conventional input pipeline: PIL images, torchvision transforms, DataLoader workers."""
    device = placement.device
    train = _bench_train_config(study, batch_size)
    _, step_model, optimizer = setup_model(
        model_name, study.study.shortcut, train, placement, seed, study.model_width(model_name)
    )
    dataset = PilCifar(
        arrays.train_x,
        arrays.train_y,
        conventional_transform(
            arrays.train_x,
            train.augment.padding,
            train.augment.flip,
            divide_by_std=study.data.normalization == "per_channel_mean_std",
        ),
    )
    pin = device.type == "cuda"
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        pin_memory=pin,
        drop_last=len(dataset) >= batch_size,
        persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(seed),
    )
    acc = DeviceMeter(device)

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:  # epoch after epoch; persistent workers survive the epoch boundary
            yield from loader  # noqa: F821 (deleted only after the last step)

    it = batches()

    def step() -> int:
        xb, yb = next(it)  # noqa: F821 (deleted only after the last step)
        x = xb.to(device, non_blocking=True)
        y = yb.to(device, non_blocking=True)
        if placement.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        loss, wrong = train_step(step_model, optimizer, x, y, placement)
        n = len(yb)
        acc.add(loss, wrong, n)
        return n

    try:
        result = _time_steps(step, warmup_steps, steps, device, acc)
    finally:
        it.close()  # ends the epoch's iterator; dropping the loader stops the workers
        del it, loader
        gc.collect()
    result.update(workers=workers, pin_memory=pin, persistent_workers=workers > 0)
    return result


def measure_ceiling(
    dd: data_mod.DeviceData,
    model_name: str,
    study: Study,
    placement: Placement,
    batch_size: int,
    warmup_steps: int,
    steps: int,
    seed: int,
) -> dict[str, Any]:
    """Forward, backward and step on one fixed, already augmented batch on the device."""
    device = placement.device
    train = _bench_train_config(study, batch_size)
    _, step_model, optimizer = setup_model(
        model_name, study.study.shortcut, train, placement, seed, study.model_width(model_name)
    )
    gen = torch.Generator(device=device).manual_seed(epoch_seed(seed, 1))
    idx = data_mod.epoch_order(len(dd.train_y), gen, device)[:batch_size]
    x, y = training_batch(dd, idx, gen, train, placement)
    acc = DeviceMeter(device)

    def step() -> int:
        loss, wrong = train_step(step_model, optimizer, x, y, placement)
        acc.add(loss, wrong, len(y))
        return len(y)

    return _time_steps(step, warmup_steps, steps, device, acc)


# ---------------------------------------------------------------- ablation


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


# ---------------------------------------------------------------- packing


def _packed_job(rank: int, job: dict[str, Any], barrier, results) -> None:
    """One of K concurrent trainer measurements (a spawned process)."""
    try:
        torch.set_num_threads(job["threads"])
        placement: Placement = job["placement"]
        if placement.device.type == "cuda":
            torch.backends.cudnn.benchmark = job["cudnn_benchmark"]
        dd = data_mod.to_device(
            bench_arrays(job["study"].data), placement.device, job["study"].data.normalization
        )
        timing = measure_trainer(
            dd,
            job["model"],
            job["study"],
            placement,
            job["batch_size"],
            job["warmup_steps"],
            job["steps"],
            job["seed"],
            before_timing=barrier.wait,
        )
        timing.update(PeakMemory(placement.device).since_start())
        results.put(("ok", rank, timing))
    except BaseException as e:  # reported to the parent, which aborts the others
        results.put(("error", rank, f"{type(e).__name__}: {e}"))
        try:
            barrier.abort()
        except Exception:
            pass


def run_packed(
    study: Study,
    model_name: str,
    placement: Placement,
    jobs: int,
    batch_size: int,
    warmup_steps: int,
    steps: int,
    seed: int,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """K trainer measurements at once in K spawned processes on the same device. Each loads
    the data and warms up on its own; all start timing together (a barrier), and the
    aggregate rate is all images over the span from the first start to the last end.

    The K processes run under this process's GPU slot: they are one benchmark, not K jobs."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(jobs)
    results = ctx.Queue()
    job = {
        "study": study,
        "model": model_name,
        "placement": placement,
        "batch_size": batch_size,
        "warmup_steps": warmup_steps,
        "steps": steps,
        "seed": seed,
        "threads": torch.get_num_threads(),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
    }
    procs = [
        ctx.Process(
            target=_packed_job,
            args=(r, job, barrier, results),
            daemon=True,
            name=f"resnet-repro-bench-job{r}",
        )
        for r in range(jobs)
    ]
    log(f"packing: {jobs} trainer jobs at once on {placement.name}")
    got: dict[int, dict[str, Any]] = {}
    errors: list[str] = []
    finished = False
    try:
        for p in procs:
            p.start()
        while len(got) + len(errors) < jobs:
            try:
                status, rank, payload = results.get(timeout=1.0)
            except queue_mod.Empty:
                dead = [p for p in procs if p.exitcode not in (None, 0)]
                if dead and len(got) + len(errors) < jobs:
                    # A job died without a word (killed, out of memory): the others would
                    # wait at the barrier for ever.
                    try:
                        status, rank, payload = results.get(timeout=2.0)
                    except queue_mod.Empty:
                        barrier.abort()
                        errors.append(
                            f"job process {dead[0].name} exited with code {dead[0].exitcode}"
                        )
                        break
                else:
                    continue
            if status == "ok":
                got[rank] = payload
            else:
                errors.append(f"job {rank}: {payload}")
                barrier.abort()
        finished = True
    finally:
        for p in procs:
            p.join(timeout=30 if finished else 0)  # interrupted: stop the jobs at once
        for p in procs:
            if p.is_alive():
                p.terminate()
                p.join()
    if errors:
        # The first error is the cause; the rest are usually the broken barrier it left.
        cause = next((e for e in errors if "BrokenBarrierError" not in e), errors[0])
        return {"jobs": jobs, "error": cause}
    timings = [got[r] for r in range(jobs)]
    span = max(t["t1"] for t in timings) - min(t["t0"] for t in timings)
    images = sum(t["images"] for t in timings)
    out: dict[str, Any] = {
        "jobs": jobs,
        "images_per_second": images / span,
        "images": images,
        "seconds": span,
        "steps": steps,
        "warmup_steps": warmup_steps,
        "ms_per_step": 1000.0 * span / steps,  # per job: every job ran `steps` steps
        "per_job_images_per_second": [t["images_per_second"] for t in timings],
    }
    if placement.device.type == "cuda":
        out["per_job_peak_memory_mb"] = [t.get("peak_memory_mb") for t in timings]
    return out


# ---------------------------------------------------------------- the benchmark


def machine_info(placement: Placement) -> dict[str, Any]:
    import torchvision

    gpu = torch.cuda.get_device_name(placement.device) if placement.device.type == "cuda" else None
    return {
        "cpu": cpu_name(),
        "gpu": gpu,
        "device": placement.name,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
    }


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
        result[variant] = {**_public(timing), **memory.since_start()}
        log(f"  {variant}: {timing['images_per_second']:,.0f} images/s")
    if "ceiling" in result:
        for variant in ("trainer", "dataloader"):
            if variant in result:
                result[variant]["relative_to_ceiling"] = (
                    result[variant]["images_per_second"] / result["ceiling"]["images_per_second"]
                )
        result["ceiling"]["relative_to_ceiling"] = 1.0

    result["ablation"] = (
        run_ablation(
            dd,
            model,
            study,
            placement,
            batch_size,
            warmup_steps,
            steps,
            seed,
            result["trainer"]["images_per_second"],
            log,
            memory,
        )
        if ablate
        else None
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
        "fused_optimizer": placement.fused_optimizer,
        "cudnn_benchmark": _cudnn_benchmark(device),
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


# ---------------------------------------------------------------- the table


def _fmt_rate(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def format_table(result: dict[str, Any]) -> str:
    """The variants side by side (images/s, ms/step, relative to the ceiling), then the
    packed jobs and the ablation, if measured."""
    s = result.get("settings", {})
    m = result.get("machine", {})
    ceiling = (result.get("ceiling") or {}).get("images_per_second")
    lines = []
    if s:
        lines.append(
            f"{s['model']}, batch {s['batch_size']}, {s['precision']}, "
            f"{s['warmup_steps']} warm-up + {s['steps']} timed steps, "
            f"{s['data']['train_images']:,} {s['data']['source']} training images"
        )
    if m:
        lines.append(f"device: {m.get('device')}; torch {m.get('torch')}")
    header = f"{'variant':<14}{'images/s':>12}{'ms/step':>11}{'vs ceiling':>12}"
    lines += [header, "-" * len(header)]

    def row(name: str, entry: dict[str, Any]) -> str:
        ips = entry["images_per_second"]
        rel = f"{100.0 * ips / ceiling:.0f}%" if ceiling else "-"
        return f"{name:<14}{_fmt_rate(ips):>12}{entry['ms_per_step']:>11.1f}{rel:>12}"

    for variant in VARIANTS:
        if result.get(variant):
            name = variant
            if variant == "dataloader" and "workers" in result[variant]:
                name = f"dataloader/{result[variant]['workers']}w"
            lines.append(row(name, result[variant]))
    packed = result.get("packed")
    if packed:
        if "error" in packed:
            lines.append(f"packed x{packed['jobs']}: failed: {packed['error']}")
        else:
            lines.append(
                row(f"packed x{packed['jobs']}", packed) + "  (aggregate; ms/step per job)"
            )
    ablation = result.get("ablation")
    if ablation:
        lines.append(
            "ablation: trainer with one switch changed (speed-up = what the "
            "configured setting buys)"
        )
        for e in ablation:
            label = f"{e['switch']} {e['configured']}"
            if e["status"] == "measured":
                label += f" -> {e['changed_to']}"
                lines.append(
                    f"  {label:<30}{_fmt_rate(e['images_per_second']):>10} images/s"
                    f"  speed-up x{e['switch_speedup']:.2f}"
                )
            else:
                lines.append(f"  {e['switch']:<30}skipped: {e['reason']}")
    if result.get("peak_memory_mb") is not None:
        lines.append(
            f"peak memory: {result['peak_memory_mb']:,.0f} MB, "
            f"{result.get('peak_memory_source', '')}"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `resnet-repro bench`."""
    parser.add_argument(
        "--model",
        required=True,
        help="plain or resnet followed by a depth 6n+2, e.g. resnet20, or an "
        "ImageNet-style net: imagenet-resnet18, 34 or 50",
    )
    parser.add_argument(
        "--config",
        action="extend",
        nargs="+",
        metavar="YAML",
        default=None,
        help="study config file(s) for the data (e.g. real CIFAR-10), the "
        "recipe and the device switches; without one, synthetic data",
    )
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default=None,
        help="overrides device.device (default: the config's, else auto)",
    )
    parser.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default=None,
        help="overrides device.precision",
    )
    parser.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="overrides device.channels_last",
    )
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="overrides device.compile",
    )
    parser.add_argument(
        "--fused-optimizer",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="overrides device.fused_optimizer",
    )
    parser.add_argument(
        "--cudnn-benchmark",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="overrides device.cudnn_benchmark",
    )
    parser.add_argument(
        "--cpu-threads",
        type=int,
        default=None,
        metavar="N",
        help="torch CPU threads; overrides device.cpu_threads",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help=f"images per step (default {DEFAULT_BATCH_SIZE}, as the paper)",
    )
    parser.add_argument(
        "--warmup-steps",
        type=int,
        default=DEFAULT_WARMUP_STEPS,
        help=f"untimed steps first (default {DEFAULT_WARMUP_STEPS})",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=DEFAULT_STEPS,
        help=f"timed steps per variant (default {DEFAULT_STEPS})",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="DataLoader workers of the dataloader variant (default "
        "min(8, CPUs); 0 loads in the main process)",
    )
    parser.add_argument(
        "--train-images",
        type=int,
        default=None,
        metavar="N",
        help=f"training images (data.train_subset); default "
        f"{DEFAULT_TRAIN_IMAGES:,} synthetic ones without --config",
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=VARIANTS,
        default=list(VARIANTS),
        help="which variants to measure (default: all three)",
    )
    parser.add_argument(
        "--ablate",
        action="store_true",
        help="also measure the trainer with each GPU speed switch changed",
    )
    parser.add_argument(
        "--jobs-per-gpu",
        type=int,
        default=1,
        metavar="K",
        help="also measure K trainer jobs at once on the device (aggregate "
        "images/s); default 1: not measured",
    )
    parser.add_argument(
        "--lock-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="give up waiting for a free GPU slot after this long",
    )
    parser.add_argument(
        "--json", metavar="FILE", default=None, help="write the results as JSON here"
    )


def study_from_args(args: argparse.Namespace) -> Study:
    """The study of --config (or synthetic data without one) with the command line's device
    and data overrides applied, validated like any config."""
    raw: dict[str, Any] = {}
    for path in args.config or []:
        raw = deep_merge(raw, read_yaml(path))
    if not args.config:
        raw = deep_merge(
            raw,
            {
                "data": {
                    "source": "synthetic",
                    "download": False,
                    "train_subset": DEFAULT_TRAIN_IMAGES,
                }
            },
        )
    if args.train_images is not None:
        raw = deep_merge(raw, {"data": {"train_subset": args.train_images}})
    device = {
        key: getattr(args, attr)
        for key, attr in (
            ("device", "device"),
            ("precision", "precision"),
            ("channels_last", "channels_last"),
            ("compile", "compile"),
            ("fused_optimizer", "fused_optimizer"),
            ("cudnn_benchmark", "cudnn_benchmark"),
            ("cpu_threads", "cpu_threads"),
        )
        if getattr(args, attr, None) is not None
    }
    if device:
        raw = deep_merge(raw, {"device": device})
    return study_from_dict(raw)


def run_from_args(args: argparse.Namespace, log: Callable[[str], None] | None = None) -> int:
    """`resnet-repro bench`: build the study, take the device, measure, print the table and
    write the JSON (atomically)."""
    log = log or (lambda msg: print(msg, flush=True))
    parse_model_name(args.model)
    study = study_from_args(args)
    placement, slot = place(study.device, log=log, lock_timeout=args.lock_timeout)
    try:
        result = run_benchmark(
            study,
            args.model,
            placement,
            batch_size=args.batch_size,
            warmup_steps=args.warmup_steps,
            steps=args.steps,
            workers=args.workers,
            variants=tuple(args.variants),
            ablate=args.ablate,
            jobs_per_gpu=args.jobs_per_gpu,
            log=log,
        )
    finally:
        if slot is not None:
            slot.release()
    result["command"] = list(sys.argv)
    log(format_table(result))
    if args.json:
        write_json(result, args.json)
        log(f"wrote {args.json}")
    packed = result.get("packed") or {}
    return 1 if "error" in packed else 0
