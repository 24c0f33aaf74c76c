"""`resnet-repro bench` and `resnet-repro bench-study` on the command line: their options, the
study they make, and the runs that measure, print the table and write the JSON."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from ..bench.projection import project_study, run_seconds
from ..bench.report import format_table
from ..bench.run import DEFAULT_BATCH_SIZE, DEFAULT_STEPS, DEFAULT_WARMUP_STEPS, run_benchmark
from ..bench.variants import VARIANTS
from ..config import (
    ConfigError,
    Study,
    deep_merge,
    load_study,
    parse_model_name,
    read_yaml,
    study_from_dict,
)
from ..engine.devices import place
from ..engine.step import COMPILE_MODES
from ..results import write_json

DEFAULT_TRAIN_IMAGES = 10_000


def _add_step_options(parser: argparse.ArgumentParser, unit: str) -> None:
    parser.add_argument(
        "--warmup-steps",
        type=int,
        default=DEFAULT_WARMUP_STEPS,
        help=f"untimed steps first, per {unit} (default {DEFAULT_WARMUP_STEPS})",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=DEFAULT_STEPS,
        help=f"timed steps per {unit} (default {DEFAULT_STEPS})",
    )


def _add_slot_and_json_options(parser: argparse.ArgumentParser) -> None:
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
        choices=("auto", "fp32", "tf32", "bf16"),
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
        choices=("auto", "eager", "model", "step"),
        default=None,
        help="overrides device.compile",
    )
    parser.add_argument(
        "--compile-mode",
        choices=("auto", "default", "reduce-overhead", "max-autotune-no-cudagraphs"),
        default=None,
        help="overrides device.compile_mode (reduce-overhead: CUDA graphs)",
    )
    parser.add_argument(
        "--deterministic",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="overrides device.deterministic",
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
    _add_step_options(parser, "variant")
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
        help="also measure the trainer with each GPU speed switch changed, and with each "
        "compile mode with and without channels_last (each in a fresh process)",
    )
    parser.add_argument(
        "--compile-table",
        nargs="+",
        choices=COMPILE_MODES,
        default=list(COMPILE_MODES),
        metavar="MODE",
        help="the compile modes of --ablate's compile table (default: all of "
        f"{', '.join(COMPILE_MODES)})",
    )
    parser.add_argument(
        "--jobs-per-gpu",
        type=int,
        default=1,
        metavar="K",
        help="also measure K trainer jobs at once on the device (aggregate "
        "images/s); default 1: not measured",
    )
    _add_slot_and_json_options(parser)


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
            ("compile_mode", "compile_mode"),
            ("deterministic", "deterministic"),
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
            compile_modes=args.compile_table,
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


def add_study_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `resnet-repro bench-study`."""
    parser.add_argument(
        "--config",
        action="extend",
        nargs="+",
        metavar="YAML",
        required=True,
        help="the study config file(s): its models, seeds, recipe, data and device",
    )
    parser.add_argument(
        "--devices",
        type=int,
        default=2,
        metavar="N",
        help="devices to project the study onto, one training job each (default 2)",
    )
    _add_step_options(parser, "model")
    _add_slot_and_json_options(parser)


def study_projection_text(result: dict[str, Any]) -> str:
    """The per-model rates and the projected study time, for the terminal and the README."""
    p = result["projection"]
    lines = [f"{'model':<22}{'images/s':>12}{'one run':>12}", "-" * 46]
    for model, rate in result["rates"].items():
        seconds = run_seconds(rate, result["iterations"], result["batch_size"])
        lines.append(f"{model:<22}{rate:>12,.0f}{seconds / 60:>10.1f} m")
    lines.append(
        f"{len(p['run_seconds'])} runs x {result['iterations']:,} iterations at batch "
        f"{result['batch_size']} on {p['slots']} device(s): {p['makespan_seconds'] / 60:.1f} min "
        f"of training steps, longest first (no order beats {p['lower_bound_seconds'] / 60:.1f} "
        "min); per-epoch evaluation, analyses and start-up come on top"
    )
    return "\n".join(lines)


def run_study_from_args(args: argparse.Namespace, log: Callable[[str], None] | None = None) -> int:
    """`resnet-repro bench-study`: measure the trainer's rate for each model of the study on
    this device, then project the whole study's training time onto --devices devices."""
    from ..engine.schedule import total_iterations

    log = log or (lambda msg: print(msg, flush=True))
    if args.devices < 1:
        raise ConfigError(f"bench-study --devices must be >= 1, got {args.devices}")
    study = load_study(args.config)
    placement, slot = place(study.device, log=log, lock_timeout=args.lock_timeout)
    rates: dict[str, float] = {}
    try:
        for model in study.models():
            result = run_benchmark(
                study,
                model,
                placement,
                batch_size=study.train.batch_size,
                warmup_steps=args.warmup_steps,
                steps=args.steps,
                variants=("trainer",),
                log=log,
            )
            rates[model] = result["trainer"]["images_per_second"]
            n_train = result["settings"]["data"]["train_images"]
    finally:
        if slot is not None:
            slot.release()
    iterations = total_iterations(study.train, n_train)
    out = {
        "rates": rates,
        "iterations": iterations,
        "batch_size": study.train.batch_size,
        "projection": project_study(
            rates, study.runs(), iterations, study.train.batch_size, args.devices
        ),
        "machine": result["machine"],
        "command": list(sys.argv),
    }
    log(study_projection_text(out))
    if args.json:
        write_json(out, args.json)
        log(f"wrote {args.json}")
    return 0


def add_landscape_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `resnet-repro bench-landscape`."""
    parser.add_argument("--model", required=True, help="plain or resnet + depth, e.g. resnet56")
    parser.add_argument(
        "--config",
        action="extend",
        nargs="+",
        metavar="YAML",
        default=None,
        help="study config file(s) for the data, the device and analysis.landscape_*; "
        "without one, synthetic data",
    )
    parser.add_argument(
        "--model-file",
        default=None,
        help="a trained model.pt to measure (default: the model's initialisation; the rate "
        "does not depend on the weights)",
    )
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default=None, help="overrides device.device"
    )
    parser.add_argument(
        "--cpu-threads", type=int, default=None, metavar="N", help="torch CPU threads"
    )
    parser.add_argument(
        "--images",
        type=int,
        default=1000,
        metavar="N",
        help="training images evaluated per point (default 1000)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="images per forward pass (default: the config's train.eval_batch_size)",
    )
    parser.add_argument(
        "--points",
        type=int,
        default=3,
        help="points per axis of the grid one timed landscape call evaluates (default 3)",
    )
    _add_step_options(parser, "variant")
    parser.set_defaults(warmup_steps=1, steps=3)
    _add_slot_and_json_options(parser)


def run_landscape_from_args(
    args: argparse.Namespace, log: Callable[[str], None] | None = None
) -> int:
    """`resnet-repro bench-landscape`: training images evaluated per second by the loss
    landscape's sweep against plain evaluation, on the same net, images and device, and the
    configured grid's projected time per net."""
    import torch

    from .. import data
    from ..bench.landscape import format_landscape_table, grid_seconds, measure_landscape
    from ..bench.timing import machine_info
    from ..engine.evaluation import evaluate, strict_fp32
    from ..engine.train import initial_model
    from ..nets import normalization
    from ..nets.modelfile import load_model_file
    from ..probes import landscape

    log = log or (lambda msg: print(msg, flush=True))
    parse_model_name(args.model)
    if args.images < 1 or args.points < 2 or (args.batch_size is not None and args.batch_size < 1):
        raise ConfigError(
            f"bench-landscape: --images ({args.images}) and --batch-size must be >= 1, "
            f"--points ({args.points}) >= 2"
        )
    args.train_images = None
    study = study_from_args(args)
    batch = args.batch_size or study.train.eval_batch_size
    arrays = data.load_arrays(study.data)
    if args.images > len(arrays.train_y):
        raise ConfigError(
            f"bench-landscape: --images {args.images} is more than the "
            f"{len(arrays.train_y)} training images of the data"
        )
    placement, slot = place(study.device, log=log, lock_timeout=args.lock_timeout)
    try:
        device = placement.device
        if args.model_file:
            model, identity, norm = load_model_file(args.model_file)
            if identity["model"] != args.model:
                raise ConfigError(f"--model-file holds a {identity['model']}, not {args.model}")
        else:
            model = initial_model(args.model, study.study.shortcut, study.study.seeds[0])
            norm = normalization.per_pixel_mean()
        model = model.to(device=device, dtype=torch.float32).eval()
        dd = data.to_device(arrays, device)
        raw_x, y = dd.train_x[: args.images], dd.train_y[: args.images]
        x = normalization.normalize(raw_x, norm, dd.mean)
        directions = landscape.random_directions(model, study.analysis.landscape_seed)
        coords = landscape.grid(-1.0, 1.0, args.points)
        grid = [(a, b) for b in coords for a in coords]
        at_point = landscape.dataset_evaluator(x, y, batch)

        def plain() -> int:
            evaluate(model, raw_x, y, norm, dd.mean, batch)
            return len(y)

        def sweep() -> int:
            landscape.sweep(model, at_point, directions, grid)
            return len(grid) * len(y)

        with strict_fp32():
            result = measure_landscape(plain, sweep, device, args.warmup_steps, args.steps)
    finally:
        if slot is not None:
            slot.release()
    a = study.analysis
    result["projection"] = {
        "points": a.landscape_points,
        "images": a.landscape_images,
        "seconds": grid_seconds(
            result["landscape"]["images_per_second"], a.landscape_points, a.landscape_images
        ),
    }
    result["settings"] = {
        "model": args.model,
        "images": len(y),
        "batch_size": batch,
        "grid_points_per_call": len(grid),
        "warmup_calls": args.warmup_steps,
        "timed_calls": args.steps,
        "data_source": study.data.source,
        "train_images_held": int(len(arrays.train_y)),
    }
    result["machine"] = machine_info(placement)
    result["command"] = list(sys.argv)
    log(format_landscape_table(result))
    if args.json:
        write_json(result, args.json)
        log(f"wrote {args.json}")
    return 0
