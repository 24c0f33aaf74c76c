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
from ..results import PROBE_SCHEMAS
from .common import say

KINDS = tuple(PROBE_SCHEMAS)  # lesions, lesions_k, paths, branches


def load_trained(path: str) -> tuple[nn.Module, dict, dict]:
    """(model, identity, normalisation record) of a model.pt, ours or imported, through the
    one loader every reader of model files uses."""
    from ..nets.modelfile import load_model_file

    return load_model_file(path)


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


def _run_probe(kind: str, study: Study, model: nn.Module, device: torch.device, norm: dict):
    """The probe's rows and a one-line summary of what it measured."""
    a = study.analysis
    if kind == "paths":
        from ..probes.paths import path_table

        batches = image_batches(
            study, device, a.path_batches * a.path_batch_size, a.path_batch_size, norm, a.path_split
        )
        rows = path_table(model, batches, a.path_samples, a.probe_seed, a.path_split)
        return rows, (
            f"gradient per path length at the input, {a.path_samples} random paths per image "
            f"and length on {int(rows['images'].max())} {a.path_split} images"
        )
    batches = test_batches(study, device, a.probe_images, study.train.eval_batch_size, norm)
    if kind == "lesions":
        from ..probes.lesions import single_lesions

        return single_lesions(model, batches), "single-block lesions"
    if kind == "lesions_k":
        from ..probes.lesions import k_lesions

        return k_lesions(model, batches, a.lesion_draws, a.probe_seed, a.lesion_k_points), (
            f"k-block lesions, up to {a.lesion_draws} draws per k"
        )
    from ..probes.branches import branch_magnitudes

    return branch_magnitudes(model, batches), "block changes ||y-x||/||x|| and ||F(x)||/||x||"


RESIDUAL_ONLY = {
    "paths": "it has one path only",
    "branches": "its output channels need not match its input's, so ||y - x|| / ||x|| is no "
    "distance from the identity",
}


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
    try:
        # fp32 whatever the training precision: the probes measure the trained weights.
        from ..engine.evaluation import strict_fp32

        model = model.to(device=placement.device, dtype=torch.float32)
        with strict_fp32():  # no TF32 convolutions on CUDA either
            rows, what = _run_probe(args.kind, study, model, placement.device, norm)
    finally:
        if slot is not None:
            slot.release()
    name, seed = identity["model"], identity["seed"]
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


__all__ = [
    "KINDS",
    "add_parsers",
    "load_trained",
    "image_batches",
    "test_batches",
    "cmd_probe",
    "cmd_probe_figure",
]
