"""`resnet-repro bench-landscape`: training images evaluated per second by the loss landscape
(Li et al. 2018) against plain evaluation, and the configured grid's projected time."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from ...config import ConfigError, parse_model_name
from ...engine.devices import place
from ...results import write_json
from .options import add_config_files, add_slot_and_json_options, add_step_options, study_from_args


def add_landscape_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `resnet-repro bench-landscape`."""
    parser.add_argument("--model", required=True, help="plain or resnet + depth, e.g. resnet56")
    add_config_files(
        parser,
        "study config file(s) for the data, the device and analysis.landscape_*; "
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
    add_step_options(parser, "variant")
    parser.set_defaults(warmup_steps=1, steps=3)
    add_slot_and_json_options(parser)


def run_landscape_from_args(
    args: argparse.Namespace, log: Callable[[str], None] | None = None
) -> int:
    """`resnet-repro bench-landscape`: training images evaluated per second by the loss
    landscape's sweep against plain evaluation, on the same net, images and device, and the
    configured grid's projected time per net."""
    import torch

    from ... import data
    from ...bench.landscape import format_landscape_table, grid_seconds, measure_landscape
    from ...bench.timing import machine_info
    from ...engine.evaluation import evaluate, strict_fp32
    from ...engine.run_setup import initial_model
    from ...nets import normalization
    from ...nets.modelfile import load_model_file
    from ...probes import landscape

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
        dd = data.to_device(arrays, device)
        if args.model_file:
            model, identity, norm = load_model_file(args.model_file)
            if identity["model"] != args.model:
                raise ConfigError(f"--model-file holds a {identity['model']}, not {args.model}")
        else:
            model = initial_model(args.model, study.study.shortcut, study.study.seeds[0])
            norm = normalization.per_pixel_mean(dd.mean)
        model = model.to(device=device, dtype=torch.float32).eval()
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
