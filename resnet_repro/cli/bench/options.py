"""What the benchmark subcommands share: the step and slot options, and the study they measure
(a config, or synthetic data, with the command line's device overrides)."""

from __future__ import annotations

import argparse
from typing import Any

from ...bench.run import DEFAULT_STEPS, DEFAULT_WARMUP_STEPS
from ...config import Study, deep_merge, read_yaml, study_from_dict

DEFAULT_TRAIN_IMAGES = 10_000


def add_step_options(parser: argparse.ArgumentParser, unit: str) -> None:
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


def add_config_files(parser: argparse.ArgumentParser, help: str, required: bool = False) -> None:
    """--config YAML...: the study's config files, merged in order."""
    parser.add_argument(
        "--config",
        action="extend",
        nargs="+",
        metavar="YAML",
        default=None,
        required=required,
        help=help,
    )


# The device.* keys `resnet-repro bench` can override, each an option --key-with-dashes.
DEVICE_OVERRIDES: dict[str, dict[str, Any]] = {
    "device": {
        "choices": ("auto", "cpu", "cuda"),
        "help": "overrides device.device (default: the config's, else auto)",
    },
    "precision": {
        "choices": ("auto", "fp32", "tf32", "bf16"),
        "help": "overrides device.precision",
    },
    "channels_last": {
        "action": argparse.BooleanOptionalAction,
        "help": "overrides device.channels_last",
    },
    "compile": {
        "choices": ("auto", "eager", "model", "step"),
        "help": "overrides device.compile",
    },
    "compile_mode": {
        "choices": ("auto", "default", "reduce-overhead", "max-autotune-no-cudagraphs"),
        "help": "overrides device.compile_mode (reduce-overhead: CUDA graphs)",
    },
    "deterministic": {
        "action": argparse.BooleanOptionalAction,
        "help": "overrides device.deterministic",
    },
    "fused_optimizer": {
        "action": argparse.BooleanOptionalAction,
        "help": "overrides device.fused_optimizer",
    },
    "cudnn_benchmark": {
        "action": argparse.BooleanOptionalAction,
        "help": "overrides device.cudnn_benchmark",
    },
    "cpu_threads": {
        "type": int,
        "metavar": "N",
        "help": "torch CPU threads; overrides device.cpu_threads",
    },
}


def add_device_overrides(parser: argparse.ArgumentParser) -> None:
    for key, options in DEVICE_OVERRIDES.items():
        parser.add_argument("--" + key.replace("_", "-"), default=None, **options)


def add_slot_and_json_options(parser: argparse.ArgumentParser) -> None:
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
        key: getattr(args, key)
        for key in DEVICE_OVERRIDES
        if getattr(args, key, None) is not None  # bench-landscape takes only some
    }
    if device:
        raw = deep_merge(raw, {"device": device})
    return study_from_dict(raw)
