"""`resnet-repro bench-study`: the trainer's rate for every model of a study, and the study's
training time projected onto N devices."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from ...bench.projection import project_study, run_seconds
from ...bench.run import run_benchmark
from ...config import ConfigError, load_study
from ...engine.devices import place
from ...results import write_json
from .options import add_config_files, add_slot_and_json_options, add_step_options


def add_study_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `resnet-repro bench-study`."""
    add_config_files(
        parser,
        "the study config file(s): its models, seeds, recipe, data and device",
        required=True,
    )
    parser.add_argument(
        "--devices",
        type=int,
        default=2,
        metavar="N",
        help="devices to project the study onto, one training job each (default 2)",
    )
    add_step_options(parser, "model")
    add_slot_and_json_options(parser)


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
    from ...engine.schedule import total_iterations

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
