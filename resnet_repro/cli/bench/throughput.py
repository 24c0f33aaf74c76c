"""`resnet-repro bench`: the trainer against a DataLoader pipeline and the bare
forward/backward ceiling, with every speed switch and compile mode; its options and its run."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from ...bench.report import format_table
from ...bench.run import DEFAULT_BATCH_SIZE, run_benchmark
from ...bench.variants import VARIANTS
from ...config import parse_model_name
from ...engine.devices import place
from ...engine.step import COMPILE_MODES
from ...nets.families import model_forms
from ...results import write_json
from .options import (
    DEFAULT_TRAIN_IMAGES,
    add_config_files,
    add_device_overrides,
    add_slot_and_json_options,
    add_step_options,
    study_from_args,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `resnet-repro bench`."""
    parser.add_argument(
        "--model",
        required=True,
        help=f"the net: {model_forms()}",
    )
    add_config_files(
        parser,
        "study config file(s) for the data (e.g. real CIFAR-10), the "
        "recipe and the device switches; without one, synthetic data",
    )
    add_device_overrides(parser)
    parser.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help=f"images per step (default {DEFAULT_BATCH_SIZE}, as the paper)",
    )
    add_step_options(parser, "variant")
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
    add_slot_and_json_options(parser)


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
