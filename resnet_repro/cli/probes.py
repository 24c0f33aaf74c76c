"""The `resnet-repro probe` and `resnet-repro probe-figure` subcommands: read a trained
model.pt and the study's test images, run one probe, write its Parquet file; or draw one
probe's figure from those files. `cli.build_parser` adds them with `add_parsers`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from torch import nn

from ..config import Study
from ..progressbar import Bar
from ..results import PROBE_SCHEMAS
from .common import say, warn

KINDS = tuple(PROBE_SCHEMAS)  # lesions, lesions_k, paths, branches


def load_trained(path: str) -> tuple[nn.Module, dict, dict]:
    """(model, identity, normalisation record) of a model.pt, ours or imported, through the
    one loader every reader of model files uses."""
    from ..nets.modelfile import load_model_file

    return load_model_file(path, warn=warn)


def image_batches(
    study: Study,
    device: torch.device,
    images: int,
    batch_size: int,
    norm: dict,
    split: str = "test",
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first `images` images of the study's test set (or, with split "train", of its
    training set: the original images, no augmentation), fed the way the net was trained (its
    stored normalisation; for our runs the training set's per-pixel mean subtracted, section
    4.2), in fp32 batches on `device`."""
    from .. import data
    from ..nets import normalization

    arrays = data.load_arrays(study.data)
    d = data.to_device(arrays, device)
    x, y = (d.train_x, d.train_y) if split == "train" else (d.test_x, d.test_y)
    n = min(images, len(y))
    return [
        (
            normalization.normalize(x[i : min(i + batch_size, n)], norm, d.mean),
            y[i : min(i + batch_size, n)],
        )
        for i in range(0, n, batch_size)
    ]


def test_batches(
    study: Study, device: torch.device, images: int, batch_size: int, norm: dict
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first `images` test images (`image_batches` on the test set)."""
    return image_batches(study, device, images, batch_size, norm, "test")


def _run_probe(
    kind: str, study: Study, model: nn.Module, device: torch.device, norm: dict, bar: Bar
):
    """The probe's rows and a one-line summary of what it measured; `bar` shows how far."""
    a = study.analysis
    if kind == "paths":
        from ..probes.paths import path_table

        batches = image_batches(
            study, device, a.path_batches * a.path_batch_size, a.path_batch_size, norm, a.path_split
        )
        rows = path_table(model, batches, a.path_samples, a.probe_seed, a.path_split, bar)
        return rows, (
            f"gradient per path length at the input, {a.path_samples} random paths per image "
            f"and length on {int(rows['images'].max())} {a.path_split} images"
        )
    batches = test_batches(study, device, a.probe_images, study.train.eval_batch_size, norm)
    if kind == "lesions":
        from ..probes.lesions import single_lesions

        return single_lesions(model, batches, bar), "single-block lesions"
    if kind == "lesions_k":
        from ..probes.lesions import k_lesions

        rows = k_lesions(model, batches, a.lesion_draws, a.probe_seed, a.lesion_k_points, bar)
        return rows, f"k-block lesions, up to {a.lesion_draws} draws per k"
    from ..probes.branches import branch_magnitudes

    bar.start(len(batches))
    return branch_magnitudes(model, batches, bar), "block changes ||y-x||/||x|| and ||F(x)||/||x||"


RESIDUAL_ONLY = {
    "paths": "it has one path only",
    "branches": "its output channels need not match its input's, so ||y - x|| / ||x|| is no "
    "distance from the identity",
}


def warn_if_long_on_cpu(kind: str, study: Study, name: str, model: nn.Module) -> None:
    """A probe whose size takes long on this CPU says so before it starts, with the keys
    that shrink it."""
    from ..probes.cost import long_probe_warning

    test_images = study.data.test_subset or 10000
    message = long_probe_warning(
        kind, name, model, study.analysis, test_images, torch.get_num_threads()
    )
    if message:
        warn(message)


def cmd_probe(args: argparse.Namespace, load: Callable[[argparse.Namespace], Study]) -> int:
    from ..config import ConfigError
    from ..engine.devices import place
    from ..probes import label_run
    from ..results import write_probe

    study = load(args)
    model, identity, norm = load_trained(args.model_file)
    if args.kind in RESIDUAL_ONLY and not identity["model"].startswith("resnet"):
        raise ConfigError(
            f"the {args.kind} probe needs a residual net; {identity['model']} is plain "
            f"({RESIDUAL_ONLY[args.kind]})"
        )
    placement, slot = place(study.device, log=say)
    if args.cpu_threads:
        torch.set_num_threads(args.cpu_threads)
    name, seed = identity["model"], identity["seed"]
    if placement.device.type == "cpu":
        warn_if_long_on_cpu(args.kind, study, name, model)
    try:
        # fp32 whatever the training precision: the probes measure the trained weights.
        from ..engine.evaluation import strict_fp32

        model = model.to(device=placement.device, dtype=torch.float32)
        # A bar on a terminal; plain lines with the time left in a log file.
        with strict_fp32(), Bar(f"{args.kind} {name} seed {seed}", "batches") as bar:
            rows, what = _run_probe(args.kind, study, model, placement.device, norm, bar)
    finally:
        if slot is not None:
            slot.release()
    write_probe(args.kind, label_run(rows, name, seed, PROBE_SCHEMAS[args.kind]), args.out)
    if args.kind != "paths":  # the paths probe names its images (training or test) itself
        what += f" on {int(rows['images'].max()) if len(rows) else 0} test images"
    say(f"{name} seed {seed}: {what}, {placement.name} (fp32) -> {args.out}")
    return 0


def cmd_probe_figure(args: argparse.Namespace) -> int:
    from ..figures.probes import FIGURES
    from ..figures.style import save_figure
    from ..results import read_all_probe

    fig = FIGURES[args.kind](read_all_probe(args.kind, args.results), args.models)
    png, pdf = save_figure(fig, args.out)
    say(f"{args.kind} figure -> {png}, {pdf}")
    return 0


def training_inputs(
    study: Study, device: torch.device, images: int, norm: dict
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `images` training images of the study (after its split and subsets),
    unaugmented, normalised once the way the net was trained and kept on `device` in fp32,
    with their labels; ConfigError in one line when the training set holds fewer."""
    from .. import data
    from ..config import ConfigError
    from ..nets import normalization

    arrays = data.load_arrays(study.data)
    held = len(arrays.train_y)
    if images > held:
        raise ConfigError(
            f"analysis.landscape_images: {images} training images asked for, but the "
            f"study's training set holds {held} (data.train_subset, data.val_size); "
            f"allowed: 1 .. {held}"
        )
    dd = data.to_device(arrays, device)
    x = normalization.normalize(dd.train_x[:images], norm, dd.mean)
    return x, dd.train_y[:images]


def cmd_landscape(args: argparse.Namespace, load: Callable[[argparse.Namespace], Study]) -> int:
    """One net's loss landscape (Li et al. 2018) and its interpolation from the initial
    weights, written as one Parquet file; nothing is written on bad input."""
    import time

    from ..engine.devices import place
    from ..engine.evaluation import strict_fp32
    from ..engine.train import initial_model
    from ..probes import label_run, landscape
    from ..results import LANDSCAPE_SCHEMA, write_landscape

    started = time.perf_counter()
    study = load(args)
    a = study.analysis
    lo, hi = a.landscape_range
    landscape.grid(lo, hi, a.landscape_points)  # a bad grid fails before any work
    model, identity, norm = load_trained(args.model_file)
    source = identity.get("source")
    name, seed = identity["model"], int(identity["seed"])
    placement, slot = place(study.device, log=say)
    if args.cpu_threads:
        torch.set_num_threads(args.cpu_threads)
    try:
        device = placement.device
        x, y = training_inputs(study, device, a.landscape_images, norm)
        # Our runs start from the initialisation their seed rebuilds (engine/train.py); an
        # imported net's own is not published, so ours of the same net stands in, flagged.
        initial = initial_model(
            name, identity.get("shortcut", "A"), seed, identity.get("width")
        ).to(device=device, dtype=torch.float32)
        model = model.to(device=device, dtype=torch.float32)
        say(
            f"{name} seed {seed}: loss landscape, {a.landscape_points} x {a.landscape_points} "
            f"grid over [{lo}, {hi}]^2, direction seed {a.landscape_seed}, {len(y)} training "
            f"images in batches of {study.train.eval_batch_size}, {placement.name} (fp32)"
        )
        with strict_fp32():  # fp32 whatever the training precision, no TF32 on CUDA
            rows = landscape.landscape_rows(
                model,
                landscape.dataset_evaluator(x, y, study.train.eval_batch_size),
                lo,
                hi,
                a.landscape_points,
                a.landscape_seed,
                initial=initial,
                log=say,
            )
    finally:
        if slot is not None:
            slot.release()
    wall = time.perf_counter() - started
    rows = rows.assign(
        source=source["name"] if source else "run",
        init_source=[
            ("ours" if source else "run") if k == "interpolation" else None for k in rows["kind"]
        ],
        direction_seed=a.landscape_seed,
        range_min=lo,
        range_max=hi,
        points=a.landscape_points,
        images=len(y),
        batch_size=study.train.eval_batch_size,
        wall_seconds=wall,
    )
    write_landscape(label_run(rows, name, seed, LANDSCAPE_SCHEMA), args.out)
    evaluated = int((rows["status"] == "ok").sum())
    if (rows["status"] == "diverged").any():
        say(f"{name} seed {seed}: diverged ({rows['note'].iloc[0]}); one row says so -> {args.out}")
    else:
        say(
            f"{name} seed {seed}: {landscape.describe(rows)} on {len(y)} training images in "
            f"{wall:.1f} s ({evaluated * len(y) / wall:,.0f} images/s overall) -> {args.out}"
        )
    return 0


def cmd_landscape_figure(args: argparse.Namespace) -> int:
    from ..figures.landscape import figure_landscape
    from ..figures.style import save_figure
    from ..results import read_all_landscape

    fig = figure_landscape(read_all_landscape(args.results), title=args.title)
    png, pdf = save_figure(fig, args.out)
    say(f"landscape figure -> {png}, {pdf}")
    return 0


def add_parsers(
    sub,
    add_config: Callable[[argparse.ArgumentParser], None],
    load: Callable[[argparse.Namespace], Study],
) -> None:
    c = sub.add_parser(
        "probe",
        help="measure a trained model without training it: block lesions, paths, "
        "block changes (Veit et al. 2016; He et al. 2015)",
        description="Run one probe on a trained model.pt (eval mode, fp32, on the study's "
        "device) and write one Parquet file. lesions: test error with each block deleted "
        "(Veit et al. Fig. 3); lesions_k: with k random blocks deleted (Fig. 5a); paths: "
        "gradient at the input per path length (Fig. 6; residual nets only; "
        "analysis.path_split chooses training or test images); branches: ||y-x||/||x|| and "
        "||F(x)||/||x|| per residual block (residual nets only).",
    )
    add_config(c)
    c.add_argument("kind", choices=KINDS, help="which probe")
    c.add_argument("--model-file", required=True, help="a run's model.pt")
    c.add_argument("--out", required=True, help="Parquet file to write")
    c.add_argument(
        "--cpu-threads",
        type=int,
        default=None,
        metavar="N",
        help="torch CPU threads (the workflow passes the job's threads)",
    )
    c.set_defaults(func=lambda args: cmd_probe(args, load))

    c = sub.add_parser("probe-figure", help="draw one probe's figure from its Parquet files")
    c.add_argument("kind", choices=KINDS, help="which probe")
    c.add_argument("--results", nargs="*", default=[], help="the probe's Parquet files")
    c.add_argument("--models", nargs="*", default=None, help="models to draw, in this order")
    c.add_argument("--out", required=True, help="PNG path; a PDF is written beside it")
    c.set_defaults(func=cmd_probe_figure)

    c = sub.add_parser(
        "landscape",
        help="the training-loss landscape of a trained model along two random "
        "filter-normalised directions (Li et al. 2018), and the interpolation from its "
        "initial weights",
        description="Evaluate the training loss and error of a trained model.pt at theta + "
        "a*d1 + b*d2 over a grid (analysis.landscape_range, landscape_points), along d1 "
        "alone, and on the line from the run's initial weights (rebuilt from its seed) to "
        "theta, on the first analysis.landscape_images training images (eval mode, fp32, on "
        "the study's device); write one Parquet file.",
    )
    add_config(c)
    c.add_argument("--model-file", required=True, help="a run's (or an imported) model.pt")
    c.add_argument("--out", required=True, help="Parquet file to write")
    c.add_argument(
        "--cpu-threads",
        type=int,
        default=None,
        metavar="N",
        help="torch CPU threads (the workflow passes the job's threads)",
    )
    c.set_defaults(func=lambda args: cmd_landscape(args, load))

    c = sub.add_parser(
        "landscape-figure",
        help="draw the plain and residual loss landscapes of each depth side by side",
    )
    c.add_argument("--results", nargs="*", default=[], help="the landscapes' Parquet files")
    c.add_argument("--title", default=None, help="the figure's title (default: Li et al.'s)")
    c.add_argument("--out", required=True, help="PNG path; a PDF is written beside it")
    c.set_defaults(func=cmd_landscape_figure)


__all__ = [
    "KINDS",
    "add_parsers",
    "cmd_landscape",
    "cmd_landscape_figure",
    "cmd_probe",
    "cmd_probe_figure",
    "image_batches",
    "load_trained",
    "test_batches",
    "training_inputs",
]
